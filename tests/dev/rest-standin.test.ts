import { randomUUID } from 'node:crypto';
import type { SupabaseClient } from '@supabase/supabase-js';
import { appClient } from '../helpers/clients.ts';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { databaseUrl } from '../../dev/database-url.ts';
import { type LocalKeys, localKeys, signEs256, signHs256 } from '../../dev/keys.ts';
import { freePort } from '../../dev/postgres.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { type RunningRest, startRest } from '../helpers/rest-standin.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

// The local PostgREST stand-in, driven through the real supabase-js client (and raw fetch where
// exact statuses and headers matter) against this file's migrated database.

const db = useTestDatabase();

let keys: LocalKeys;
let rest: RunningRest;
let service: SupabaseClient;
let anon: SupabaseClient;
let alice = '';
let bob = '';
let aliceToken = '';
let bobToken = '';
let alicesClient: SupabaseClient;

function clientWithToken(token: string): SupabaseClient {
  return appClient(rest.url, keys.anonKey, {
    global: { headers: { Authorization: `Bearer ${token}` } },
  });
}

async function userToken(sub: string, expiresIn = 3600): Promise<string> {
  return await signEs256(
    {
      sub,
      role: 'authenticated',
      aud: 'authenticated',
      exp: Math.floor(Date.now() / 1000) + expiresIn,
    },
    keys.signingKey,
  );
}

/** Raw request to the stand-in, for exact statuses and headers. */
async function restFetch(
  path: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
): Promise<Response> {
  return await fetch(`${rest.url}/rest/v1${path}`, init);
}

async function profile(userId: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db().query('select * from public.user_profiles where user_id = $1', [
    userId,
  ]);
  return rows[0];
}

beforeAll(async () => {
  keys = await localKeys();
  rest = await startRest(db().authenticator, keys);
  service = appClient(rest.url, keys.serviceRoleKey);
  anon = appClient(rest.url, keys.anonKey);
  alice = await signUpAsSupabaseAuth(db(), {
    userMetadata: { full_name: 'Alice Liddell', username: 'alice' },
  });
  bob = await signUpAsSupabaseAuth(db(), {
    userMetadata: { full_name: 'Bob Builder', username: 'bobby' },
  });
  aliceToken = await userToken(alice);
  bobToken = await userToken(bob);
  alicesClient = clientWithToken(aliceToken);

  // Throwaway functions that show what a request looks like from inside SQL.
  await db().query(`
    create function public.whoami() returns uuid language sql stable as $$ select auth.uid() $$;
    create function public.request_context() returns jsonb language sql volatile as $$
      select jsonb_build_object(
        'current_user', current_user,
        'x_trace', current_setting('request.headers')::jsonb ->> 'x-trace',
        'claims', current_setting('request.jwt.claims')::jsonb,
        'read_only', current_setting('transaction_read_only'),
        'statement_timeout', current_setting('statement_timeout'))
    $$;
    create function public.stable_context() returns jsonb language sql stable as $$
      select jsonb_build_object('current_user', current_user, 'read_only', current_setting('transaction_read_only'),
                                'statement_timeout', current_setting('statement_timeout'))
    $$;
    create function public.numbers_up_to(n integer) returns setof integer language sql stable as $$
      select generate_series(1, n)
    $$;
    create function public.do_nothing() returns void language sql volatile as $$ select $$;
    grant execute on function public.whoami(), public.request_context(), public.stable_context(), public.numbers_up_to(integer),
      public.do_nothing() to anon, authenticated, service_role;
  `);
});

afterAll(async () => {
  await rest?.close();
  await db().query(`
    drop function if exists public.whoami();
    drop function if exists public.request_context();
    drop function if exists public.stable_context();
    drop function if exists public.numbers_up_to(integer);
    drop function if exists public.do_nothing();
  `);
});

describe('RPC', () => {
  it('service_role calls ensure_user_profile and gets its jsonb result back as is', async () => {
    const existing = await service.rpc('ensure_user_profile', { p_user_id: alice });
    expect(existing.error).toBeNull();
    expect(existing.status).toBe(200);
    expect(existing.data.outcome).toBe('existed');
    expect(existing.data.profile.user_id).toBe(alice);
    expect(existing.data.profile.username).toBe('alice');

    const orphan = await signUpAsSupabaseAuth(db(), {
      userMetadata: { full_name: 'Orphan Annie' },
    });
    await db().query('delete from public.user_profiles where user_id = $1', [orphan]);
    const created = await service.rpc('ensure_user_profile', {
      p_user_id: orphan,
      p_source: 'register',
      p_request_id: 'req-1',
    });
    expect(created.error).toBeNull();
    expect(created.data.outcome).toBe('created');
    expect(created.data.profile).toMatchObject({
      user_id: orphan,
      full_name: 'Orphan Annie',
      created_via: 'register',
    });
    expect((await profile(orphan))?.created_via).toBe('register');
  });

  it('service_role reads profile_system_health and profile_system_stats', async () => {
    const health = await service.rpc('profile_system_health');
    expect(health.error).toBeNull();
    expect(health.status).toBe(200);
    expect(Object.keys(health.data.checks).sort()).toEqual([
      'missing_profiles',
      'repair_queue_age',
      'success_rate',
      'trigger_enabled',
      'trigger_installed',
    ]);
    expect(health.data.checks.trigger_installed).toEqual({ ok: true, value: true });

    const stats = await service.rpc('profile_system_stats', { p_window: '1 hour' });
    expect(stats.error).toBeNull();
    expect(stats.data.window.seconds).toBe(3600);
  });

  it('anon calling ensure_user_profile gets 401 with code 42501', async () => {
    const { data, error, status } = await anon.rpc('ensure_user_profile', { p_user_id: alice });
    expect(status).toBe(401);
    expect(data).toBeNull();
    expect(error).toEqual({
      code: '42501',
      message: 'permission denied for function ensure_user_profile',
      details: null,
      hint: null,
    });
  });

  it('an authenticated user calling ensure_user_profile gets 403 with code 42501', async () => {
    const { error, status } = await alicesClient.rpc('ensure_user_profile', { p_user_id: alice });
    expect(status).toBe(403);
    expect(error).toEqual({
      code: '42501',
      message: 'permission denied for function ensure_user_profile',
      details: null,
      hint: null,
    });
  });

  it('a function that does not exist is 404 PGRST202 with a suggestion', async () => {
    const misspelt = await service.rpc('ensure_user_profil', { p_user_id: alice });
    expect(misspelt.status).toBe(404);
    expect(misspelt.error).toEqual({
      code: 'PGRST202',
      message:
        'Could not find the function public.ensure_user_profil(p_user_id) in the schema cache',
      details:
        'Searched for the function public.ensure_user_profil with parameter p_user_id or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.',
      hint: 'Perhaps you meant to call the function public.ensure_user_profile',
    });

    const wrongArgument = await service.rpc('ensure_user_profile', {
      p_user_id: alice,
      p_colour: 'blue',
    });
    expect(wrongArgument.status).toBe(404);
    expect(wrongArgument.error?.code).toBe('PGRST202');
    expect(wrongArgument.error?.message).toBe(
      'Could not find the function public.ensure_user_profile(p_colour, p_user_id) in the schema cache',
    );
  });

  it('ensure_user_profile for a uuid with no auth user is 400 with the function’s own code UP404', async () => {
    const nobody = randomUUID();
    const { error, status } = await service.rpc('ensure_user_profile', { p_user_id: nobody });
    expect(status).toBe(400);
    expect(error).toEqual({
      code: 'UP404',
      message: `auth user ${nobody} does not exist`,
      details: null,
      hint:
        'Create the user through Supabase Auth first; profiles are only made for existing auth users.',
    });
  });

  it('an invalid argument is 400 with code 22023, a malformed uuid 400 with 22P02', async () => {
    const badSource = await service.rpc('ensure_user_profile', {
      p_user_id: alice,
      p_source: 'bogus',
    });
    expect(badSource.status).toBe(400);
    expect(badSource.error).toEqual({
      code: '22023',
      message:
        "p_source must be one of register, ensure, webhook, backfill, reconcile (got 'bogus')",
      details: null,
      hint: null,
    });

    const badUuid = await service.rpc('ensure_user_profile', { p_user_id: 'not-a-uuid' });
    expect(badUuid.status).toBe(400);
    expect(badUuid.error?.code).toBe('22P02');
    expect(badUuid.error?.message).toBe('invalid input syntax for type uuid: "not-a-uuid"');
  });

  it('runs a stable function read-only and a volatile one read-write, as PostgREST does', async () => {
    expect((await anon.rpc('stable_context')).data).toMatchObject({ read_only: 'on' });
    expect((await anon.rpc('request_context')).data).toMatchObject({ read_only: 'off' });
  });

  it('a body that is not a JSON object is 400 PGRST102', async () => {
    const headers = { apikey: keys.serviceRoleKey, 'Content-Type': 'application/json' };
    const notJson = await restFetch('/rpc/profile_system_health', {
      method: 'POST',
      headers,
      body: '{"oops',
    });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toEqual({
      code: 'PGRST102',
      message: 'Empty or invalid json',
      details: null,
      hint: null,
    });

    // One call per element of an array is PostgREST's, not this stand-in's.
    const array = await restFetch('/rpc/profile_system_health', {
      method: 'POST',
      headers,
      body: '[]',
    });
    expect(array.status).toBe(400);
    expect(((await array.json()) as { code: string }).code).toBe('PGRST127');
  });

  it('refuses what the project never calls: a set-returning function is not found, GET and query parameters are refused', async () => {
    const setReturning = await alicesClient.rpc('numbers_up_to', { n: 3 });
    expect(setReturning.status).toBe(404);
    expect(setReturning.error?.code).toBe('PGRST202');

    const viaGet = await service.rpc('profile_system_health', {}, { get: true });
    expect(viaGet.status).toBe(404);
    expect(viaGet.data).toBeNull();

    const counted = await service.rpc('profile_system_health', {}, { count: 'exact' });
    expect({ status: counted.status, code: counted.error?.code }).toEqual({
      status: 400,
      code: 'PGRST127',
    });
    const filtered = await restFetch('/rpc/profile_system_health?select=checks', {
      method: 'POST',
      headers: {
        apikey: keys.serviceRoleKey,
        Authorization: `Bearer ${keys.serviceRoleKey}`,
        'Content-Type': 'application/json',
      },
      body: '{}',
    });
    expect(filtered.status).toBe(400);
    expect(((await filtered.json()) as { code: string }).code).toBe('PGRST127');
  });

  it('a void function answers 204 without a body', async () => {
    const response = await restFetch('/rpc/do_nothing', {
      method: 'POST',
      headers: { apikey: keys.anonKey, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');

    const { data, error, status } = await anon.rpc('do_nothing');
    expect({ data, error, status }).toEqual({ data: null, error: null, status: 204 });
  });
});

describe('schema cache', () => {
  it('finds a function created after the cache was loaded, and picks overloads by argument names', async () => {
    expect((await service.rpc('profile_system_health')).status).toBe(200);
    await db().query(`
      create function public.pick(a integer) returns text language sql immutable as $$ select 'integer a' $$;
      create function public.pick(b text) returns text language sql immutable as $$ select 'text b' $$;
      create function public.pick(c integer, d integer default 0) returns text language sql immutable as $$ select 'c and d' $$;
      create function public.clash(x integer) returns text language sql immutable as $$ select 'integer' $$;
      create function public.clash(x text) returns text language sql immutable as $$ select 'text' $$;
    `);
    try {
      expect((await anon.rpc('pick', { a: 1 })).data).toBe('integer a');
      expect((await anon.rpc('pick', { b: 'x' })).data).toBe('text b');
      expect((await anon.rpc('pick', { c: 1 })).data).toBe('c and d');
      expect((await anon.rpc('pick', { c: 1, d: 2 })).data).toBe('c and d');

      // PostgREST would choose by argument types (or answer 300 PGRST203); the project has no overloads.
      const ambiguous = await anon.rpc('clash', { x: 1 });
      expect(ambiguous.status).toBe(400);
      expect(ambiguous.error?.code).toBe('PGRST127');
    } finally {
      await db().query(
        'drop function public.pick(integer); drop function public.pick(text); drop function public.pick(integer, integer);',
      );
      await db().query('drop function public.clash(integer); drop function public.clash(text);');
    }
  });
});

describe('PostgREST details', () => {
  it('an insert without return=representation answers 201 with an empty body', async () => {
    const user = await signUpAsSupabaseAuth(db(), {});
    await db().query('delete from public.user_profiles where user_id = $1', [user]);
    const response = await restFetch('/user_profiles', {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${keys.serviceRoleKey}`,
        'Content-Type': 'application/json',
        Prefer: 'return=minimal',
      },
      body: JSON.stringify({ user_id: user, created_via: 'backfill' }),
    });
    expect(response.status).toBe(201);
    expect(await response.text()).toBe('');
    expect((await profile(user))?.created_via).toBe('backfill');
  });

  it('refuses query syntax, preferences and media types it does not implement instead of ignoring them', async () => {
    const headers = { apikey: keys.serviceRoleKey, Authorization: `Bearer ${keys.serviceRoleKey}` };
    const noOperator = await restFetch(`/user_profiles?user_id=${alice}`, { headers });
    expect(noOperator.status).toBe(400);
    expect(((await noOperator.json()) as { code: string }).code).toBe('PGRST100');

    const refusedAs = async (
      query: PromiseLike<{ status: number; error: { code: string } | null }>,
    ) => {
      const { status, error } = await query;
      return { status, code: error?.code };
    };
    const profiles = () => service.from('user_profiles');
    const parseError = { status: 400, code: 'PGRST100' };
    expect(await refusedAs(profiles().select('user_id').neq('user_id', alice))).toEqual(parseError);
    expect(await refusedAs(profiles().select('user_id').in('user_id', [alice, bob]))).toEqual(
      parseError,
    );
    expect(
      await refusedAs(profiles().select('user_id').or(`user_id.eq.${alice},user_id.eq.${bob}`)),
    ).toEqual(parseError);
    // Order and limit are served on reads (tests/dev/rest-embedding.test.ts), not on writes.
    expect(await refusedAs(profiles().select('user_id').range(0, 1))).toEqual(parseError);
    expect(await refusedAs(profiles().delete().eq('user_id', alice).order('user_id').limit(1)))
      .toEqual(parseError);
    // auth.users is not in the exposed schema: no relationship to embed, as in PostgREST.
    expect(await refusedAs(profiles().select('user_id, users(email)'))).toEqual({
      status: 400,
      code: 'PGRST200',
    });
    // An alias or cast is refused as syntax the stand-in does not parse.
    expect(await refusedAs(profiles().select('name:full_name'))).toEqual(parseError);
    expect(await refusedAs(profiles().select('full_name::text'))).toEqual(parseError);

    const notImplemented = { status: 400, code: 'PGRST127' };
    expect(await refusedAs(profiles().select('user_id', { count: 'exact' }))).toEqual(
      notImplemented,
    );
    // .single() and .upsert() are served (tests/dev/rest-upsert-single.test.ts); stripped nulls
    // and missing=default are not.
    expect(
      await refusedAs(profiles().select('user_id').eq('user_id', alice).single().stripNulls()),
    ).toEqual(notImplemented);
    expect(await refusedAs(profiles().insert([{ user_id: alice }, { user_id: bob }]))).toEqual(
      notImplemented,
    );
    expect(
      await refusedAs(
        profiles().upsert({ user_id: alice }, { onConflict: 'user_id', defaultToNull: false }),
      ),
    ).toEqual(notImplemented);
    const csv = await restFetch('/user_profiles?select=user_id', {
      headers: { ...headers, Accept: 'text/csv' },
    });
    expect(csv.status).toBe(406);
    expect(((await csv.json()) as { code: string }).code).toBe('PGRST107');
  });
});

describe('what SQL sees', () => {
  it('request.jwt.claims carries the token: auth.uid() is its sub', async () => {
    expect((await alicesClient.rpc('whoami')).data).toBe(alice);
    expect((await clientWithToken(bobToken).rpc('whoami')).data).toBe(bob);
    expect((await service.rpc('whoami')).data).toBeNull();
    expect((await anon.rpc('whoami')).data).toBeNull();
  });

  it('the role, claims, headers and the role’s statement_timeout reach SQL', async () => {
    const headers = {
      Authorization: `Bearer ${aliceToken}`,
      apikey: keys.anonKey,
      'X-Trace': 'trace-1',
      'Content-Type': 'application/json',
    };
    const post = await restFetch('/rpc/request_context', { method: 'POST', headers, body: '{}' });
    expect(post.status).toBe(200);
    const seen = (await post.json()) as Record<string, unknown>;
    expect(seen).toMatchObject({
      current_user: 'authenticated',
      x_trace: 'trace-1',
      read_only: 'off',
      statement_timeout: '8s',
    });
    expect(seen.claims).toMatchObject({ sub: alice, role: 'authenticated', aud: 'authenticated' });

    expect((await anon.rpc('request_context')).data).toMatchObject({
      current_user: 'anon',
      statement_timeout: '3s',
      claims: { role: 'anon', iss: 'supabase-demo' },
    });
  });

  it('without any credentials the request runs as anon with only the role claim', async () => {
    const response = await restFetch('/rpc/request_context', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { claims: unknown }).claims).toEqual({ role: 'anon' });
  });
});

describe('tables', () => {
  it('an authenticated user selects exactly its own profile', async () => {
    const { data, error, status } = await alicesClient.from('user_profiles').select();
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toHaveLength(1);
    expect(data![0]).toMatchObject({
      user_id: alice,
      full_name: 'Alice Liddell',
      username: 'alice',
      created_via: 'trigger',
    });
  });

  it('.maybeSingle() reads one profile by eq filter, or none', async () => {
    const own = await alicesClient.from('user_profiles').select('user_id, username').eq(
      'user_id',
      alice,
    ).maybeSingle();
    expect(own.error).toBeNull();
    expect(own.data).toEqual({ user_id: alice, username: 'alice' });

    const maybe = await alicesClient.from('user_profiles').select().eq('user_id', bob)
      .maybeSingle();
    expect({ data: maybe.data, error: maybe.error }).toEqual({ data: null, error: null });
  });

  it('a user updates its own full_name (204, or 200 with the row) and not another user’s', async () => {
    const minimal = await alicesClient.from('user_profiles').update({
      full_name: 'Alice Pleasance',
    }).eq('user_id', alice);
    expect({ error: minimal.error, status: minimal.status }).toEqual({ error: null, status: 204 });
    expect((await profile(alice))?.full_name).toBe('Alice Pleasance');

    const withRow = await alicesClient.from('user_profiles').update({ full_name: 'Alice Liddell' })
      .eq('user_id', alice).select('full_name');
    expect(withRow.status).toBe(200);
    expect(withRow.data).toEqual([{ full_name: 'Alice Liddell' }]);

    const notHers = await alicesClient.from('user_profiles').update({ full_name: 'Hijacked' }).eq(
      'user_id',
      bob,
    ).select();
    expect(notHers.error).toBeNull();
    expect(notHers.data).toEqual([]);
    expect((await profile(bob))?.full_name).toBe('Bob Builder');
  });

  it('updating email, a column without an UPDATE grant, is 403 42501', async () => {
    const { error, status } = await alicesClient.from('user_profiles').update({
      email: 'evil@example.test',
    }).eq('user_id', alice);
    expect(status).toBe(403);
    expect(error).toEqual({
      code: '42501',
      message: 'permission denied for table user_profiles',
      details: null,
      hint: null,
    });
    expect((await profile(alice))?.email).toBe(`user-${alice}@example.test`);
  });

  it('a username another profile has (in any case) is 409 23505', async () => {
    const { error, status } = await alicesClient.from('user_profiles').update({ username: 'BOBBY' })
      .eq('user_id', alice);
    expect(status).toBe(409);
    expect(error?.code).toBe('23505');
    expect(error?.message).toBe(
      'duplicate key value violates unique constraint "user_profiles_username_key"',
    );
    expect((await profile(alice))?.username).toBe('alice');
  });

  it('anon selecting user_profiles is 401 42501', async () => {
    const { data, error, status } = await anon.from('user_profiles').select();
    expect(status).toBe(401);
    expect(data).toBeNull();
    expect(error).toEqual({
      code: '42501',
      message: 'permission denied for table user_profiles',
      details: null,
      hint: null,
    });
  });

  it('service_role upsert with ignoreDuplicates is idempotent', async () => {
    const user = await signUpAsSupabaseAuth(db(), { userMetadata: { full_name: 'Upsert Target' } });
    await db().query('delete from public.user_profiles where user_id = $1', [user]);
    const row = {
      user_id: user,
      email: 'upsert@example.test',
      full_name: 'First Write',
      created_via: 'backfill',
    };

    const first = await service.from('user_profiles').upsert(row, {
      onConflict: 'user_id',
      ignoreDuplicates: true,
    });
    expect({ error: first.error, status: first.status }).toEqual({ error: null, status: 201 });
    const second = await service
      .from('user_profiles')
      .upsert({ ...row, full_name: 'Second Write' }, {
        onConflict: 'user_id',
        ignoreDuplicates: true,
      })
      .select();
    expect(second.error).toBeNull();
    expect(second.data).toEqual([]);
    const { rows } = await db().query(
      'select full_name from public.user_profiles where user_id = $1',
      [user],
    );
    expect(rows).toEqual([{ full_name: 'First Write' }]);
  });

  it('service_role inserts a profile and gets it back with .select()', async () => {
    const user = await signUpAsSupabaseAuth(db(), {});
    await db().query('delete from public.user_profiles where user_id = $1', [user]);
    const { data, error, status } = await service
      .from('user_profiles')
      .insert({ user_id: user, created_via: 'backfill', metadata: { plan: 'pro' } })
      .select('user_id, metadata, created_via');
    expect(error).toBeNull();
    expect(status).toBe(201);
    expect(data).toEqual([{ user_id: user, metadata: { plan: 'pro' }, created_via: 'backfill' }]);

    const duplicate = await service.from('user_profiles').insert({
      user_id: user,
      created_via: 'backfill',
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.error?.code).toBe('23505');
  });

  it('service_role deletes a profile', async () => {
    const user = await signUpAsSupabaseAuth(db(), {});
    const deleted = await service.from('user_profiles').delete().eq('user_id', user).select(
      'user_id',
    );
    expect(deleted.error).toBeNull();
    expect(deleted.status).toBe(200);
    expect(deleted.data).toEqual([{ user_id: user }]);
    expect(await profile(user)).toBeUndefined();

    const again = await service.from('user_profiles').delete().eq('user_id', user);
    expect({ error: again.error, status: again.status }).toEqual({ error: null, status: 204 });
  });

  it('an authenticated user cannot delete its own profile: no policy, no grant', async () => {
    const { error, status } = await alicesClient.from('user_profiles').delete().eq(
      'user_id',
      alice,
    );
    expect(status).toBe(403);
    expect(error?.code).toBe('42501');
    expect(await profile(alice)).toBeDefined();
  });

  it('eq filters and a column list pick the rows PostgREST would, with Content-Range', async () => {
    const named = await service.from('user_profiles').select('full_name,username').eq(
      'username',
      'alice',
    ).eq('user_id', alice);
    expect(named.data).toEqual([{ full_name: 'Alice Liddell', username: 'alice' }]);
    const none = await service.from('user_profiles').select('user_id').eq('user_id', alice).eq(
      'username',
      'bobby',
    );
    expect(none.data).toEqual([]);

    const headers = { apikey: keys.serviceRoleKey, Authorization: `Bearer ${keys.serviceRoleKey}` };
    const one = await restFetch(`/user_profiles?select=user_id&user_id=eq.${alice}`, { headers });
    expect(one.headers.get('content-range')).toBe('0-0/*');
    const empty = await restFetch(`/user_profiles?select=user_id&user_id=eq.${randomUUID()}`, {
      headers,
    });
    expect(empty.headers.get('content-range')).toBe('*/*');
  });

  it('an unknown table is 404 PGRST205 and an unknown column 400 42703', async () => {
    const table = await service.from('user_profile').select();
    expect(table.status).toBe(404);
    expect(table.error).toEqual({
      code: 'PGRST205',
      message: "Could not find the table 'public.user_profile' in the schema cache",
      details: null,
      hint: "Perhaps you meant the table 'public.user_profiles'",
    });

    const column = await service.from('user_profiles').select('nickname');
    expect(column.status).toBe(400);
    expect(column.error).toEqual({
      code: '42703',
      message: 'column user_profiles.nickname does not exist',
      details: null,
      hint: null,
    });

    const bodyColumn = await service.from('user_profiles').insert({
      user_id: alice,
      nickname: 'x',
    });
    expect(bodyColumn.status).toBe(400);
    expect(bodyColumn.error?.code).toBe('PGRST204');
    expect(bodyColumn.error?.message).toBe(
      "Could not find the 'nickname' column of 'user_profiles' in the schema cache",
    );
  });

  it('answers JSON as application/json; charset=utf-8, errors included', async () => {
    const ok = await restFetch(`/user_profiles?select=user_id&user_id=eq.${alice}`, {
      headers: { Authorization: `Bearer ${keys.serviceRoleKey}` },
    });
    expect(ok.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const denied = await restFetch('/user_profiles', { headers: { apikey: keys.anonKey } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });
});

describe('schemas', () => {
  it('Accept-Profile: private is 406 PGRST106', async () => {
    const response = await restFetch('/settings', {
      headers: { apikey: keys.serviceRoleKey, 'Accept-Profile': 'private' },
    });
    expect(response.status).toBe(406);
    expect(await response.json()).toEqual({
      code: 'PGRST106',
      message: 'Invalid schema: private',
      details: null,
      hint: 'Only the following schemas are exposed: public',
    });

    const viaClient = await service.schema('private').rpc('count_missing_profiles');
    expect(viaClient.status).toBe(406);
    expect(viaClient.error?.code).toBe('PGRST106');
  });
});

describe('tokens', () => {
  const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it('a forged, expired or alg-none token is 401 PGRST301 and nothing is written', async () => {
    const forged = await signHs256({
      role: 'service_role',
      exp: Math.floor(Date.now() / 1000) + 3600,
    }, 'not-the-secret-not-the-secret-not-the-secret');
    const expired = await userToken(alice, -60);
    const algNone = `${base64url({ alg: 'none', typ: 'JWT' })}.${
      base64url({ role: 'service_role' })
    }.`;
    const cases = [
      { token: forged, message: 'JWT cryptographic operation failed' },
      { token: expired, message: 'JWT expired' },
      { token: algNone, message: 'Wrong or unsupported encoding algorithm' },
    ];
    const auditRows = async () =>
      Number((await db().one('select count(*) as n from private.audit_logs')).n);
    const auditBefore = await auditRows();
    for (const { token, message } of cases) {
      const { error, status } = await clientWithToken(token).from('user_profiles').update({
        full_name: 'Pwned',
      }).eq('user_id', alice);
      expect(status).toBe(401);
      expect(error).toEqual({ code: 'PGRST301', message, details: null, hint: null });

      const raw = await restFetch('/rpc/ensure_user_profile', {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ p_user_id: alice }),
      });
      expect(raw.status).toBe(401);
      expect(raw.headers.get('www-authenticate')).toBe(
        `Bearer error="invalid_token", error_description="${message}"`,
      );
    }
    expect((await profile(alice))?.full_name).toBe('Alice Liddell');
    expect(await auditRows()).toBe(auditBefore);
  });
});

describe('database availability', () => {
  it('an unreachable database is 503 PGRST000', async () => {
    const closedPort = await freePort();
    const pool = new pg.Pool({
      connectionString: `postgres://authenticator:postgres@127.0.0.1:${closedPort}/postgres`,
    });
    const down = await startRest(pool, keys);
    try {
      const client = appClient(down.url, keys.serviceRoleKey);
      const { data, error, status } = await client.rpc('profile_system_health');
      expect(status).toBe(503);
      expect(data).toBeNull();
      expect(error?.code).toBe('PGRST000');
      expect(error?.message).toBe('Database connection error.');
      expect(error?.details).toContain('ECONNREFUSED');

      const raw = await fetch(`${down.url}/rest/v1/user_profiles`, {
        headers: { apikey: keys.serviceRoleKey },
      });
      expect(raw.status).toBe(503);
      expect(((await raw.json()) as { code: string }).code).toBe('PGRST000');
    } finally {
      await down.close();
      await pool.end();
    }
  });

  it('a pool with no free connection within its timeout is 504 PGRST003', async () => {
    const url = databaseUrl(inject('serverUrl'), { database: db().name, role: 'authenticator' });
    const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 200 });
    const busy = await startRest(pool, keys);
    const held = await pool.connect();
    try {
      const response = await fetch(`${busy.url}/rest/v1/rpc/whoami`, {
        method: 'POST',
        headers: { apikey: keys.anonKey, 'Content-Type': 'application/json' },
        body: '{}',
      });
      expect(response.status).toBe(504);
      expect(await response.json()).toEqual({
        code: 'PGRST003',
        message: 'Timed out acquiring connection from connection pool.',
        details: null,
        hint: null,
      });
    } finally {
      held.release();
      await busy.close();
      await pool.end();
    }
  });
});
