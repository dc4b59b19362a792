// Adoption of a profile table that is not the quickstart's (docs/DEPLOYMENT.md §5.1.1, "Columns"):
// other column names mapped with p_columns, a key other than id, no old trigger, the backfill left
// for later; and the tables adoption refuses before it changes anything.
import { beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../dev/migrate.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';
import { asPostgres } from './quickstart-project.ts';

const db = useTestDatabase('bare');

async function refusal(sql: string): Promise<{ code?: string; message: string }> {
  return await asPostgres(db(), sql).then(
    () => ({ message: 'adopted' }),
    (error: { code?: string; message: string }) => ({ code: error.code, message: error.message }),
  );
}

async function defaultTableIsThere(): Promise<boolean> {
  return (await db().one<{ kind: string }>(
    `select relkind as kind from pg_class where oid = 'public.user_profiles'::regclass`,
  )).kind === 'r';
}

let before: string;
beforeAll(async () => {
  await migrateDatabase(db().url);
  await asPostgres(
    db(),
    `create table public.members (
       user_id uuid primary key references auth.users on delete cascade,
       display_name text,
       handle text unique,
       picture text,
       bio text,
       team text,
       joined_at timestamptz not null default now()
     );
     alter table public.members enable row level security;
     create table public.badges (
       id uuid primary key,
       owner bigint not null
     )`,
  );
  before = await signUpAsSupabaseAuth(db(), {
    email: 'before@example.test',
    userMetadata: { full_name: 'Before', username: 'before_1' },
  });
});

describe('adopting a table of its own shape', () => {
  it('refuses a table a profile could not be created in, and changes nothing', async () => {
    await asPostgres(db(), 'alter table public.members alter column team set not null');
    expect(
      await refusal(
        `select private.adopt_profile_table('public.members', 'user_id', '{"full_name": "display_name"}')`,
      ),
    ).toEqual({
      code: '22023',
      message:
        'columns {team} of public.members are NOT NULL without a default and map to no profile column',
    });
    await asPostgres(db(), 'alter table public.members alter column team drop not null');

    expect(await refusal(`select private.adopt_profile_table('public.members', 'display_name')`))
      .toEqual({
        code: '22023',
        message: 'p_key display_name must be a uuid column of public.members',
      });
    expect(await refusal(`select private.adopt_profile_table('public.badges', 'id')`)).toEqual({
      code: '22023',
      message:
        'columns {owner} of public.badges are NOT NULL without a default and map to no profile column',
    });
    expect(
      await refusal(
        `select private.adopt_profile_table('public.members', 'user_id', '{"full_name": "joined_at"}')`,
      ),
    ).toEqual({
      code: '22023',
      message: 'p_columns.full_name names joined_at, which must be a text column of public.members',
    });
    expect(await refusal(`select private.adopt_profile_table('public.nothing_here')`)).toEqual({
      code: '22023',
      message: 'p_table public.nothing_here does not exist',
    });
    expect(await defaultTableIsThere()).toBe(true);
  });

  it('maps other column names, keeps to its key, and leaves the backfill for later when asked', async () => {
    const { rows } = await asPostgres<{ r: Record<string, unknown> }>(
      db(),
      `select private.adopt_profile_table(
         p_table => 'public.members',
         p_key => 'user_id',
         p_columns => '{"full_name": "display_name", "username": "handle", "avatar_url": "picture"}',
         p_retire_trigger => null,
         p_backfill => false) as r`,
    );
    expect(rows[0]!.r).toEqual({
      table: 'public.members',
      key: 'user_id',
      columns: {
        user_id: 'user_id',
        full_name: 'display_name',
        username: 'handle',
        avatar_url: 'picture',
      },
      unmapped: ['email', 'metadata', 'created_via', 'created_at', 'updated_at'],
      retired_trigger: null,
      retired: false,
      dropped_policies: [],
      index: 'members_username_lower_idx',
      moved: 1,
      backfilled: null,
    });
    // Moved from the default table: the user who signed up before adoption.
    expect(
      await db().one('select display_name, handle from public.members where user_id = $1', [
        before,
      ]),
    ).toEqual({ display_name: 'Before', handle: 'before_1' });

    const after = await signUpAsSupabaseAuth(db(), {
      email: 'after@example.test',
      userMetadata: {
        full_name: 'After',
        username: 'after_1',
        avatar_url: 'https://cdn.example/a.png',
      },
    });
    expect(
      await db().one(
        'select display_name, handle, picture, bio from public.members where user_id = $1',
        [after],
      ),
    ).toEqual({
      display_name: 'After',
      handle: 'after_1',
      picture: 'https://cdn.example/a.png',
      bio: null,
    });

    expect(await refusal(`select private.adopt_profile_table('public.members', 'user_id')`))
      .toEqual({
        code: '22023',
        message: 'a profile table is already adopted: public.members',
      });
  });

  it('backfills afterwards with the batched backfill, into the adopted table', async () => {
    await db().query('delete from public.members');
    const { r } = await db().one<{ r: { created: number; done: boolean } }>(
      'select public.backfill_missing_profiles(500, null, false) as r',
    );
    expect(r).toMatchObject({ created: 2, done: true });
    const members = await db().query(
      'select display_name, handle from public.members order by display_name',
    );
    expect(members.rows).toEqual([
      { display_name: 'After', handle: 'after_1' },
      { display_name: 'Before', handle: 'before_1' },
    ]);
  });
});
