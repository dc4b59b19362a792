import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  findReservedKey,
  isStorableJson,
  isValidAvatarUrl,
  isValidUsername,
  jsonbTextBytes,
  RESERVED_METADATA_KEYS,
} from '../../shared/profile-contract.ts';
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
  fc.constantFrom(
    'ab',
    'abc',
    '.abc',
    'abc.',
    '-ab',
    'ab-',
    '_a_',
    'a'.repeat(39),
    'a'.repeat(40),
    'ÄÖÜ',
    'jürgen',
  ),
);

const urlLike = fc.oneof(
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.string({ unit: 'grapheme', maxLength: 60 }).map((s) => `https://${s}`),
  fc.constantFrom(
    'http://',
    'https://a b',
    'javascript:alert(1)',
    'HTTPS://x',
    `https://${'x'.repeat(2040)}`,
    `https://${'x'.repeat(2041)}`,
  ),
);

/** An object with these entries as own properties, "__proto__" included (a literal would set the prototype). */
function objectOf(entries: Array<[string, unknown]>): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    Object.defineProperty(object, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return object;
}

// JSON values whose object keys are often reserved, or nearly so (other letter cases, prefixes,
// padding), at any depth, inside objects and arrays; reserved words also appear as values.
const keyLike = fc.oneof(
  { arbitrary: fc.string({ maxLength: 6 }), weight: 5 },
  { arbitrary: fc.constantFrom(...RESERVED_METADATA_KEYS), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      'Constructor',
      'PROTOTYPE',
      '__proto',
      '__proto__ ',
      'constructors',
      'proto',
      '$constructor',
    ),
    weight: 1,
  },
);
const { value: jsonWithReservedKeys } = fc.letrec<
  { value: unknown; scalar: unknown; array: unknown[]; object: Record<string, unknown> }
>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, tie('scalar'), tie('array'), tie('object')),
  scalar: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 8 }),
    fc.constantFrom(...RESERVED_METADATA_KEYS),
  ),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.array(fc.tuple(keyLike, tie('value')), { maxLength: 4 }).map(objectOf),
}));

/** The rule applied by hand, recursively: what private.jsonb_strip_reserved_keys must return. */
function withoutReservedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutReservedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !(RESERVED_METADATA_KEYS as readonly string[]).includes(key))
      .map(([key, v]) => [key, withoutReservedKeys(v)]),
  );
}

describe('the TypeScript contract agrees with the database', () => {
  it('on which usernames are valid, for 3,000 generated strings', async () => {
    const values = fc.sample(usernameLike.filter((s) => !s.includes('\u0000')), {
      numRuns: 3000,
      seed: 20261121,
    });
    expect(values.map(isValidUsername)).toEqual(
      await sqlVerdicts('private.is_valid_username', values),
    );
  });

  it('on which avatar URLs are valid, for 3,000 generated strings', async () => {
    const values = fc.sample(urlLike.filter((s) => !s.includes('\u0000')), {
      numRuns: 3000,
      seed: 20261121,
    });
    expect(values.map(isValidAvatarUrl)).toEqual(
      await sqlVerdicts('private.is_valid_avatar_url', values),
    );
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

  it('on which JSON values have a reserved key at some depth, and on what is left once they are stripped, for 2,000 generated values', async () => {
    const values = fc
      .sample(jsonWithReservedKeys, { numRuns: 3000, seed: 20261204 })
      .filter(isStorableJson)
      .slice(0, 2000);
    expect(values.length).toBe(2000);
    const found = values.map((v) => findReservedKey(v));
    // The generator reaches both answers, and reserved keys below the top level.
    expect(found.filter((f) => f !== null).length).toBeGreaterThan(400);
    expect(found.filter((f) => f !== null).length).toBeLessThan(1600);
    expect(found.filter((f) => f !== null && /[.[].*[.[]/.test(f.at)).length).toBeGreaterThan(50);

    const { rows } = await db().query<{ has: boolean; stripped: unknown }>(
      `select private.jsonb_has_reserved_key(v::jsonb) as has, private.jsonb_strip_reserved_keys(v::jsonb) as stripped
       from unnest($1::text[]) with ordinality as t(v, i) order by i`,
      [values.map((v) => JSON.stringify(v))],
    );
    expect(rows.map((r) => r.has)).toEqual(found.map((f) => f !== null));
    // Through JSON text, as the database received them (-0 arrives as 0).
    expect(rows.map((r) => r.stripped)).toEqual(
      values.map((v) => JSON.parse(JSON.stringify(withoutReservedKeys(v)))),
    );
  });

  it('rejects the edge cases it should and accepts the ones it should', () => {
    expect(['abc', 'a_b', 'a.b-c_', '_x_', 'a'.repeat(39)].every(isValidUsername)).toBe(true);
    expect(['ab', '.abc', 'abc-', 'a b', 'a'.repeat(40), 'jürgen'].some(isValidUsername)).toBe(
      false,
    );
  });
});
