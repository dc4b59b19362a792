// The profile's email follows auth.users.email: Supabase Auth's email-change flow updates the
// users row (as supabase_auth_admin, search_path = auth) once the new address is confirmed, and
// the profile takes the address in the same transaction, audited, without ever failing Auth's
// update; public.sync_profile_emails() repairs drift any earlier path left.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase, withTriggerOff, type TestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const address = (tag: string) => `${tag}-${randomUUID()}@example.test`;

/** GoTrue's confirmation of an email change: one UPDATE of the users row on its own connection. */
async function changeEmail(database: TestDatabase, userId: string, email: string): Promise<void> {
  await database.auth.query(
    `update users set email = $2, email_change = '', email_change_token_new = '', email_change_confirm_status = 0, updated_at = now()
     where id = $1`,
    [userId, email],
  );
}

const profileEmail = async (userId: string) =>
  (await db().one<{ email: string | null }>('select email from public.user_profiles where user_id = $1', [userId])).email;

async function syncAudit(userIds: string[]) {
  const { rows } = await db().query(
    `select user_id, source, outcome from private.audit_logs where operation = 'sync_email' and user_id = any($1) order by id`,
    [userIds],
  );
  return rows;
}

const sweep = (batch: number) =>
  db().asRole('service_role', {}, async (c) => (await c.query('select public.sync_profile_emails($1) as n', [batch])).rows[0].n as number, { commit: true });

describe('a confirmed change of a user\'s email', () => {
  it('updates the profile\'s email in the same transaction, with one sync_email audit row', async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('before') });
    const after = address('after');
    await changeEmail(db(), userId, after);
    expect(await profileEmail(userId)).toBe(after);
    expect(await syncAudit([userId])).toEqual([{ user_id: userId, source: 'trigger', outcome: 'updated' }]);
  });

  it('writes nothing when only other columns change, or when the user has no profile', async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('same') });
    await db().auth.query(`update users set raw_user_meta_data = raw_user_meta_data || '{"x": 1}' where id = $1`, [userId]);
    const bare = await withTriggerOff(db(), () => signUpAsSupabaseAuth(db(), { email: address('bare') }));
    await changeEmail(db(), bare, address('bare-after'));
    expect(await syncAudit([userId, bare])).toEqual([]);
    expect((await db().query('select 1 from public.user_profiles where user_id = $1', [bare])).rowCount).toBe(0);
  });

  it('never fails Auth\'s update: when the copy fails the user keeps the new address and the sweep repairs the profile later', async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('hostile') });
    const after = address('refused');
    await db().query(`alter table public.user_profiles add constraint hostile_email check (email is distinct from '${after}') not valid`);
    try {
      await changeEmail(db(), userId, after);
      expect((await db().one<{ email: string }>('select email from auth.users where id = $1', [userId])).email).toBe(after);
      expect(await profileEmail(userId)).not.toBe(after);
      expect(await syncAudit([userId])).toEqual([]);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_email');
    }
    expect(await sweep(100000)).toBeGreaterThanOrEqual(1);
    expect(await profileEmail(userId)).toBe(after);
    expect(await syncAudit([userId])).toEqual([{ user_id: userId, source: 'reconcile', outcome: 'updated' }]);
  });

  it('leaves the profile as it was when Auth soft-deletes the user (obfuscating the email in the same update), and so does the sweep', async () => {
    const before = address('soft');
    const userId = await signUpAsSupabaseAuth(db(), { email: before });
    await db().auth.query(`update users set email = 'obfuscated-' || md5(email), deleted_at = now() where id = $1`, [userId]);
    expect(await profileEmail(userId)).toBe(before);
    await sweep(100000);
    expect(await profileEmail(userId)).toBe(before);
    expect(await syncAudit([userId])).toEqual([]);
  });

  it('keeps deleting a user working: the profile goes with it', async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('gone') });
    await changeEmail(db(), userId, address('gone-after'));
    await db().auth.query('delete from users where id = $1', [userId]);
    expect((await db().query('select 1 from public.user_profiles where user_id = $1', [userId])).rowCount).toBe(0);
  });
});

describe('public.sync_profile_emails', () => {
  it('repairs drift in batches of at most p_batch, auditing each fix, and finds none afterwards', async () => {
    await sweep(100000);
    const users = await Promise.all([1, 2, 3].map(() => signUpAsSupabaseAuth(db(), { email: address('drift') })));
    await db().query(`update public.user_profiles set email = 'stale-' || email where user_id = any($1)`, [users]);
    expect(await sweep(2)).toBe(2);
    expect(await sweep(2)).toBe(1);
    expect(await sweep(2)).toBe(0);
    const { rows } = await db().query(
      'select count(*)::int as n from public.user_profiles p join auth.users u on u.id = p.user_id where p.user_id = any($1) and p.email = u.email',
      [users],
    );
    expect(rows[0]!.n).toBe(3);
    expect((await syncAudit(users)).map((r) => r.source)).toEqual(['reconcile', 'reconcile', 'reconcile']);
  });

  it('refuses a batch outside 1-100000 with 22023, and only the service role may call it', async () => {
    await expect(sweep(0)).rejects.toMatchObject({ code: '22023' });
    for (const role of ['anon', 'authenticated'] as const) {
      await expect(db().asRole(role, {}, (c) => c.query('select public.sync_profile_emails(1)'))).rejects.toMatchObject({ code: '42501' });
    }
  });
});
