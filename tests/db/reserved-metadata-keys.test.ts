import { describe, expect, it } from 'vitest';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { bulkSignUpAsSupabaseAuth, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

async function profileOf(userId: string) {
  return await db().one(
    'select full_name, username, metadata from public.user_profiles where user_id = $1',
    [userId],
  );
}

async function auditOf(userId: string) {
  const { rows } = await db().query(
    'select source, outcome, details from private.audit_logs where user_id = $1 order by id',
    [userId],
  );
  return rows;
}

// As Supabase Auth stores it: JSON text, so "__proto__" is a plain key.
const HOSTILE = JSON.parse(`{
  "plan": "pro",
  "__proto__": {"isAdmin": true},
  "prefs": {"theme": "dark", "constructor": {"prototype": {"polluted": true}}},
  "list": [1, {"prototype": 2, "kept": 3}, [{"constructor": null}]],
  "role": "constructor",
  "Constructor": "other case",
  "prototypes": ["near miss"]
}`);
const HOSTILE_STRIPPED = {
  plan: 'pro',
  prefs: { theme: 'dark' },
  list: [1, { kept: 3 }, [{}]],
  role: 'constructor',
  Constructor: 'other case',
  prototypes: ['near miss'],
};

describe('reserved metadata keys (__proto__, constructor, prototype)', () => {
  it("are stripped at every depth from a signup's metadata by the trigger, which creates the profile and says so in the audit", async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      userMetadata: { full_name: 'Mallory', username: 'mallory', metadata: HOSTILE },
    });
    expect(await profileOf(id)).toEqual({
      full_name: 'Mallory',
      username: 'mallory',
      metadata: HOSTILE_STRIPPED,
    });
    expect(await auditOf(id)).toEqual([
      {
        source: 'trigger',
        outcome: 'created',
        details: { dropped: { metadata: 'reserved_keys_removed' } },
      },
    ]);
  });

  it('are stripped from metadata nested 8,000 levels deep, and the signup still gets its profile', async () => {
    // Built in SQL: JSON.stringify overflows the JavaScript stack at this depth.
    const id = (await bulkSignUpAsSupabaseAuth(db(), 1, {
      metadataSql:
        `jsonb_build_object('metadata', ('{"a": ' || repeat('[', 8000) || '{"prototype": 1, "b": 2}'
                                                    || repeat(']', 8000) || ', "constructor": 0}')::jsonb)`,
    }))[0]!;
    const { rows } = await db().query(
      `select metadata = ('{"a": ' || repeat('[', 8000) || '{"b": 2}' || repeat(']', 8000) || '}')::jsonb as stripped
       from public.user_profiles where user_id = $1`,
      [id],
    );
    expect(rows).toEqual([{ stripped: true }]);
    expect(await auditOf(id)).toEqual([
      {
        source: 'trigger',
        outcome: 'created',
        details: { dropped: { metadata: 'reserved_keys_removed' } },
      },
    ]);
  });

  it("are stripped by ensure_user_profile and the backfill when they map the auth user's metadata", async () => {
    const [viaEnsure, viaBackfill] = await withTriggerOff(db(), async () => [
      await signUpAsSupabaseAuth(db(), { userMetadata: { metadata: HOSTILE } }),
      await signUpAsSupabaseAuth(db(), { userMetadata: { metadata: HOSTILE } }),
    ]);
    const ensured = await db().one(`select public.ensure_user_profile($1, 'webhook') as r`, [
      viaEnsure,
    ]);
    expect(ensured.r).toMatchObject({
      outcome: 'created',
      profile: { metadata: HOSTILE_STRIPPED },
    });
    await db().query('select public.backfill_missing_profiles(10000)');
    expect((await profileOf(viaBackfill)).metadata).toEqual(HOSTILE_STRIPPED);
    for (const [id, source] of [[viaEnsure, 'webhook'], [viaBackfill, 'backfill']] as const) {
      expect(await auditOf(id)).toEqual([
        { source: 'trigger', outcome: 'skipped', details: { reason: 'trigger_disabled' } },
        { source, outcome: 'created', details: { dropped: { metadata: 'reserved_keys_removed' } } },
      ]);
    }
  });

  it('leave metadata over the size limit dropped for its size, as before', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      userMetadata: { metadata: { constructor: 1, blob: 'x'.repeat(17_000) } },
    });
    expect((await profileOf(id)).metadata).toEqual({});
    expect(await auditOf(id)).toEqual([
      {
        source: 'trigger',
        outcome: 'created',
        details: { dropped: { metadata: 'not_an_object_or_too_large' } },
      },
    ]);
  });

  it('in p_metadata make ensure_user_profile raise 22023 naming p_metadata, and write nothing', async () => {
    const id = await withTriggerOff(db(), () => signUpAsSupabaseAuth(db()));
    for (
      const metadata of [
        '{"__proto__": 1}',
        '{"a": [{"b": {"prototype": null}}]}',
        '{"x": {"constructor": {}}}',
      ]
    ) {
      await expect(
        db().query(`select public.ensure_user_profile($1, p_metadata => $2::jsonb)`, [
          id,
          metadata,
        ]),
      ).rejects.toMatchObject({
        code: '22023',
        message:
          'p_metadata must not contain the keys __proto__, constructor, prototype, at any depth',
      });
    }
    expect(await auditOf(id)).toEqual([{
      source: 'trigger',
      outcome: 'skipped',
      details: { reason: 'trigger_disabled' },
    }]);
    const ok = await db().one(
      `select public.ensure_user_profile($1, p_metadata => $2::jsonb) as r`,
      [id, '{"role": "prototype", "Constructor": 1}'],
    );
    expect(ok.r).toMatchObject({
      outcome: 'created',
      profile: { metadata: { role: 'prototype', Constructor: 1 } },
    });
  });

  it('are listed once, in private.reserved_metadata_keys(), which both SQL predicates read', async () => {
    expect((await db().one('select private.reserved_metadata_keys() as k')).k).toEqual([
      '__proto__',
      'constructor',
      'prototype',
    ]);
    const { rows } = await db().query(
      `select p.proname from pg_proc p
       where p.pronamespace = 'private'::regnamespace and p.prosrc like '%reserved_metadata_keys()%' order by 1`,
    );
    expect(rows.map((r) => r.proname)).toEqual([
      'jsonb_has_reserved_key',
      'jsonb_strip_reserved_keys',
    ]);
  });
});
