import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { generateDatabaseTypes } from '../../dev/database-types.ts';
import { DATABASE_TYPES_FILE } from '../../dev/gen-types.ts';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();

describe('the Database type in shared/database.types.ts', () => {
  it('is what the migrations generate (run `npm run gen:types` after changing the SQL)', async () => {
    const generated = await db().withClient((c) => generateDatabaseTypes(c));
    expect(await readFile(DATABASE_TYPES_FILE, 'utf8')).toBe(generated);
  });

  it('follows a change of the SQL: a new column, a renamed argument and a new function each show up', async () => {
    const types = await db().withTransaction(async (c) => {
      await c.query('alter table public.user_profiles add column website text');
      await c.query('alter function public.username_available(text) rename to username_is_free');
      await c.query(
        `create function public.profile_count(p_since timestamptz, p_limit integer default 10)
                     returns table (day date, profiles bigint) language sql as $$ select null::date, 0::bigint $$`,
      );
      return await generateDatabaseTypes(c);
    });
    expect(types).toContain('          website: string | null\n');
    expect(types).toContain('          website?: string | null\n');
    expect(types).not.toContain('      username_available:');
    expect(types).toContain(
      '      username_is_free: { Args: { p_username: string | null }; Returns: boolean }\n',
    );
    expect(types).toContain(
      '      profile_count: { Args: { p_since: string | null; p_limit?: number | null }; Returns: { day: string; profiles: number }[] }\n',
    );
  });
});
