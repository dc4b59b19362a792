// The profile's email follows auth.users.email: Supabase Auth's email-change flow updates the
// users row (as supabase_auth_admin, search_path = auth) once the new address is confirmed, and
// the profile takes the address in the same transaction, audited, without ever failing Auth's
// update; public.sync_profile_emails() repairs drift any earlier path left.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type TestDatabase, useTestDatabase, withTriggerOff } from '../helpers/database.ts';
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
  (await db().one<{ email: string | null }>(
    'select email from public.user_profiles where user_id = $1',
    [userId],
  )).email;

async function syncAudit(userIds: string[]) {
  const { rows } = await db().query(
    `select user_id, source, outcome from private.audit_logs where operation = 'sync_email' and user_id = any($1) order by id`,
    [userIds],
  );
  return rows;
}

const sweep = (batch: number) =>
  db().asRole(
    'service_role',
    {},
    async (c) =>
      (await c.query('select public.sync_profile_emails($1) as n', [batch])).rows[0].n as number,
    { commit: true },
  );

describe("a confirmed change of a user's email", () => {
  it("updates the profile's email in the same transaction, with one sync_email audit row", async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('before') });
    const after = address('after');
    await changeEmail(db(), userId, after);
    expect(await profileEmail(userId)).toBe(after);
    expect(await syncAudit([userId])).toEqual([{
      user_id: userId,
      source: 'trigger',
      outcome: 'updated',
    }]);
  });

  it('writes nothing when only other columns change, or when the user has no profile', async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('same') });
    await db().auth.query(
      `update users set raw_user_meta_data = raw_user_meta_data || '{"x": 1}' where id = $1`,
      [userId],
    );
    const bare = await withTriggerOff(
      db(),
      () => signUpAsSupabaseAuth(db(), { email: address('bare') }),
    );
    await changeEmail(db(), bare, address('bare-after'));
    expect(await syncAudit([userId, bare])).toEqual([]);
    expect(
      (await db().query('select 1 from public.user_profiles where user_id = $1', [bare])).rowCount,
    ).toBe(0);
  });

  it("never fails Auth's update: when the copy fails the user keeps the new address and the sweep repairs the profile later", async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('hostile') });
    const after = address('refused');
    await db().query(
      `alter table public.user_profiles add constraint hostile_email check (email is distinct from '${after}') not valid`,
    );
    try {
      await changeEmail(db(), userId, after);
      expect(
        (await db().one<{ email: string }>('select email from auth.users where id = $1', [userId]))
          .email,
      ).toBe(after);
      expect(await profileEmail(userId)).not.toBe(after);
      expect(await syncAudit([userId])).toEqual([]);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_email');
    }
    expect(await sweep(100000)).toBeGreaterThanOrEqual(1);
    expect(await profileEmail(userId)).toBe(after);
    expect(await syncAudit([userId])).toEqual([{
      user_id: userId,
      source: 'reconcile',
      outcome: 'updated',
    }]);
  });

  it('leaves the profile as it was when Auth soft-deletes the user (obfuscating the email in the same update), and so does the sweep', async () => {
    const before = address('soft');
    const userId = await signUpAsSupabaseAuth(db(), { email: before });
    await db().auth.query(
      `update users set email = 'obfuscated-' || md5(email), deleted_at = now() where id = $1`,
      [userId],
    );
    expect(await profileEmail(userId)).toBe(before);
    await sweep(100000);
    expect(await profileEmail(userId)).toBe(before);
    expect(await syncAudit([userId])).toEqual([]);
  });

  it('keeps deleting a user working: the profile goes with it', async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('gone') });
    await changeEmail(db(), userId, address('gone-after'));
    await db().auth.query('delete from users where id = $1', [userId]);
    expect(
      (await db().query('select 1 from public.user_profiles where user_id = $1', [userId]))
        .rowCount,
    ).toBe(0);
  });
});

describe('public.sync_profile_emails', () => {
  it('repairs drift in batches of at most p_batch, auditing each fix, and finds none afterwards', async () => {
    await sweep(100000);
    const users = await Promise.all(
      [1, 2, 3].map(() => signUpAsSupabaseAuth(db(), { email: address('drift') })),
    );
    await db().query(
      `update public.user_profiles set email = 'stale-' || email where user_id = any($1)`,
      [users],
    );
    expect(await sweep(2)).toBe(2);
    expect(await sweep(2)).toBe(1);
    expect(await sweep(2)).toBe(0);
    const { rows } = await db().query(
      'select count(*)::int as n from public.user_profiles p join auth.users u on u.id = p.user_id where p.user_id = any($1) and p.email = u.email',
      [users],
    );
    expect(rows[0]!.n).toBe(3);
    expect((await syncAudit(users)).map((r) => r.source)).toEqual([
      'reconcile',
      'reconcile',
      'reconcile',
    ]);
  });

  it('refuses a batch outside 1-100000 with 22023, and only the service role may call it', async () => {
    await expect(sweep(0)).rejects.toMatchObject({ code: '22023' });
    for (const role of ['anon', 'authenticated'] as const) {
      await expect(db().asRole(role, {}, (c) => c.query('select public.sync_profile_emails(1)')))
        .rejects.toMatchObject({ code: '42501' });
    }
  });
});

describe('public.sync_profile_emails_step, run by every self-repair tick', () => {
  interface Step {
    ran: boolean;
    noted: number;
    scanned: number;
    fixed: number;
    pass_completed: boolean;
  }
  const step = (batch: number | null = null, restart = false) =>
    db().asRole(
      'service_role',
      {},
      async (c) =>
        (await c.query('select public.sync_profile_emails_step($1, $2) as r', [batch, restart]))
          .rows[0].r as Step,
      { commit: true },
    );
  const drift = async () =>
    (await db().query('select user_id, sqlstate from private.email_drift order by user_id')).rows;
  const profileCount = async () =>
    (await db().one<{ n: number }>('select count(*)::int as n from public.user_profiles')).n;

  it('notes a copy the trigger could not make, and the next step fixes that user first, audited as found by the trigger failure', async () => {
    await step(1_000_000, true);
    const userId = await signUpAsSupabaseAuth(db(), { email: address('noted') });
    const after = address('noted-refused');
    await db().query(
      `alter table public.user_profiles add constraint hostile_email check (email is distinct from '${after}') not valid`,
    );
    try {
      await changeEmail(db(), userId, after);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_email');
    }
    expect(await drift()).toEqual([{ user_id: userId, sqlstate: '23514' }]);

    const result = await step(1);
    expect(result).toMatchObject({ ran: true, noted: 1, scanned: 1, fixed: 1 });
    expect(await profileEmail(userId)).toBe(after);
    expect(await drift()).toEqual([]);
    const { rows } = await db().query(
      `select source, outcome, details from private.audit_logs where operation = 'sync_email' and user_id = $1`,
      [userId],
    );
    expect(rows).toEqual([{
      source: 'reconcile',
      outcome: 'updated',
      details: { found_by: 'trigger_failure' },
    }]);
  });

  it('finds drift an earlier path left by walking the profiles a slice at a time, and wraps after a full pass', async () => {
    await step(1_000_000, true);
    const users = await Promise.all(
      [1, 2, 3, 4, 5].map(() => signUpAsSupabaseAuth(db(), { email: address('slice') })),
    );
    // A path that left no note: the trigger dropped while Auth changed the addresses.
    await db().query('alter table auth.users disable trigger users_sync_profile_email');
    try {
      for (const userId of users) await changeEmail(db(), userId, address('slice-after'));
    } finally {
      await db().query('alter table auth.users enable trigger users_sync_profile_email');
    }
    expect(await drift()).toEqual([]);

    const total = await profileCount();
    const batch = 2;
    let scanned = 0;
    let fixed = 0;
    let steps = 0;
    for (;;) {
      const result = await step(batch);
      expect(result.ran).toBe(true);
      expect(result.scanned).toBeLessThanOrEqual(batch);
      scanned += result.scanned;
      fixed += result.fixed;
      steps++;
      if (result.pass_completed) break;
    }
    expect(scanned).toBe(total);
    expect(steps).toBe(Math.floor(total / batch) + 1);
    expect(fixed).toBe(5);
    const { rows } = await db().query(
      'select count(*)::int as n from public.user_profiles p join auth.users u on u.id = p.user_id where p.user_id = any($1) and p.email = u.email',
      [users],
    );
    expect(rows[0]!.n).toBe(5);
    const census = await db().one(
      'select email_cursor, email_pass_completed_at is not null as completed from private.profile_census',
    );
    expect(census).toEqual({ email_cursor: null, completed: true });
    // The next pass starts again from the first profile and finds nothing more to fix.
    expect(await step(batch)).toMatchObject({ scanned: batch, fixed: 0, pass_completed: false });
  });

  it("leaves a soft-deleted user's profile as it was", async () => {
    const before = address('soft-step');
    const userId = await signUpAsSupabaseAuth(db(), { email: before });
    await db().auth.query(
      `update users set email = 'obfuscated-' || md5(email), deleted_at = now() where id = $1`,
      [userId],
    );
    await step(1_000_000, true);
    expect(await profileEmail(userId)).toBe(before);
  });

  it('is part of public.run_self_repair: a tick fixes drift with nobody calling the step', async () => {
    const userId = await signUpAsSupabaseAuth(db(), { email: address('tick') });
    await step(1_000_000, true); // a finished pass: the tick's slice starts at the first profile
    await db().query(
      `update public.user_profiles set email = 'stale-tick@example.test' where user_id = $1`,
      [userId],
    );
    const run = await db().asRole(
      'service_role',
      {},
      async (c) => (await c.query('select public.run_self_repair() as r')).rows[0].r,
      { commit: true },
    );
    expect(run.emails).toMatchObject({ ran: true, fixed: 1, pass_completed: true });
    expect(await profileEmail(userId)).toBe(
      (await db().one('select email from auth.users where id = $1', [userId])).email,
    );
  });

  it('refuses a batch outside 1-1000000 with 22023, and only the service role may call it', async () => {
    await expect(step(0)).rejects.toMatchObject({ code: '22023' });
    for (const role of ['anon', 'authenticated'] as const) {
      await expect(
        db().asRole(role, {}, (c) => c.query('select public.sync_profile_emails_step()')),
      ).rejects.toMatchObject({ code: '42501' });
    }
  });
});
