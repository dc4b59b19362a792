import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { insertAuthUser } from '../../dev/auth/user-store.ts';
import { withTransaction } from '../../dev/transaction.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { githubMetadata, googleMetadata, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

async function profileOf(userId: string) {
  const { rows } = await db().query('select * from public.user_profiles where user_id = $1', [
    userId,
  ]);
  return rows[0];
}

/** Resolves once some session of this database waits for a lock another one holds. */
async function untilASessionWaitsForALock(): Promise<void> {
  for (let tries = 0; tries < 250; tries++) {
    const { rows } = await db().query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    if (rows[0]!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('no session ever waited for a lock');
}

async function auditOf(userId: string) {
  const { rows } = await db().query(
    'select source, outcome, sqlstate, message, details from private.audit_logs where user_id = $1 order by id',
    [userId],
  );
  return rows;
}

describe('the auth.users trigger in Supabase Auth context', () => {
  it('creates the profile of an email signup from full_name in user metadata', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      email: 'grace@example.test',
      userMetadata: { full_name: 'Grace Hopper', username: 'grace_h' },
    });
    const profile = await profileOf(id);
    expect(profile).toMatchObject({
      user_id: id,
      email: 'grace@example.test',
      full_name: 'Grace Hopper',
      username: 'grace_h',
      avatar_url: null,
      metadata: {},
      created_via: 'trigger',
    });
    expect(await auditOf(id)).toEqual([
      { source: 'trigger', outcome: 'created', sqlstate: null, message: null, details: {} },
    ]);
  });

  it('maps GitHub metadata: full_name, user_name and avatar_url', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      provider: 'github',
      email: 'octocat@example.test',
      userMetadata: githubMetadata(),
    });
    expect(await profileOf(id)).toMatchObject({
      full_name: 'The Octocat',
      username: 'octocat',
      avatar_url: 'https://avatars.githubusercontent.com/u/583231?v=4',
      created_via: 'trigger',
    });
  });

  it('maps Google metadata: name and picture, no username', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      provider: 'google',
      email: 'ada@example.test',
      userMetadata: googleMetadata({ full_name: undefined, avatar_url: undefined }),
    });
    expect(await profileOf(id)).toMatchObject({
      full_name: 'Ada Lovelace',
      username: null,
      avatar_url: 'https://lh3.googleusercontent.com/a/ACg8ocJ',
    });
  });

  it('runs as supabase_auth_admin with search_path auth, the context Supabase Auth gives it', async () => {
    const { rows } = await db().auth.query(
      'select current_user, current_setting($1) as search_path',
      ['search_path'],
    );
    expect(rows).toEqual([{ current_user: 'supabase_auth_admin', search_path: 'auth' }]);
    const { rows: roles } = await db().query(
      `select rolinherit, rolsuper from pg_roles where rolname = 'supabase_auth_admin'`,
    );
    expect(roles).toEqual([{ rolinherit: false, rolsuper: false }]);
  });

  it('sees the row as Auth inserted it: role empty and email not yet confirmed', async () => {
    await db().query(`create table public.trigger_saw (role text, email_confirmed_at timestamptz)`);
    await db().query(`
      create function public.record_what_trigger_saw() returns trigger language plpgsql security definer
      set search_path = '' as $$
      begin insert into public.trigger_saw values (new.role, new.email_confirmed_at); return null; end $$`);
    await db().query(`create trigger users_zz_observe after insert on auth.users
                      for each row execute function public.record_what_trigger_saw()`);
    try {
      const id = await signUpAsSupabaseAuth(db(), { emailConfirmed: true });
      expect((await db().query('select * from public.trigger_saw')).rows).toEqual([{
        role: '',
        email_confirmed_at: null,
      }]);
      expect(
        (await db().query(
          'select role, email_confirmed_at is not null as confirmed from auth.users where id = $1',
          [id],
        )).rows,
      )
        .toEqual([{ role: 'authenticated', confirmed: true }]);
      expect(await profileOf(id)).toMatchObject({ created_via: 'trigger' });
    } finally {
      await db().query(
        'drop trigger users_zz_observe on auth.users; drop function public.record_what_trigger_saw(); drop table public.trigger_saw',
      );
    }
  });
});

describe('metadata that cannot make a valid profile', () => {
  it.each([
    ['an array', ['not', 'an', 'object']],
    ['a string', 'just a string'],
    ['null', null],
    ['fields of the wrong types', {
      full_name: 42,
      username: { nested: true },
      avatar_url: ['x'],
      metadata: 'nope',
    }],
  ])('still creates a profile when user metadata is %s', async (_label, userMetadata) => {
    const id = await signUpAsSupabaseAuth(db(), { userMetadata });
    expect(await profileOf(id)).toMatchObject({
      full_name: null,
      username: null,
      avatar_url: null,
      metadata: {},
    });
    expect(await auditOf(id)).toMatchObject([{ source: 'trigger', outcome: 'created' }]);
  });

  it('drops an invalid username, an over-long name and a non-http avatar, and notes each in the audit', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      userMetadata: {
        full_name: 'x'.repeat(201),
        username: 'no spaces allowed',
        avatar_url: 'javascript:alert(1)',
      },
    });
    expect(await profileOf(id)).toMatchObject({
      full_name: null,
      username: null,
      avatar_url: null,
    });
    expect(await auditOf(id)).toEqual([
      {
        source: 'trigger',
        outcome: 'created',
        sqlstate: null,
        message: null,
        details: {
          dropped: { full_name: 'too_long', username: 'invalid_format', avatar_url: 'invalid_url' },
        },
      },
    ]);
  });

  it('drops a username another profile already has, case-insensitively, and keeps the rest', async () => {
    await signUpAsSupabaseAuth(db(), { userMetadata: { username: 'TakenName' } });
    const id = await signUpAsSupabaseAuth(db(), {
      userMetadata: { username: 'takenname', full_name: 'Second' },
    });
    expect(await profileOf(id)).toMatchObject({ username: null, full_name: 'Second' });
    expect(await auditOf(id)).toMatchObject([{
      outcome: 'created',
      details: { dropped: { username: 'taken' } },
    }]);
  });

  it('drops a username a concurrent signup holds uncommitted, once that signup commits, and fails neither', async () => {
    const firstId = randomUUID();
    let second: Promise<string> | undefined;
    await withTransaction(db().auth, async (client) => {
      await insertAuthUser(client, {
        id: firstId,
        email: `first-${firstId}@example.test`,
        encryptedPassword: '',
        userMetadata: { username: 'Contested' },
        identities: [{ provider: 'email', providerId: firstId, identityData: { sub: firstId } }],
      });
      // The second signup's insert waits on the first one's uncommitted username.
      second = signUpAsSupabaseAuth(db(), {
        userMetadata: { username: 'contested', full_name: 'Second' },
      });
      await untilASessionWaitsForALock();
    });
    const secondId = await second!;
    expect(await profileOf(firstId)).toMatchObject({ username: 'Contested' });
    expect(await profileOf(secondId)).toMatchObject({
      username: null,
      full_name: 'Second',
      created_via: 'trigger',
    });
    expect(await auditOf(secondId)).toEqual([
      {
        source: 'trigger',
        outcome: 'created',
        sqlstate: null,
        message: null,
        details: { dropped: { username: 'taken' } },
      },
    ]);
  });

  it('keeps metadata.metadata as the profile metadata when it is an object', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      userMetadata: { metadata: { plan: 'pro', locale: 'de-CH' } },
    });
    expect(await profileOf(id)).toMatchObject({ metadata: { plan: 'pro', locale: 'de-CH' } });
  });
});

describe('when creating the profile fails inside the trigger', () => {
  it('lets the signup succeed, audits the failure, queues the user, and the backfill repairs it', async () => {
    // A hostile constraint no profile of this email can satisfy: the insert raises 23514.
    await db().query(`alter table public.user_profiles add constraint hostile_no_doomed
                      check (email is distinct from 'doomed@example.test') not valid`);
    let id: string;
    try {
      id = await signUpAsSupabaseAuth(db(), { email: 'doomed@example.test' });
      expect(
        (await db().query('select count(*)::int as n from auth.users where id = $1', [id])).rows,
      ).toEqual([{ n: 1 }]);
      expect(await profileOf(id)).toBeUndefined();
      expect(await auditOf(id)).toEqual([
        {
          source: 'trigger',
          outcome: 'failed',
          sqlstate: '23514',
          message:
            'new row for relation "user_profiles" violates check constraint "hostile_no_doomed"',
          details: {},
        },
      ]);
      const { rows: queue } = await db().query(
        'select source, sqlstate, attempts, resolved_at from private.repair_queue where user_id = $1',
        [id],
      );
      expect(queue).toEqual([{
        source: 'trigger',
        sqlstate: '23514',
        attempts: 1,
        resolved_at: null,
      }]);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_no_doomed');
    }

    let after: string | null = null;
    for (;;) {
      const { r: batch }: { r: { last_user_id: string; done: boolean } } = await db().one(
        'select public.backfill_missing_profiles(500, $1, false) as r',
        [after],
      );
      after = batch.last_user_id;
      if (batch.done) break;
    }
    expect(await profileOf(id)).toMatchObject({
      user_id: id,
      email: 'doomed@example.test',
      created_via: 'backfill',
    });
    const { rows: resolved } = await db().query(
      'select resolution, resolved_at is not null as resolved from private.repair_queue where user_id = $1',
      [id],
    );
    expect(resolved).toEqual([{ resolution: 'backfill', resolved: true }]);
  });

  it("records a row that a unique index of the project's own refuses as a failure, not as an existing profile", async () => {
    await db().query(
      "create unique index hostile_unique_full_name on public.user_profiles (full_name) where full_name = 'Only Once'",
    );
    try {
      await signUpAsSupabaseAuth(db(), { userMetadata: { full_name: 'Only Once' } });
      const id = await signUpAsSupabaseAuth(db(), { userMetadata: { full_name: 'Only Once' } });
      expect(
        (await db().query('select count(*)::int as n from auth.users where id = $1', [id])).rows,
      ).toEqual([{ n: 1 }]);
      expect(await profileOf(id)).toBeUndefined();
      expect(await auditOf(id)).toEqual([
        {
          source: 'trigger',
          outcome: 'failed',
          sqlstate: '23505',
          message: 'duplicate key value violates unique constraint "hostile_unique_full_name"',
          details: {},
        },
      ]);
      expect(
        (await db().query(
          'select source, sqlstate, resolved_at from private.repair_queue where user_id = $1',
          [id],
        )).rows,
      )
        .toEqual([{ source: 'trigger', sqlstate: '23505', resolved_at: null }]);
    } finally {
      await db().query('drop index public.hostile_unique_full_name');
    }
  });

  it('lets the signup succeed even when the audit table itself rejects writes', async () => {
    await db().query(
      `alter table private.audit_logs add constraint hostile_no_audit check (false) not valid`,
    );
    try {
      const id = await signUpAsSupabaseAuth(db());
      // The profile insert and its audit row share a subtransaction: both roll back, the
      // failure record fails too, and the trigger still returns.
      expect(await profileOf(id)).toBeUndefined();
      expect(
        (await db().query('select count(*)::int as n from auth.users where id = $1', [id])).rows,
      ).toEqual([{ n: 1 }]);
    } finally {
      await db().query('alter table private.audit_logs drop constraint hostile_no_audit');
    }
  });

  it('reopens and counts attempts when the same user fails again after being resolved', async () => {
    await db().query(`alter table public.user_profiles add constraint hostile_twice
                      check (email is distinct from 'twice@example.test') not valid`);
    try {
      const id = await signUpAsSupabaseAuth(db(), { email: 'twice@example.test' });
      await db().query(
        `update private.repair_queue set resolved_at = now(), resolution = 'manual' where user_id = $1`,
        [id],
      );
      const { r } = await db().one(`select public.ensure_user_profile($1, 'ensure') as r`, [id]);
      expect(r).toMatchObject({ outcome: 'failed', error: { sqlstate: '23514' }, queued: true });
      const { rows: queue } = await db().query(
        'select attempts, resolved_at, resolution, source from private.repair_queue where user_id = $1',
        [id],
      );
      expect(queue).toEqual([{
        attempts: 1,
        resolved_at: null,
        resolution: null,
        source: 'ensure',
      }]);
      await db().query(`select public.ensure_user_profile($1, 'ensure')`, [id]);
      expect(
        (await db().query('select attempts from private.repair_queue where user_id = $1', [id]))
          .rows,
      ).toEqual([
        { attempts: 2 },
      ]);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_twice');
    }
  });
});

describe('a new auth user and the repair queue', () => {
  it('leaves the open entry of an id reused after a delete to the reconciler, which resolves it', async () => {
    const id = randomUUID();
    await db().query(
      `insert into private.repair_queue (user_id, source, reason, sqlstate, next_attempt_at)
       values ($1, 'trigger', 'failed before the user was deleted', '23514', now() - interval '1 minute')`,
      [id],
    );
    await signUpAsSupabaseAuth(db(), { id });
    expect(await profileOf(id)).toMatchObject({ created_via: 'trigger' });
    expect(await auditOf(id)).toMatchObject([{ source: 'trigger', outcome: 'created' }]);
    // A new user cannot have an open entry, so the trigger does not look; a reused id can.
    expect(
      (await db().one('select resolved_at from private.repair_queue where user_id = $1', [id]))
        .resolved_at,
    ).toBeNull();

    const { r } = await db().one(`select public.reconcile_profiles() as r`);
    expect(r).toMatchObject({ ran: true, queue: { failed: 0 } });
    expect(
      await db().one(
        'select resolution, resolved_at is not null as resolved from private.repair_queue where user_id = $1',
        [id],
      ),
    )
      .toEqual({ resolution: 'reconcile', resolved: true });
  });
});

describe('the runtime switch', () => {
  it('makes the trigger skip profile creation and audit the skip, and switching back resumes it', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    try {
      const skipped = await signUpAsSupabaseAuth(db());
      expect(await profileOf(skipped)).toBeUndefined();
      expect(await auditOf(skipped)).toEqual([
        {
          source: 'trigger',
          outcome: 'skipped',
          sqlstate: null,
          message: null,
          details: { reason: 'trigger_disabled' },
        },
      ]);
    } finally {
      await db().query('update private.settings set trigger_enabled = true');
    }
    const created = await signUpAsSupabaseAuth(db());
    expect(await profileOf(created)).toMatchObject({ created_via: 'trigger' });
  });
});
