// A project built on Supabase's user-management quickstart (quickstart.sql), for the adoption
// tests: its schema installed as the SQL editor installs it, and SQL run as `postgres`.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { TestDatabase } from '../helpers/database.ts';

const QUICKSTART = path.join(import.meta.dirname, 'quickstart.sql');

/** Runs sql as `postgres`, the role of the SQL editor, `supabase db push` and an operator's psql. */
export async function asPostgres<R extends pg.QueryResultRow>(
  database: TestDatabase,
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  return await database.withClient(async (client) => {
    await client.query('set role postgres');
    try {
      return await client.query<R>(sql, params);
    } finally {
      await client.query('reset role');
    }
  });
}

/** The quickstart's profiles table, policies and handle_new_user trigger, plus posts. */
export async function installQuickstart(database: TestDatabase): Promise<void> {
  await asPostgres(database, await readFile(QUICKSTART, 'utf8'));
}

/** Auth users without exactly one row in public.profiles (none, or more). */
export async function usersWithoutOneProfile(database: TestDatabase): Promise<unknown[]> {
  return (await database.query(
    'select u.id from auth.users u where (select count(*) from public.profiles p where p.id = u.id) <> 1',
  )).rows;
}
