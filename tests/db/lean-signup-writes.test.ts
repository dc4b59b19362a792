// The checks of 20261206100000_lean-signup-writes.sql: the same rules as the constraints they
// replace, now one function call each, enforced for every role that writes.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const SOURCES = ['trigger', 'register', 'ensure', 'webhook', 'backfill', 'reconcile', 'hook'];
const OUTCOMES = ['created', 'existed', 'failed', 'skipped', 'released', 'refused', 'updated'];

describe('the audit trail check', () => {
  const db = useTestDatabase();
  const insert = (source: string, outcome: string, attempt = 1) =>
    db().query(
      `insert into private.audit_logs (operation, source, outcome, attempt) values ('check_test', $1, $2, $3)`,
      [source, outcome, attempt],
    );

  it('accepts every source with every outcome the product writes', async () => {
    for (const source of SOURCES) for (const outcome of OUTCOMES) await insert(source, outcome);
    const { count } = await db().one<{ count: number }>(
      `select count(*)::int as count from private.audit_logs where operation = 'check_test'`,
    );
    expect(count).toBe(SOURCES.length * OUTCOMES.length);
  });

  it('refuses an unknown source, an unknown outcome and an attempt below 1 with audit_logs_row_check', async () => {
    for (
      const [source, outcome, attempt] of [['browser', 'created', 1], ['trigger', 'bogus', 1], [
        'trigger',
        'created',
        0,
      ]] as const
    ) {
      await expect(insert(source, outcome, attempt)).rejects.toMatchObject({
        code: '23514',
        constraint: 'audit_logs_row_check',
      });
    }
  });

  it('is the only check on the audit trail, and it is one call of one function', async () => {
    const { rows } = await db().query<{ name: string; def: string }>(
      `select conname as name, pg_get_constraintdef(oid) as def from pg_constraint
       where conrelid = 'private.audit_logs'::regclass and contype = 'c'`,
    );
    expect(rows).toEqual([{
      name: 'audit_logs_row_check',
      def: 'CHECK (private.is_valid_audit_row(source, outcome, attempt)) NOT VALID',
    }]);
  });
});

describe('the profile checks', () => {
  const db = useTestDatabase();

  it('refuse a created_via and a metadata outside the rules with the constraint that names the column', async () => {
    const userId = await signUpAsSupabaseAuth(db(), {});
    await db().query('delete from public.user_profiles where user_id = $1', [userId]);
    const insert = (createdVia: string, metadata: string) =>
      db().query(
        `insert into public.user_profiles (user_id, created_via, metadata) values ($1, $2, $3::jsonb)`,
        [userId, createdVia, metadata],
      );
    await expect(insert('browser', '{}')).rejects.toMatchObject({
      code: '23514',
      constraint: 'user_profiles_created_via_check',
    });
    await expect(insert('ensure', '[]')).rejects.toMatchObject({
      code: '23514',
      constraint: 'user_profiles_metadata_check',
    });
    await expect(insert('ensure', JSON.stringify({ note: 'x'.repeat(16_384) })))
      .rejects.toMatchObject({ code: '23514', constraint: 'user_profiles_metadata_check' });
    await insert('ensure', JSON.stringify({ note: 'x'.repeat(16_000) }));
  });

  it('run as the signed-in user who edits their own profile through RLS: an object is kept, an array refused', async () => {
    const userId = await signUpAsSupabaseAuth(db(), {});
    const update = (metadata: string) =>
      db().asRole(
        'authenticated',
        { sub: userId, role: 'authenticated' },
        (c) =>
          c.query(`update public.user_profiles set metadata = $1::jsonb where user_id = $2`, [
            metadata,
            userId,
          ]),
        { commit: true },
      );
    expect((await update('{"theme": "dark"}')).rowCount).toBe(1);
    await expect(update('[1]')).rejects.toMatchObject({
      code: '23514',
      constraint: 'user_profiles_metadata_check',
    });
    const { metadata } = await db().one(
      'select metadata from public.user_profiles where user_id = $1',
      [userId],
    );
    expect(metadata).toEqual({ theme: 'dark' });
  });
});
