import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import {
  applyRollback,
  listMigrations,
  migrateDatabase,
  ROLLBACK_FILE,
} from '../../dev/migrate.ts';
import { type TestDatabase, useTestDatabase } from '../helpers/database.ts';
import {
  bulkSignUpAsSupabaseAuth,
  githubMetadata,
  signUpAsSupabaseAuth,
} from '../helpers/supabase-auth.ts';

async function migrate(db: TestDatabase) {
  return await migrateDatabase(db.url);
}

async function rollback(db: TestDatabase) {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await applyRollback(client);
  } finally {
    await client.end();
  }
}

async function count(db: TestDatabase, sql: string): Promise<number> {
  return (await db.one<{ n: number }>(`select count(*)::int as n from ${sql}`)).n;
}

async function backfillAll(db: TestDatabase): Promise<number> {
  let created = 0;
  let after: string | null = null;
  for (;;) {
    const { r }: { r: { created: number; done: boolean; last_user_id: string } } = await db.one(
      'select public.backfill_missing_profiles(250, $1, false) as r',
      [after],
    );
    created += r.created;
    if (r.done) return created;
    after = r.last_user_id;
  }
}

describe('deleting an auth user', () => {
  const db = useTestDatabase();

  it('removes the profile and keeps the audit trail', async () => {
    const id = await signUpAsSupabaseAuth(db());
    expect(await count(db(), `public.user_profiles where user_id = '${id}'`)).toBe(1);
    // As Supabase Auth deletes: on its own connection, identities cascade.
    await db().auth.query('delete from users where id = $1', [id]);
    expect(await count(db(), `public.user_profiles where user_id = '${id}'`)).toBe(0);
    expect(await count(db(), `auth.identities where user_id = '${id}'`)).toBe(0);
    expect(
      (await db().query('select source, outcome from private.audit_logs where user_id = $1', [id]))
        .rows,
    ).toEqual([
      { source: 'trigger', outcome: 'created' },
    ]);
  });
});

describe('migrating a project that already has users', () => {
  const db = useTestDatabase('bare');

  it('applies to a database whose users predate it, and the backfill gives every one a profile', async () => {
    const emailUsers = await bulkSignUpAsSupabaseAuth(db(), 600, {
      metadataSql: `jsonb_build_object('full_name', 'Old User ' || n)`,
    });
    const oauth = await signUpAsSupabaseAuth(db(), {
      provider: 'github',
      userMetadata: githubMetadata(),
    });
    expect(await count(db(), 'information_schema.tables where table_name = $$user_profiles$$'))
      .toBe(0);

    const applied = await migrate(db());
    expect(applied.map((m) => m.version)).toEqual((await listMigrations()).map((m) => m.version));
    expect(await count(db(), 'public.user_profiles')).toBe(0);

    // The migration found every user who predates it: health counts them at once, without waiting.
    const { h: health } = await db().one('select public.profile_system_health() as h');
    expect(health.checks.missing_profiles.value).toBe(601);
    expect(health.status).toBe('down');
    expect(await count(db(), `private.missing_profiles where found_by = 'install'`)).toBe(601);
    expect(await backfillAll(db())).toBe(601);
    const { h: after } = await db().one('select public.profile_system_health() as h');
    expect(after.checks.missing_profiles.value).toBe(0);
    expect(
      await count(
        db(),
        'auth.users u where not exists (select 1 from public.user_profiles p where p.user_id = u.id)',
      ),
    ).toBe(0);
    expect(
      (await db().query('select username from public.user_profiles where user_id = $1', [oauth]))
        .rows,
    ).toEqual([
      { username: 'octocat' },
    ]);
    expect(emailUsers).toHaveLength(600);
  });

  it('applies nothing twice: a second run finds no pending migration', async () => {
    expect(await migrate(db())).toEqual([]);
  });
});

describe('rollback', () => {
  const db = useTestDatabase();

  it('names every migration in the history it clears', async () => {
    const sql = await readFile(ROLLBACK_FILE, 'utf8');
    for (const migration of await listMigrations()) expect(sql).toContain(`'${migration.version}'`);
  });

  it('switches off and removes trigger and functions, keeps every row, and re-applying restores the system', async () => {
    const before = await signUpAsSupabaseAuth(db(), { userMetadata: { username: 'survivor' } });
    const counts = async () => ({
      profiles: await count(db(), 'public.user_profiles'),
      audit: await count(db(), 'private.audit_logs'),
      queue: await count(db(), 'private.repair_queue'),
    });
    const kept = await counts();

    await rollback(db());
    await rollback(db()); // idempotent

    expect(await counts()).toEqual(kept);
    expect(await count(db(), `pg_trigger where tgname = 'users_ensure_profile'`)).toBe(0);
    expect(
      (await db().query(
        `select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                          where n.nspname in ('public', 'private') order by 1`,
      )).rows.map((r) => r.proname),
    ).toEqual([
      'is_valid_audit_row',
      'is_valid_avatar_url',
      'is_valid_created_via',
      'is_valid_profile_metadata',
      'is_valid_username',
      'set_updated_at',
    ]);
    expect((await db().query('select trigger_enabled from private.settings')).rows).toEqual([{
      trigger_enabled: false,
    }]);
    expect(await count(db(), 'supabase_migrations.schema_migrations')).toBe(0);
    // RLS and its policies stay: rolling back never exposes profiles.
    expect(
      (await db().query(
        `select relrowsecurity from pg_class where oid = 'public.user_profiles'::regclass`,
      )).rows,
    ).toEqual([
      { relrowsecurity: true },
    ]);
    expect(await count(db(), `pg_policies where tablename = 'user_profiles'`)).toBe(2);

    // Signups keep working with the system rolled back; they just get no profile.
    const during = await signUpAsSupabaseAuth(db());
    expect(await count(db(), `public.user_profiles where user_id = '${during}'`)).toBe(0);

    expect((await migrate(db())).length).toBe((await listMigrations()).length);
    expect(await count(db(), `pg_trigger where tgname = 'users_ensure_profile'`)).toBe(1);
    // The switch stays off until an operator turns it back on.
    expect((await db().query('select trigger_enabled from private.settings')).rows).toEqual([{
      trigger_enabled: false,
    }]);
    await db().query('update private.settings set trigger_enabled = true');

    const after = await signUpAsSupabaseAuth(db());
    expect(
      await count(
        db(),
        `public.user_profiles where user_id = '${after}' and created_via = 'trigger'`,
      ),
    ).toBe(1);
    expect(await backfillAll(db())).toBe(1);
    expect(
      await count(
        db(),
        `public.user_profiles where user_id = '${during}' and created_via = 'backfill'`,
      ),
    ).toBe(1);
    expect(
      (await db().query('select username from public.user_profiles where user_id = $1', [before]))
        .rows,
    ).toEqual([
      { username: 'survivor' },
    ]);
    expect(await counts()).toEqual({
      profiles: kept.profiles + 2,
      audit: kept.audit + 2,
      queue: kept.queue,
    });
  });
});
