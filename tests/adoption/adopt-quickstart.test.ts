// Adopting the app's own profile table (docs/DEPLOYMENT.md §5.2, step by step): a project with
// Supabase's user-management quickstart schema, users with and without profiles and posts that
// point at them, takes the migrations and private.adopt_profile_table(); the app's calls answer
// as before, every user has exactly one profile, a failing profile insert no longer fails the
// signup, and supabase/rollback/rollback.sql puts the app's schema back as it was.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyRollback, migrateDatabase } from '../../dev/migrate.ts';
import { createEnsureProfileHandler } from '../../shared/ensure-profile-handler.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import { createProfileKit } from '../../shared/kit/profile-kit.ts';
import { catalogEntries, type CatalogEntry } from '../helpers/catalog.ts';
import { diffCatalogs } from '../helpers/catalog-diff.ts';
import { appClient, randomClientAddress } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';
import {
  type AppAnswers,
  type AppEndpoint,
  editOwnProfile,
  type QuickstartProfile,
  readPosts,
  readPublicProfiles,
  signUp,
} from './app-calls.ts';
import { asPostgres, installQuickstart, usersWithoutOneProfile } from './quickstart-project.ts';

const DEPLOYMENT = path.join(import.meta.dirname, '..', '..', 'docs', 'DEPLOYMENT.md');
const ROLLBACK = path.join(import.meta.dirname, '..', '..', 'docs', 'ROLLBACK.md');

/** The fenced block after `<!-- adoption: name -->` in DEPLOYMENT.md §5.1.1 (readopt: ROLLBACK.md §4): the test runs the guide. */
async function guideBlock(name: 'adopt' | 'answer' | 'verify' | 'readopt'): Promise<string> {
  const guide = await readFile(name === 'readopt' ? ROLLBACK : DEPLOYMENT, 'utf8');
  const fence = '```';
  const start = guide.indexOf(`<!-- adoption: ${name} -->\n${fence}`);
  const open = start < 0 ? -1 : guide.indexOf('\n', guide.indexOf(fence, start)) + 1;
  const match = open <= 0
    ? null
    : [guide, guide.slice(open, guide.indexOf(`\n${fence}`, open) + 1)];
  if (!match) throw new Error(`the guides have no adoption block "${name}"`);
  return match[1]!;
}

const PASSWORD = 'correct horse battery staple 42';
const CHANGES = {
  username: 'ada_l',
  full_name: 'Ada Lovelace',
  website: 'https://ada.example',
  avatar_url: 'https://cdn.example/ada.png',
};
const FAULT = 'Refused By The Database';

const db = useTestDatabase('bare');

// Seeded before the API starts: four users the quickstart's trigger gave a profile, two it did not
// (the trigger was off, as when it failed them), and posts by the first two.
const seeded: { withProfile: string[]; without: string[] } = { withProfile: [], without: [] };
beforeAll(async () => {
  await installQuickstart(db());
  for (let i = 1; i <= 4; i++) {
    seeded.withProfile.push(
      await signUpAsSupabaseAuth(db(), {
        email: `member${i}@example.test`,
        userMetadata: { full_name: `Member ${i}`, avatar_url: `https://cdn.example/${i}.png` },
      }),
    );
  }
  await db().query(`update public.profiles set username = 'member' || right(full_name, 1)`);
  await db().query('alter table auth.users disable trigger on_auth_user_created');
  for (let i = 5; i <= 6; i++) {
    seeded.without.push(
      await signUpAsSupabaseAuth(db(), {
        email: `member${i}@example.test`,
        userMetadata: { full_name: `Member ${i}` },
      }),
    );
  }
  await db().query('alter table auth.users enable trigger on_auth_user_created');
  await db().query(
    `insert into public.posts (author_id, title) values ($1, 'Hello'), ($2, 'Second'), ($1, 'Third')`,
    [seeded.withProfile[0], seeded.withProfile[1]],
  );
});

// In front of the project as it is: the migrations come in the second test, as in the guide.
const api = useLocalApi(db, { migrations: false });

function endpoint(): AppEndpoint {
  return { url: api().stack.apiUrl, anonKey: api().stack.keys.anonKey };
}

/** A fault in the app's table: a profile with this full name cannot be inserted. */
async function withProfileFault<T>(work: () => Promise<T>): Promise<T> {
  await db().query(`
    create function public.refuse_profile() returns trigger language plpgsql as $$
    begin
      if new.full_name = '${FAULT}' then raise exception 'profile refused' using errcode = 'P0001'; end if;
      return new;
    end $$;
    create trigger refuse_profile before insert on public.profiles
      for each row execute function public.refuse_profile()`);
  try {
    return await work();
  } finally {
    await db().query(
      'drop trigger refuse_profile on public.profiles; drop function public.refuse_profile()',
    );
  }
}

/**
 * The catalog but the profile system's private schema and the migration history, which a rollback
 * keeps on purpose (ROLLBACK.md §3).
 */
async function appCatalog(): Promise<CatalogEntry[]> {
  return (await catalogEntries(db())).filter((e) => !/\bprivate\b|supabase_migrations/.test(e.key));
}

async function appData(): Promise<{ profiles: unknown[]; posts: unknown[] }> {
  const profiles = await db().query('select * from public.profiles order by id');
  const posts = await db().query('select * from public.posts order by id');
  return { profiles: profiles.rows, posts: posts.rows };
}

/** Signs in with the password and deletes the user's profile: a user the layers have to repair. */
async function signedInWithoutProfile(email: string) {
  const supabase = appClient(endpoint().url, endpoint().anonKey);
  const { data } = await supabase.auth.signInWithPassword({ email, password: PASSWORD });
  await db().query('delete from public.profiles where id = $1', [data.user!.id]);
  return { supabase, userId: data.user!.id, accessToken: data.session!.access_token };
}

/** The ensure-profile function, as the gateway hands it a signed-in user's call. */
async function ensureProfileAs(accessToken: string) {
  const response = await createEnsureProfileHandler({ config: api().config() })(
    new Request('http://localhost/functions/v1/ensure-profile', {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}` },
    }),
  );
  return { status: response.status, body: await response.json() };
}

function withoutIds(profile: QuickstartProfile | null) {
  if (!profile) return null;
  const { id: _id, ...rest } = profile;
  return rest;
}

describe('adopting the quickstart profiles table', () => {
  let before: AppAnswers;
  let startCatalog: CatalogEntry[];
  let startFullCatalog: CatalogEntry[];
  let movedUser: string;
  let adoption: Record<string, unknown>;

  it('runs the quickstart app before adoption, and its trigger fails a signup whose profile insert fails', async () => {
    const newcomer = await signUp(endpoint(), {
      email: 'ada@example.test',
      password: PASSWORD,
      full_name: 'Ada',
      avatar_url: 'https://cdn.example/a.png',
    });
    const edited = await editOwnProfile(endpoint(), {
      email: 'ada@example.test',
      password: PASSWORD,
    }, CHANGES);
    before = {
      signUp: newcomer,
      ...edited,
      publicProfiles: await readPublicProfiles(endpoint()),
      posts: await readPosts(endpoint()),
    };
    expect(withoutIds(newcomer.profile)).toEqual({
      username: null,
      full_name: 'Ada',
      avatar_url: 'https://cdn.example/a.png',
      website: null,
    });
    expect(edited.ownProfile).toEqual({
      username: null,
      website: null,
      avatar_url: 'https://cdn.example/a.png',
    });
    expect(edited.savedProfile).toEqual({ id: newcomer.userId, ...CHANGES });
    expect(before.posts).toEqual([
      { id: 1, title: 'Hello', profiles: { username: 'member1', full_name: 'Member 1' } },
      { id: 2, title: 'Second', profiles: { username: 'member2', full_name: 'Member 2' } },
      { id: 3, title: 'Third', profiles: { username: 'member1', full_name: 'Member 1' } },
    ]);
    expect(before.publicProfiles.map((p) => p.id).sort()).toEqual(
      [...seeded.withProfile, newcomer.userId].sort(),
    );

    const refused = await withProfileFault(() =>
      signUp(endpoint(), {
        email: 'refused-before@example.test',
        password: PASSWORD,
        full_name: FAULT,
        avatar_url: 'https://cdn.example/r.png',
      }).then(() => null, (error: Error & { status?: number; kind?: string }) => error)
    );
    // Auth answers 500 "Database error saving new user"; supabase-js reports a 500 as retryable.
    expect({ status: refused?.status, kind: refused?.kind }).toEqual({
      status: 500,
      kind: 'AuthRetryableFetchError',
    });
    expect(
      (await db().one(
        `select count(*)::int as n from auth.users where email = 'refused-before@example.test'`,
      )).n,
    )
      .toBe(0);

    startCatalog = await appCatalog();
    startFullCatalog = await catalogEntries(db());
  });

  it('takes the migrations beside the quickstart: both triggers run until adoption', async () => {
    await migrateDatabase(db().url);
    const both = await signUp(endpoint(), {
      email: 'between@example.test',
      password: PASSWORD,
      full_name: 'Between',
      avatar_url: 'https://cdn.example/b.png',
    });
    expect(withoutIds(both.profile)).toEqual({
      username: null,
      full_name: 'Between',
      avatar_url: 'https://cdn.example/b.png',
      website: null,
    });
    expect(
      (await db().one('select count(*)::int as n from public.user_profiles where user_id = $1', [
        both.userId,
      ])).n,
    )
      .toBe(1);

    // The quickstart's trigger missed this one (switched off here, as when it fails): only ours
    // made a profile, in public.user_profiles, and adoption moves it to the app's table.
    await db().query('alter table auth.users disable trigger on_auth_user_created');
    movedUser = await signUpAsSupabaseAuth(db(), {
      email: 'moved@example.test',
      userMetadata: { full_name: 'Moved', username: 'moved_user' },
    });
    await db().query('alter table auth.users enable trigger on_auth_user_created');
  });

  it('adopts the table in one call: old trigger retired, insert policy dropped, missing profiles backfilled', async () => {
    const { rows } = await asPostgres<{ adopt_profile_table: Record<string, unknown> }>(
      db(),
      await guideBlock('adopt'),
    );
    adoption = rows[0]!.adopt_profile_table;
    expect(adoption).toEqual(JSON.parse(await guideBlock('answer')));
    expect(adoption).toEqual({
      table: 'public.profiles',
      key: 'id',
      columns: {
        user_id: 'id',
        full_name: 'full_name',
        username: 'username',
        avatar_url: 'avatar_url',
        updated_at: 'updated_at',
      },
      unmapped: ['email', 'metadata', 'created_via', 'created_at'],
      retired_trigger: 'on_auth_user_created',
      retired: true,
      dropped_policies: [
        'create policy "Users can insert their own profile." on public.profiles as permissive for insert to public with check ((( SELECT auth.uid() AS uid) = id))',
      ],
      index: 'profiles_username_lower_idx',
      moved: 1,
      backfilled: 2,
    });
    expect(
      await db().one('select username, full_name from public.profiles where id = $1', [movedUser]),
    ).toEqual({ username: 'moved_user', full_name: 'Moved' });

    const backfilled = await db().query<{ id: string; full_name: string }>(
      'select id, full_name from public.profiles where id = any($1) order by full_name',
      [seeded.without],
    );
    expect(backfilled.rows.map((r) => r.full_name)).toEqual(['Member 5', 'Member 6']);
  });

  it("passes the guide's checks: one profile per user, our trigger only, the insert policy replaced", async () => {
    const statements = (await guideBlock('verify')).split(';').map((s) => s.trim()).filter((s) =>
      s.replace(/--.*$/gm, '').trim() !== ''
    );
    expect(statements).toHaveLength(3);
    const [missing, triggers, policies] = await Promise.all(
      statements.map((sql) => asPostgres(db(), sql).then((r) => r.rows)),
    );
    expect(missing).toEqual([]);
    expect(triggers).toEqual([{ tgname: 'users_ensure_profile' }, {
      tgname: 'users_sync_profile_email',
    }]);
    expect(policies).toEqual([
      { policyname: 'Public profiles are viewable by everyone.', cmd: 'SELECT' },
      { policyname: 'Users can update own profile.', cmd: 'UPDATE' },
      { policyname: 'Users can upsert their existing profile', cmd: 'INSERT' },
    ]);
  });

  it('leaves every other policy, foreign key, index and column of the app as it was', async () => {
    const now = await catalogEntries(db());
    const added = now.filter((e) =>
      !startFullCatalog.some((s) => s.key === e.key && s.text === e.text)
    );
    const removed = startFullCatalog.filter((s) =>
      !now.some((e) => e.key === s.key && e.text === s.text)
    );
    expect(removed.map((e) => e.key)).toEqual([
      'policy public.profiles "Users can insert their own profile."',
      'policy public.profiles "Users can insert their own profile." INSERT to public using - check (( SELECT auth.uid() AS uid) = id)',
      'trigger auth.users on_auth_user_created',
      'trigger auth.users on_auth_user_created CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION handle_new_user()',
    ]);
    // What adoption added to the app's tables; the rest is the profile system's own objects.
    const onAppTables = (key: string) =>
      !/^\S+ private\./.test(key) &&
      /(^| )(public\.)?(profiles|posts)\b|profiles_|^trigger auth\.users (?!users_)/.test(key);
    expect(added.map((e) => e.key).filter(onAppTables)).toEqual([
      'index profiles_username_lower_idx CREATE INDEX profiles_username_lower_idx ON public.profiles USING btree (lower(username))',
      'index public.profiles_username_lower_idx',
      'policy public.profiles "Users can upsert their existing profile"',
      'policy public.profiles "Users can upsert their existing profile" INSERT to authenticated using - check ((( SELECT auth.uid() AS uid) = id) AND (EXISTS ( SELECT 1\n   FROM profiles p\n  WHERE (p.id = ( SELECT auth.uid() AS uid)))))',
      'trigger profiles profile_guard_audit_direct_conflict',
      "trigger profiles profile_guard_audit_direct_conflict CREATE TRIGGER profile_guard_audit_direct_conflict BEFORE INSERT ON public.profiles FOR EACH ROW WHEN ((CURRENT_USER = 'service_role'::name)) EXECUTE FUNCTION private.on_profile_inserted_directly('id')",
      'trigger profiles profile_guard_audit_direct_insert',
      "trigger profiles profile_guard_audit_direct_insert CREATE TRIGGER profile_guard_audit_direct_insert AFTER INSERT ON public.profiles FOR EACH ROW WHEN ((CURRENT_USER = 'service_role'::name)) EXECUTE FUNCTION private.on_profile_inserted_directly('id')",
      'trigger profiles profile_guard_note_deleted',
      "trigger profiles profile_guard_note_deleted CREATE TRIGGER profile_guard_note_deleted AFTER DELETE ON public.profiles FOR EACH ROW EXECUTE FUNCTION private.on_profile_deleted('id')",
    ]);
  });

  it('answers the app exactly as before', async () => {
    const newcomer = await signUp(endpoint(), {
      email: 'grace@example.test',
      password: PASSWORD,
      full_name: 'Ada',
      avatar_url: 'https://cdn.example/a.png',
    });
    expect(withoutIds(newcomer.profile)).toEqual(withoutIds(before.signUp.profile));

    await db().query(
      'update public.profiles set username = null, full_name = $2, avatar_url = $3, website = null where id = $1',
      [before.signUp.userId, 'Ada', 'https://cdn.example/a.png'],
    );
    const edited = await editOwnProfile(endpoint(), {
      email: 'ada@example.test',
      password: PASSWORD,
    }, CHANGES);
    expect(edited).toEqual({ ownProfile: before.ownProfile, savedProfile: before.savedProfile });

    expect(await readPosts(endpoint())).toEqual(before.posts);
    const profiles = await readPublicProfiles(endpoint());
    const known = new Set(before.publicProfiles.map((p) => p.id));
    expect(profiles.filter((p) => known.has(p.id))).toEqual(before.publicProfiles);
  });

  it('serves the functions, health and the client kit from the adopted table', async () => {
    const { supabase, userId, accessToken } = await signedInWithoutProfile('grace@example.test');
    expect(
      (await db().query('select found_by from private.missing_profiles where user_id = $1', [
        userId,
      ])).rows,
    ).toEqual([{ found_by: 'profile_deleted' }]);
    const call = () => ensureProfileAs(accessToken);
    const created = await call();
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      profile_status: 'created',
      profile: {
        user_id: userId,
        email: null,
        full_name: 'Ada',
        username: null,
        avatar_url: 'https://cdn.example/a.png',
        metadata: {},
        created_via: null,
        created_at: null,
        updated_at: null,
      },
    });
    expect((await call()).body).toMatchObject({
      profile_status: 'existed',
      profile: { user_id: userId },
    });

    const kit = createProfileKit(supabase);
    expect(await kit.getMyProfile()).toMatchObject({ user_id: userId, full_name: 'Ada' });
    expect(await kit.updateMyProfile({ full_name: 'Grace Hopper' })).toMatchObject({
      user_id: userId,
      full_name: 'Grace Hopper',
    });
    await expect(kit.updateMyProfile({ username: 'member1' })).rejects.toMatchObject({
      status: 409,
      code: 'username_taken',
    });
    const stored = await db().one('select full_name, username from public.profiles where id = $1', [
      userId,
    ]);
    expect(stored).toEqual({ full_name: 'Grace Hopper', username: null });

    // register: the user and the profile in the app's table, the username kept; a taken one named.
    const register = createRegisterHandler({ config: api().config() });
    const registration = (body: Record<string, string>) =>
      register(
        new Request('http://functions.local/register', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': randomClientAddress() },
          body: JSON.stringify({ password: PASSWORD, ...body }),
        }),
      ).then(async (response) => ({ status: response.status, body: await response.json() }));
    const registered = await registration({
      email: 'lin@example.test',
      username: 'lin_c',
      full_name: 'Lin',
    });
    expect(registered).toMatchObject({
      status: 201,
      body: {
        profile_status: 'existed',
        profile: { username: 'lin_c', full_name: 'Lin', created_via: null },
      },
    });
    const row = await db().one('select username, full_name from public.profiles where id = $1', [
      registered.body.user.id,
    ]);
    expect(row).toEqual({ username: 'lin_c', full_name: 'Lin' });
    expect(await registration({ email: 'lin2@example.test', username: 'LIN_C' })).toMatchObject({
      status: 409,
      body: { error: { code: 'username_taken', fields: { username: 'is already taken' } } },
    });

    // Stats count every layer's work on the adopted table since it was adopted (the two missing
    // profiles the adoption backfilled among them) and no user is missing one.
    const stats = await db().one<{ s: Record<string, unknown> }>(
      'select public.profile_system_stats() as s',
    );
    expect(stats.s).toMatchObject({
      attempts: { by_source: { backfill: { created: 2 }, ensure: { created: 1, existed: 1 } } },
      missing_profiles: 0,
      success_rate: 1,
    });

    const health = await db().one<{ h: { status: string; checks: unknown } }>(
      'select public.profile_system_health() as h',
    );
    expect(health.h.status).toBe('ok');
    expect((await db().one('select private.count_missing_profiles()::int as n')).n).toBe(0);

    // An email change has nothing to copy to a table without an email column, and the scheduled
    // tick says so instead of failing.
    await db().query(`update auth.users set email = 'grace.hopper@example.test' where id = $1`, [
      userId,
    ]);
    const tick = await db().one<{ r: Record<string, Record<string, unknown>> }>(
      'select public.run_self_repair() as r',
    );
    expect(tick.r.emails).toMatchObject({ ran: true, fixed: 0, email: 'not_mapped' });
    expect(tick.r.reconcile).toMatchObject({ ran: true });
    await db().query(`update auth.users set email = 'grace@example.test' where id = $1`, [userId]);
    await supabase.auth.signOut();
  });

  it("creates the profile by the functions' direct insert when ensure_user_profile is gone", async () => {
    const { supabase, userId, accessToken } = await signedInWithoutProfile('lin@example.test');
    const signature =
      'public.ensure_user_profile(uuid, text, text, integer, text, text, text, jsonb)';
    await db().query(`alter function ${signature} rename to ensure_user_profile_gone`);
    try {
      expect(await ensureProfileAs(accessToken)).toMatchObject({
        status: 200,
        // The fallback makes the bare row, as on the default table.
        body: {
          profile_status: 'created',
          profile: { user_id: userId, full_name: null, username: null, email: null },
        },
      });
    } finally {
      await db().query(
        `alter function ${
          signature.replace('ensure_user_profile', 'ensure_user_profile_gone')
        } rename to ensure_user_profile`,
      );
    }
    expect(
      await db().one('select full_name, username from public.profiles where id = $1', [userId]),
    )
      .toEqual({ full_name: null, username: null });
    // Audited as on the default table: the layer from the fallback's header, the way it was made.
    const audit = await db().query(
      'select source, outcome, details from private.audit_logs where user_id = $1 order by id desc limit 1',
      [userId],
    );
    expect(audit.rows).toEqual([
      { source: 'ensure', outcome: 'created', details: { via: 'direct_insert' } },
    ]);
    // The layer comes from the header (a webhook's fallback says webhook), the request id too.
    await db().query('delete from public.profiles where id = $1', [userId]);
    const service = appClient(endpoint().url, api().stack.keys.serviceRoleKey);
    const direct = await service.from('user_profiles').upsert({ user_id: userId } as never, {
      onConflict: 'user_id',
      ignoreDuplicates: true,
    }).setHeader('x-profile-created-via', 'webhook').setHeader(
      'x-profile-request-id',
      'req-adopted-1',
    );
    expect(direct.error).toBeNull();
    const webhookAudit = await db().query(
      'select source, outcome, request_id from private.audit_logs where user_id = $1 order by id desc limit 1',
      [userId],
    );
    expect(webhookAudit.rows).toEqual([
      { source: 'webhook', outcome: 'created', request_id: 'req-adopted-1' },
    ]);
    await supabase.auth.signOut();
  });

  it('keeps the browser from inserting profiles: the insert policy is gone', async () => {
    const { supabase, userId } = await signedInWithoutProfile('grace@example.test');
    const { error, status } = await supabase
      .from('profiles' as 'user_profiles')
      .insert({ id: userId, full_name: 'Self-made' } as never);
    expect({ status, code: error?.code }).toEqual({ status: 403, code: '42501' });
    expect(await db().query('select 1 from public.profiles where id = $1', [userId])).toMatchObject(
      {
        rowCount: 0,
      },
    );
    const repaired = await db().one<{ r: { outcome: string } }>(
      'select public.ensure_user_profile($1) as r',
      [userId],
    );
    expect(repaired.r.outcome).toBe('created');
  });

  it('no longer fails a signup whose profile insert fails: the repair makes the profile later', async () => {
    const admitted = await withProfileFault(() =>
      signUp(endpoint(), {
        email: 'refused-after@example.test',
        password: PASSWORD,
        full_name: FAULT,
        avatar_url: 'https://cdn.example/r.png',
      })
    );
    expect(admitted.profile).toBeNull();
    const queued = await db().one<{ n: number }>(
      'select count(*)::int as n from private.repair_queue where user_id = $1 and resolved_at is null',
      [admitted.userId],
    );
    expect(queued.n).toBe(1);
    await db().query('select public.reconcile_profiles()');
    const profile = await db().one<{ full_name: string }>(
      'select full_name from public.profiles where id = $1',
      [admitted.userId],
    );
    expect(profile.full_name).toBe(FAULT);
  });

  it('rolls back to the app as it was: same schema, the data as it stands', async () => {
    const data = await appData();
    const client = new pg.Client({ connectionString: db().url });
    await client.connect();
    try {
      await applyRollback(client);
    } finally {
      await client.end();
    }
    expect(
      diffCatalogs(startCatalog, await appCatalog(), {
        expected: 'before',
        actual: 'after rollback',
      }),
    )
      .toBe('');
    expect(await appData()).toEqual(data);

    // Idempotent: a second run changes nothing.
    await db().withClient((c) => applyRollback(c));
    expect(diffCatalogs(startCatalog, await appCatalog(), { expected: 'before', actual: 'again' }))
      .toBe('');
    expect(await appData()).toEqual(data);
  });

  it('adopts again after a re-push, as ROLLBACK.md §4 says', async () => {
    await migrateDatabase(db().url);
    await asPostgres(
      db(),
      'update private.settings set trigger_enabled = true, register_enabled = true',
    );
    const meanwhile = await signUp(endpoint(), {
      email: 'meanwhile@example.test',
      password: PASSWORD,
      full_name: 'Meanwhile',
      avatar_url: 'https://cdn.example/m.png',
    });
    const { rows } = await asPostgres<{ adopt_profile_table: Record<string, unknown> }>(
      db(),
      await guideBlock('readopt'),
    );
    expect(rows[0]!.adopt_profile_table).toMatchObject({
      table: 'public.profiles',
      retired: true,
      moved: 0,
      backfilled: 0,
    });
    expect(await usersWithoutOneProfile(db())).toEqual([]);
    expect(withoutIds(meanwhile.profile)).toEqual({
      username: null,
      full_name: 'Meanwhile',
      avatar_url: 'https://cdn.example/m.png',
      website: null,
    });
    const after = await signUp(endpoint(), {
      email: 'readopted@example.test',
      password: PASSWORD,
      full_name: 'Readopted',
      avatar_url: 'https://cdn.example/r.png',
    });
    expect(after.profile?.full_name).toBe('Readopted');
    expect(await usersWithoutOneProfile(db())).toEqual([]);
  });
});
