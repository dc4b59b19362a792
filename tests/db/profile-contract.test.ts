import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isStorableJson, isValidAvatarUrl, isValidUsername, jsonbTextBytes } from '../../shared/profile-contract.ts';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();

/** Evaluates an SQL predicate over many strings in one round trip. */
async function sqlVerdicts(fn: string, values: string[]): Promise<boolean[]> {
  const { rows } = await db().query<{ ok: boolean }>(
    `select ${fn}(v) as ok from unnest($1::text[]) with ordinality as t(v, i) order by i`,
    [values],
  );
  return rows.map((r) => r.ok);
}

// Strings near the rules' edges: short and long, the allowed punctuation at either end, spaces,
// non-ASCII letters that a naive \w would accept, and NUL-free unicode.
const usernameLike = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.\- ]{0,42}$/),
  fc.string({ unit: 'grapheme', maxLength: 41 }),
  fc.constantFrom('ab', 'abc', '.abc', 'abc.', '-ab', 'ab-', '_a_', 'a'.repeat(39), 'a'.repeat(40), 'ÄÖÜ', 'jürgen'),
);

const urlLike = fc.oneof(
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.string({ unit: 'grapheme', maxLength: 60 }).map((s) => `https://${s}`),
  fc.constantFrom('http://', 'https://a b', 'javascript:alert(1)', 'HTTPS://x', `https://${'x'.repeat(2040)}`, `https://${'x'.repeat(2041)}`),
);

describe('the TypeScript contract agrees with the database', () => {
  it('on which usernames are valid, for 3,000 generated strings', async () => {
    const values = fc.sample(usernameLike.filter((s) => !s.includes('\u0000')), { numRuns: 3000, seed: 20261121 });
    expect(values.map(isValidUsername)).toEqual(await sqlVerdicts('private.is_valid_username', values));
  });

  it('on which avatar URLs are valid, for 3,000 generated strings', async () => {
    const values = fc.sample(urlLike.filter((s) => !s.includes('\u0000')), { numRuns: 3000, seed: 20261121 });
    expect(values.map(isValidAvatarUrl)).toEqual(await sqlVerdicts('private.is_valid_avatar_url', values));
  });

  it('on how many bytes metadata takes as jsonb text, for 2,000 generated JSON values', async () => {
    const values = fc
      .sample(fc.jsonValue({ maxDepth: 4 }), { numRuns: 4000, seed: 20261121 })
      .filter(isStorableJson)
      .slice(0, 2000);
    expect(values.length).toBe(2000);
    const { rows } = await db().query<{ n: number }>(
      `select octet_length(v::jsonb::text) as n from unnest($1::text[]) with ordinality as t(v, i) order by i`,
      [values.map((v) => JSON.stringify(v))],
    );
    expect(values.map(jsonbTextBytes)).toEqual(rows.map((r) => r.n));
  });

  it('rejects the edge cases it should and accepts the ones it should', () => {
    expect(['abc', 'a_b', 'a.b-c_', '_x_', 'a'.repeat(39)].every(isValidUsername)).toBe(true);
    expect(['ab', '.abc', 'abc-', 'a b', 'a'.repeat(40), 'jürgen'].some(isValidUsername)).toBe(false);
  });
});
