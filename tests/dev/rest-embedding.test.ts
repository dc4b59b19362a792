import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalKeys, localKeys } from '../../dev/keys.ts';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { type RunningRest, startRest } from '../helpers/rest-standin.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

// Resource embedding (to-one, one level), order and limit in the local PostgREST stand-in, as an app
// built on Supabase's user-management quickstart uses them: posts with their author's profile,
// read through the real supabase-js client (and raw fetch for exact statuses and headers).

const db = useTestDatabase();

let keys: LocalKeys;
let rest: RunningRest;
let anon: SupabaseClient;
let service: SupabaseClient;
let alice = '';
let bob = '';
let carol = '';

async function restFetch(path: string, key = keys.anonKey): Promise<Response> {
  return await fetch(`${rest.url}/rest/v1${path}`, {
    headers: { apikey: key, Authorization: `Bearer ${key}` },
  });
}

beforeAll(async () => {
  keys = await localKeys();
  rest = await startRest(db().authenticator, keys);
  anon = appClient(rest.url, keys.anonKey);
  service = appClient(rest.url, keys.serviceRoleKey);
  alice = await signUpAsSupabaseAuth(db());
  bob = await signUpAsSupabaseAuth(db());
  carol = await signUpAsSupabaseAuth(db());

  // The quickstart's profiles, posts by their authors, and reviews with two foreign keys to
  // profiles. Carol's profile is hidden from the API roles by a restrictive policy.
  await db().query(`
    create table public.profiles (
      id uuid primary key references auth.users,
      username text unique,
      full_name text
    );
    alter table public.profiles enable row level security;
    create policy "Public profiles are viewable by everyone." on public.profiles
      for select to anon, authenticated using (true);
    create policy "Carol is private." on public.profiles as restrictive
      for select to anon, authenticated using (username is distinct from 'carol');

    create table public.posts (
      id bigint generated always as identity primary key,
      author_id uuid references public.profiles (id),
      title text not null
    );
    alter table public.posts enable row level security;
    create policy "Posts are viewable by everyone." on public.posts
      for select to anon, authenticated using (true);

    create table public.reviews (
      id bigint generated always as identity primary key,
      author_id uuid references public.profiles (id),
      reviewer_id uuid references public.profiles (id),
      verdict text
    );

    grant select on public.profiles, public.posts, public.reviews to anon, authenticated;
    grant all on public.profiles, public.posts, public.reviews to service_role;
  `);
  await db().query(
    `insert into public.profiles (id, username, full_name)
       values ($1, 'alice', 'Alice Liddell'), ($2, 'bobby', 'Bob Builder'), ($3, 'carol', 'Carol Danvers')`,
    [alice, bob, carol],
  );
  await db().query(
    `insert into public.posts (author_id, title)
       values ($1, 'Down the rabbit hole'), ($2, 'Can we fix it?'), (null, 'Anonymous tip'), ($3, 'Higher, further, faster')`,
    [alice, bob, carol],
  );
  await db().query(
    `insert into public.reviews (author_id, reviewer_id, verdict) values ($1, $2, 'yes, we can')`,
    [bob, alice],
  );
});

afterAll(async () => {
  await rest?.close();
});

const aliceProfile = () => ({ id: alice, username: 'alice', full_name: 'Alice Liddell' });
const bobProfile = () => ({ id: bob, username: 'bobby', full_name: 'Bob Builder' });

describe('many-to-one embedding', () => {
  it('embeds the selected columns of the author, null without one or where RLS hides it', async () => {
    const { data, error, status } = await anon.from('posts').select(
      'id, title, profiles(username, full_name)',
    ).order('id');
    expect(error).toBeNull();
    expect(status).toBe(200);
    expect(data).toEqual([
      {
        id: 1,
        title: 'Down the rabbit hole',
        profiles: { username: 'alice', full_name: 'Alice Liddell' },
      },
      { id: 2, title: 'Can we fix it?', profiles: { username: 'bobby', full_name: 'Bob Builder' } },
      { id: 3, title: 'Anonymous tip', profiles: null },
      // Carol's profile exists, but the request's role may not see it.
      { id: 4, title: 'Higher, further, faster', profiles: null },
    ]);
  });

  it('select=*,profiles(*) embeds every column, as jsonb orders them; service_role sees past RLS', async () => {
    const { data, error } = await service.from('posts').select('*, profiles(*)').order('id');
    expect(error).toBeNull();
    expect(data).toEqual([
      { id: 1, author_id: alice, title: 'Down the rabbit hole', profiles: aliceProfile() },
      { id: 2, author_id: bob, title: 'Can we fix it?', profiles: bobProfile() },
      { id: 3, author_id: null, title: 'Anonymous tip', profiles: null },
      {
        id: 4,
        author_id: carol,
        title: 'Higher, further, faster',
        profiles: { id: carol, username: 'carol', full_name: 'Carol Danvers' },
      },
    ]);
    // PostgREST 12 casts the embedded row to jsonb: keys by length, then bytes.
    expect(Object.keys((data as { profiles: object }[])[0]!.profiles)).toEqual([
      'id',
      'username',
      'full_name',
    ]);
  });

  it('the embedded object follows the columns wherever select names it, and filters still apply', async () => {
    const response = await restFetch(
      '/posts?select=profiles(username),title&id=eq.2',
      keys.serviceRoleKey,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-range')).toBe('0-0/*');
    expect(await response.text()).toBe(
      '[{"title":"Can we fix it?","profiles":{"username": "bobby"}}]',
    );
  });

  it('a null foreign key embeds null', async () => {
    const { data, error } = await anon.from('posts').select('title, profiles(*)').eq('id', 3);
    expect(error).toBeNull();
    expect(data).toEqual([{ title: 'Anonymous tip', profiles: null }]);
  });

  it('the embedding follows the embedded table’s own policies', async () => {
    await db().query(
      `create policy "Only Bob." on public.profiles as restrictive for select to anon
         using (username = 'bobby')`,
    );
    try {
      const { data, error } = await anon.from('posts').select('id, profiles(username)').order(
        'id',
      );
      expect(error).toBeNull();
      expect(data).toEqual([
        { id: 1, profiles: null },
        { id: 2, profiles: { username: 'bobby' } },
        { id: 3, profiles: null },
        { id: 4, profiles: null },
      ]);
    } finally {
      await db().query(`drop policy "Only Bob." on public.profiles`);
    }
  });

  it('a foreign key’s column names the relationship too, and the embedded object is named by it', async () => {
    const { data, error } = await anon.from('reviews').select(
      'verdict, author_id(username), reviewer_id(full_name)',
    );
    expect(error).toBeNull();
    expect(data).toEqual([
      {
        verdict: 'yes, we can',
        author_id: { username: 'bobby' },
        reviewer_id: { full_name: 'Alice Liddell' },
      },
    ]);
  });

  it('an insert, update and delete return their rows with the embedding', async () => {
    const inserted = await service.from('posts').insert({ author_id: bob, title: 'Scoop' })
      .select('title, profiles(username)');
    expect(inserted.error).toBeNull();
    expect(inserted.status).toBe(201);
    expect(inserted.data).toEqual([{ title: 'Scoop', profiles: { username: 'bobby' } }]);

    const updated = await service.from('posts').update({ author_id: alice }).eq('title', 'Scoop')
      .select('profiles(full_name)');
    expect(updated.error).toBeNull();
    expect(updated.data).toEqual([{ profiles: { full_name: 'Alice Liddell' } }]);

    const deleted = await service.from('posts').delete().eq('title', 'Scoop').select(
      '*, profiles(username)',
    );
    expect(deleted.error).toBeNull();
    expect(deleted.data).toEqual([
      { id: 5, author_id: alice, title: 'Scoop', profiles: { username: 'alice' } },
    ]);
  });
});

describe('relationships PostgREST cannot resolve', () => {
  it('an unknown relationship is 400 PGRST200, with a suggestion when one is close', async () => {
    const unknown = await anon.from('posts').select('id, comments(body)');
    expect(unknown.status).toBe(400);
    expect(unknown.error).toEqual({
      code: 'PGRST200',
      message: "Could not find a relationship between 'posts' and 'comments' in the schema cache",
      details:
        "Searched for a foreign key relationship between 'posts' and 'comments' in the schema 'public', but no matches were found.",
      hint: null,
    });

    const typo = await anon.from('posts').select('id, profile(username)');
    expect(typo.status).toBe(400);
    expect(typo.error?.code).toBe('PGRST200');
    expect(typo.error?.hint).toBe("Perhaps you meant 'profiles' instead of 'profile'.");

    // A table with no relationship at all: the suggestion is about the table.
    const noRelationships = await service.from('user_profiles').select('user_id, users(email)');
    expect(noRelationships.status).toBe(400);
    expect(noRelationships.error).toEqual({
      code: 'PGRST200',
      message:
        "Could not find a relationship between 'user_profiles' and 'users' in the schema cache",
      details:
        "Searched for a foreign key relationship between 'user_profiles' and 'users' in the schema 'public', but no matches were found.",
      hint: "Perhaps you meant 'profiles' instead of 'user_profiles'.",
    });
  });

  it('two foreign keys to the same table are 300 PGRST201, listing both', async () => {
    const { status, error } = await anon.from('reviews').select('verdict, profiles(username)');
    expect(status).toBe(300);
    expect(error).toEqual({
      code: 'PGRST201',
      message:
        "Could not embed because more than one relationship was found for 'reviews' and 'profiles'",
      details: [
        {
          cardinality: 'many-to-one',
          embedding: 'reviews with profiles',
          relationship: 'reviews_author_id_fkey using reviews(author_id) and profiles(id)',
        },
        {
          cardinality: 'many-to-one',
          embedding: 'reviews with profiles',
          relationship: 'reviews_reviewer_id_fkey using reviews(reviewer_id) and profiles(id)',
        },
      ],
      hint:
        "Try changing 'profiles' to one of the following: 'profiles!reviews_author_id_fkey', 'profiles!reviews_reviewer_id_fkey'. Find the desired relationship in the 'details' key.",
    });
  });

  it('refuses what it does not implement: one-to-many, nested embeddings, hints, aliases', async () => {
    const refusedAs = async (
      query: PromiseLike<{ status: number; error: { code: string } | null }>,
    ) => {
      const { status, error } = await query;
      return { status, code: error?.code };
    };
    const notImplemented = { status: 400, code: 'PGRST127' };
    const parseError = { status: 400, code: 'PGRST100' };
    expect(await refusedAs(anon.from('profiles').select('username, posts(title)'))).toEqual(
      notImplemented,
    );
    expect(await refusedAs(anon.from('posts').select('id, profiles(username, posts(id))')))
      .toEqual(parseError);
    expect(
      await refusedAs(anon.from('reviews').select('id, profiles!reviews_author_id_fkey(username)')),
    ).toEqual(parseError);
    expect(await refusedAs(anon.from('posts').select('id, author:profiles(username)'))).toEqual(
      parseError,
    );
    expect(await refusedAs(anon.from('posts').select('id, headline:title'))).toEqual(parseError);
    expect(await refusedAs(anon.from('posts').select('id::text'))).toEqual(parseError);
    expect(await refusedAs(anon.from('posts').select('id, profiles()'))).toEqual(parseError);
    expect(
      await refusedAs(
        anon.from('posts').select('id, profiles(username)').eq(
          'profiles.username',
          'alice',
        ),
      ),
    ).toEqual(parseError);
    expect(
      await refusedAs(
        anon.from('posts').select('id, profiles(username)').order('username', {
          referencedTable: 'profiles',
        }),
      ),
    ).toEqual(parseError);

    const unknownColumn = await anon.from('posts').select('id, profiles(nickname)');
    expect(unknownColumn.status).toBe(400);
    expect(unknownColumn.error).toEqual({
      code: '42703',
      message: 'column profiles_1.nickname does not exist',
      details: null,
      hint: null,
    });
  });
});

describe('order and limit', () => {
  it('orders by a column descending, and limits', async () => {
    const titles = await anon.from('posts').select('title').order('title', { ascending: false });
    expect(titles.error).toBeNull();
    expect(titles.data).toEqual([
      { title: 'Higher, further, faster' },
      { title: 'Down the rabbit hole' },
      { title: 'Can we fix it?' },
      { title: 'Anonymous tip' },
    ]);

    const first = await anon.from('posts').select('id, profiles(username)').order('id', {
      ascending: false,
    }).limit(1);
    expect(first.error).toBeNull();
    expect(first.data).toEqual([{ id: 4, profiles: null }]);

    const limited = await restFetch('/posts?select=id&order=id.asc&limit=2');
    expect(limited.headers.get('content-range')).toBe('0-1/*');
    expect(await limited.json()).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('orders by several columns, with nulls first or last', async () => {
    const nullsFirst = await service.from('posts').select('id').order('author_id', {
      ascending: false,
      nullsFirst: true,
    }).order('id');
    expect(nullsFirst.error).toBeNull();
    // uuids order as their lowercase text does.
    const byAuthor: [string, number][] = [[alice, 1], [bob, 2], [carol, 4]];
    const authorsDescending = byAuthor.sort((a, b) => (a[0] < b[0] ? 1 : -1)).map(([, id]) => ({
      id,
    }));
    expect(nullsFirst.data).toEqual([{ id: 3 }, ...authorsDescending]);

    const raw = await restFetch('/posts?select=id&order=author_id.nullslast,id.desc');
    expect(raw.status).toBe(200);
    expect(await raw.json()).toEqual([...authorsDescending].reverse().concat([{ id: 3 }]));
  });

  it('limit=0 is an empty answer, a negative limit 416 PGRST103', async () => {
    const none = await restFetch('/posts?select=id&limit=0');
    expect(none.status).toBe(200);
    expect(none.headers.get('content-range')).toBe('*/*');
    expect(await none.json()).toEqual([]);

    const negative = await restFetch('/posts?select=id&limit=-1');
    expect(negative.status).toBe(416);
    expect(await negative.json()).toEqual({
      code: 'PGRST103',
      message: 'Requested range not satisfiable',
      details: 'Limit should be greater than or equal to zero.',
      hint: null,
    });
  });

  it('an unknown order column is 400 42703; a malformed order, offset or a limit on a write PGRST100', async () => {
    const unknown = await anon.from('posts').select('id').order('nope');
    expect(unknown.status).toBe(400);
    expect(unknown.error).toEqual({
      code: '42703',
      message: 'column posts.nope does not exist',
      details: null,
      hint: null,
    });

    const malformed = await restFetch('/posts?select=id&order=id.descending');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { code: string }).code).toBe('PGRST100');

    const range = await anon.from('posts').select('id').order('id').range(1, 2);
    expect(range.status).toBe(400);
    expect(range.error?.code).toBe('PGRST100');

    const limitedDelete = await service.from('posts').delete().eq('id', 1).order('id').limit(1);
    expect(limitedDelete.status).toBe(400);
    expect(limitedDelete.error?.code).toBe('PGRST100');
    expect((await db().query('select 1 from public.posts where id = 1')).rowCount).toBe(1);
  });
});
