import type { SupabaseClient } from '@supabase/supabase-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

// .single(), .maybeSingle() and .upsert() against the local PostgREST stand-in, as an app built on
// Supabase's user-management quickstart calls them: users signed up and in through the Auth
// stand-in, each writing its own row of public.profiles under the quickstart's policies, through
// the real supabase-js client (and raw fetch for exact statuses and headers).

const db = useTestDatabase();
const api = useLocalApi(db);

interface User {
  id: string;
  client: SupabaseClient;
  token: string;
}

let alice: User;
let bob: User;
let carol: User;
let service: SupabaseClient;

async function signUp(name: string): Promise<User> {
  const client = appClient(api().stack.apiUrl, api().stack.keys.anonKey);
  const { data, error } = await client.auth.signUp({
    email: `${name}.${Date.now().toString(36)}@example.com`,
    password: `pw-${crypto.randomUUID()}`,
  });
  if (error || !data.user || !data.session) throw error ?? new Error('no session');
  return { id: data.user.id, client, token: data.session.access_token };
}

/** Raw request to the stand-in as `user`, for exact statuses and headers. */
async function restFetch(
  user: User,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Response> {
  return await fetch(`${api().stack.apiUrl}/rest/v1${path}`, {
    method: init.method ?? 'GET',
    headers: {
      apikey: api().stack.keys.anonKey,
      Authorization: `Bearer ${user.token}`,
      ...(init.body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

async function profileRows(id: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db().query(
    'select username, full_name, website from public.profiles where id = $1',
    [id],
  );
  return rows;
}

const OBJECT_JSON = 'application/vnd.pgrst.object+json; charset=utf-8';

beforeAll(async () => {
  service = appClient(api().stack.apiUrl, api().stack.keys.serviceRoleKey);
  alice = await signUp('alice');
  bob = await signUp('bob');
  carol = await signUp('carol');

  // The quickstart's table and policies, as its SQL creates them.
  await db().query(`
    create table public.profiles (
      id uuid references auth.users on delete cascade not null primary key,
      updated_at timestamp with time zone,
      username text unique,
      full_name text,
      website text,
      constraint username_length check (char_length(username) >= 3)
    );
    alter table public.profiles enable row level security;
    create policy "Public profiles are viewable by everyone." on public.profiles
      for select using (true);
    create policy "Users can insert their own profile." on public.profiles
      for insert with check ((select auth.uid()) = id);
    create policy "Users can update own profile." on public.profiles
      for update using ((select auth.uid()) = id);
    grant select, insert, update on public.profiles to anon, authenticated;
    grant all on public.profiles to service_role;

    -- No primary key: an upsert without on_conflict is a plain insert.
    create table public.guestbook (author uuid, note text);
    grant select, insert on public.guestbook to authenticated;
  `);
});

describe('.upsert() of the account form', () => {
  it('inserts the owner’s row (201), then updates it (200): still one row', async () => {
    const first = await alice.client.from('profiles').upsert({
      id: alice.id,
      username: 'alice',
      website: 'https://alice.example',
      updated_at: new Date().toISOString(),
    });
    expect({ error: first.error, status: first.status }).toEqual({ error: null, status: 201 });
    expect(await profileRows(alice.id)).toEqual([
      { username: 'alice', full_name: null, website: 'https://alice.example' },
    ]);

    const second = await alice.client.from('profiles').upsert({
      id: alice.id,
      username: 'alice_l',
      website: 'https://wonderland.example',
      updated_at: new Date().toISOString(),
    });
    expect({ error: second.error, status: second.status }).toEqual({ error: null, status: 200 });
    expect(await profileRows(alice.id)).toEqual([
      { username: 'alice_l', full_name: null, website: 'https://wonderland.example' },
    ]);
  });

  it('sets only the payload’s columns on conflict, and answers the row with .select().single()', async () => {
    await db().query(`update public.profiles set full_name = 'Alice Liddell' where id = $1`, [
      alice.id,
    ]);
    const { data, error, status } = await alice.client.from('profiles').upsert({
      id: alice.id,
      website: 'https://looking-glass.example',
    }).select('username, full_name, website').single();
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual({
      username: 'alice_l',
      full_name: 'Alice Liddell',
      website: 'https://looking-glass.example',
    });
  });

  it('answers as PostgREST does: Preference-Applied, the object media type, 201 or 200', async () => {
    const body = { id: bob.id, username: 'bobby' };
    const headers = {
      Prefer: 'resolution=merge-duplicates,return=representation',
      Accept: 'application/vnd.pgrst.object+json',
    };
    const inserted = await restFetch(bob, '/profiles?select=id,username', {
      method: 'POST',
      headers,
      body,
    });
    expect(inserted.status).toBe(201);
    expect(inserted.headers.get('preference-applied')).toBe(
      'resolution=merge-duplicates, return=representation',
    );
    expect(inserted.headers.get('content-type')).toBe(OBJECT_JSON);
    expect(await inserted.json()).toEqual(body);

    const updated = await restFetch(bob, '/profiles?select=username', {
      method: 'POST',
      headers,
      body: { ...body, username: 'bob_the_builder' },
    });
    expect(updated.status).toBe(200);
    expect(await updated.text()).toBe('{"username":"bob_the_builder"}');
  });

  it('someone else’s id is 403 42501 whether their row exists or not, and nothing changes', async () => {
    const existing = await bob.client.from('profiles').upsert({
      id: alice.id,
      username: 'mallory',
    });
    expect(existing.status).toBe(403);
    expect(existing.error).toEqual({
      code: '42501',
      message: 'new row violates row-level security policy for table "profiles"',
      details: null,
      hint: null,
    });
    expect((await profileRows(alice.id))[0]?.username).toBe('alice_l');

    const missing = await bob.client.from('profiles').upsert({ id: carol.id, username: 'carol' });
    expect(missing.status).toBe(403);
    expect(missing.error?.code).toBe('42501');
    expect(await profileRows(carol.id)).toEqual([]);
  });

  it('ignoreDuplicates without onConflict uses the primary key and leaves the row as it was', async () => {
    const row = { id: carol.id, username: 'carol', website: 'https://carol.example' };
    const first = await carol.client.from('profiles').upsert(row, { ignoreDuplicates: true })
      .select();
    expect(first.error).toBeNull();
    expect(first.status).toBe(201);
    expect(first.data).toMatchObject([row]);

    const again = await carol.client.from('profiles').upsert(
      { ...row, website: 'https://elsewhere.example' },
      { ignoreDuplicates: true },
    ).select();
    expect({ error: again.error, status: again.status, data: again.data }).toEqual({
      error: null,
      status: 201,
      data: [],
    });
    expect((await profileRows(carol.id))[0]?.website).toBe('https://carol.example');
  });

  it('onConflict still names the target: a merge on username updates that row', async () => {
    const { data, error } = await service.from('profiles').upsert(
      { id: carol.id, username: 'carol', full_name: 'Carol Danvers' },
      { onConflict: 'username' },
    ).select('username, full_name');
    expect(error).toBeNull();
    expect(data).toEqual([{ username: 'carol', full_name: 'Carol Danvers' }]);
  });

  it('a table without a primary key gets a plain insert, and no resolution is applied', async () => {
    const response = await restFetch(carol, '/guestbook', {
      method: 'POST',
      headers: { Prefer: 'resolution=merge-duplicates' },
      body: { author: carol.id, note: 'hi' },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('preference-applied')).toBeNull();
    const again = await carol.client.from('guestbook').upsert({ author: carol.id, note: 'hi' });
    expect({ error: again.error, status: again.status }).toEqual({ error: null, status: 201 });
    const { rows } = await db().query('select note from public.guestbook');
    expect(rows).toEqual([{ note: 'hi' }, { note: 'hi' }]);
  });
});

describe('.single() and .maybeSingle()', () => {
  it('.single() answers the one row as an object', async () => {
    const { data, error, status } = await alice.client.from('profiles').select('username, website')
      .eq('id', alice.id).single();
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual({ username: 'alice_l', website: 'https://looking-glass.example' });

    const raw = await restFetch(bob, `/profiles?select=username&id=eq.${bob.id}`, {
      headers: { Accept: 'application/vnd.pgrst.object' },
    });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe(OBJECT_JSON);
    expect(raw.headers.get('content-range')).toBe('0-0/*');
    expect(await raw.text()).toBe('{"username":"bob_the_builder"}');
  });

  it('.single() on no row, or on several, is 406 PGRST116', async () => {
    const none = await alice.client.from('profiles').select('username').eq(
      'id',
      crypto.randomUUID(),
    ).single();
    expect(none.status).toBe(406);
    expect(none.data).toBeNull();
    expect(none.error).toEqual({
      code: 'PGRST116',
      message: 'JSON object requested, multiple (or no) rows returned',
      details: 'The result contains 0 rows',
      hint: null,
    });

    const several = await alice.client.from('profiles').select('username').single();
    expect(several.status).toBe(406);
    expect(several.error?.details).toBe('The result contains 3 rows');
  });

  it('.maybeSingle() asks for an array and picks the row itself: null for none, its own 406 for several', async () => {
    const own = await bob.client.from('profiles').select('username').eq('id', bob.id)
      .maybeSingle();
    expect({ data: own.data, error: own.error }).toEqual({
      data: { username: 'bob_the_builder' },
      error: null,
    });

    const none = await bob.client.from('profiles').select('username').eq(
      'id',
      crypto.randomUUID(),
    ).maybeSingle();
    expect({ data: none.data, error: none.error, status: none.status }).toEqual({
      data: null,
      error: null,
      status: 200,
    });

    const several = await bob.client.from('profiles').select('username').maybeSingle();
    expect(several.status).toBe(406);
    expect(several.error).toEqual({
      code: 'PGRST116',
      message: 'JSON object requested, multiple (or no) rows returned',
      details: 'Results contain 3 rows, application/vnd.pgrst.object+json requires 1 row',
      hint: null,
    });
  });

  it('.update().eq().select().single() answers the updated row', async () => {
    const { data, error, status } = await bob.client.from('profiles').update({
      full_name: 'Bob Builder',
      updated_at: new Date().toISOString(),
    }).eq('id', bob.id).select('id, full_name').single();
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual({ id: bob.id, full_name: 'Bob Builder' });
  });

  it('a write of no row or several is 406 PGRST116 and rolled back, whatever return= says', async () => {
    // RLS hides Alice's row from Bob's update: no row.
    const hidden = await bob.client.from('profiles').update({ full_name: 'Mallory' }).eq(
      'id',
      alice.id,
    ).single();
    expect(hidden.status).toBe(406);
    expect(hidden.error?.details).toBe('The result contains 0 rows');

    await db().query(`update public.profiles set website = 'https://shared.example'`);
    const several = await service.from('profiles').update({ full_name: 'Everyone' }).eq(
      'website',
      'https://shared.example',
    ).select().single();
    expect(several.status).toBe(406);
    expect(several.error?.details).toBe('The result contains 3 rows');
    const deleted = await service.from('profiles').delete().eq('website', 'https://shared.example')
      .single();
    expect(deleted.status).toBe(406);
    const { rows } = await db().query(
      `select count(*)::int as n from public.profiles where full_name is distinct from 'Everyone'`,
    );
    expect(rows).toEqual([{ n: 3 }]);
  });

  it('an insert of one row with return=minimal is 201 without a body', async () => {
    const response = await restFetch(carol, '/guestbook', {
      method: 'POST',
      headers: { Accept: 'application/vnd.pgrst.object+json', Prefer: 'return=minimal' },
      body: { author: carol.id, note: 'single' },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBeNull();
    expect(response.headers.get('preference-applied')).toBe('return=minimal');
    expect(await response.text()).toBe('');
  });

  it('a function’s value is one row: the same value, as the object media type', async () => {
    await db().query(`
      create function public.profile_count() returns bigint language sql stable
        as $$ select count(*) from public.profiles $$;
      grant execute on function public.profile_count() to authenticated;
    `);
    const response = await restFetch(alice, '/rpc/profile_count', {
      method: 'POST',
      headers: { Accept: 'application/vnd.pgrst.object+json' },
      body: {},
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(OBJECT_JSON);
    expect(await response.json()).toBe(3);
    expect((await alice.client.rpc('profile_count').single()).data).toBe(3);
  });

  it('refuses the object with stripped nulls rather than answering otherwise', async () => {
    const stripped = await alice.client.from('profiles').select('username').eq('id', alice.id)
      .single().stripNulls();
    expect({ status: stripped.status, code: stripped.error?.code }).toEqual({
      status: 400,
      code: 'PGRST127',
    });
  });
});
