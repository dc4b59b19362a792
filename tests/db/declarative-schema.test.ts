// supabase/schemas/ is where the live SQL is read; supabase/migrations/ is how a database gets
// there. This test builds one database from the bootstrap template plus the schema files (in the
// order config.toml's schema_paths gives, each file in its own transaction as `postgres`, as
// dev/migrate.ts applies a migration) and compares it with the migrated template, object by
// object (tests/helpers/catalog.ts): full function definitions with owner and ACL, grants on
// schemas, tables, columns, sequences and functions, policies, indexes, triggers (also those on
// auth.users), constraints with their NOT VALID state, columns (type, default, not null,
// identity), RLS flags, table persistence, comments, default privileges and extensions, in every
// non-system schema. A failure prints the differing lines.
//
// Left out, and why:
//   * column order (attnum): ALTER TABLE ADD COLUMN appends, so a table the migrations grew and
//     its declared form may list columns differently and still be the same table (the schema
//     files list them in the order the migrations added them anyway);
//   * catalog state that no SQL source decides: oids, relfilenodes, the fast-default values
//     ALTER TABLE ADD COLUMN stores (atthasmissing), statistics; and what lives outside the
//     database's schemas: roles and database-level grants (the bootstrap's, reapplied to every
//     database by dev/migrate.ts);
//   * data, but for the two singleton rows the functions read, private.settings and
//     private.profile_census: the schema files insert them as the migrations do, and the last
//     test compares them. Data fixes stay migration-only: the install seed of
//     private.missing_profiles (20261205100000_incremental-census.sql: users a project already
//     had without a profile; a new database has none) and the migration history;
//   * enabling pg_cron and scheduling the job profile-self-repair (the DO block of
//     20261205100100_scheduled-self-repair.sql): a one-off action on an extension and on
//     cron.job, where pg_cron is available (it is not here); 13_self-repair.sql says so;
//   * DROP statements of superseded objects: they exist only in migrations, and an object a
//     migration forgot to drop is a difference this test reports.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { catalogEntries, type CatalogEntry } from '../helpers/catalog.ts';
import { diffCatalogs } from '../helpers/catalog-diff.ts';
import { type TestDatabase, useTestDatabase } from '../helpers/database.ts';
import { applySchemaFiles, schemaFiles, SCHEMAS_DIR } from '../helpers/schema-files.ts';

const migrated = useTestDatabase();
const declared = useTestDatabase('bare');

const LABELS = {
  expected: 'supabase/migrations (applied in order)',
  actual: 'supabase/schemas (schema_paths)',
};

let files: string[] = [];

beforeAll(async () => {
  files = await schemaFiles();
  // A clone of the template loses database-level grants (see applyBootstrap): give `postgres`
  // what a project's postgres has, so it can create the private schema.
  await declared().query(
    `grant create, connect on database ${pg.escapeIdentifier(declared().name)} to postgres`,
  );
  await declared().withClient((client) => applySchemaFiles(client, files));
});

async function entries(db: TestDatabase): Promise<CatalogEntry[]> {
  return await db.withClient((client) => catalogEntries(client));
}

function failWithDiff(diff: string): void {
  if (diff !== '') {
    expect.fail(
      'The database built from supabase/schemas is not the migrated one. Edit the schema file or the ' +
        `migration until they agree. Differences (- migrations, + schema files):\n${diff}`,
    );
  }
}

describe('the declarative schema (supabase/schemas)', () => {
  it('is every file in supabase/schemas, applied in file-name order through config.toml schema_paths', async () => {
    const onDisk = (await readdir(SCHEMAS_DIR)).filter((file) => file.endsWith('.sql')).sort();
    expect(files.map((file) => path.relative(SCHEMAS_DIR, file))).toEqual(onDisk);
    for (const file of onDisk) expect(file).toMatch(/^\d{2}_[a-z0-9-]+\.sql$/);
  });

  it('builds a database whose catalog equals the migrated one, definition for definition', async () => {
    const [fromMigrations, fromSchemas] = await Promise.all([
      entries(migrated()),
      entries(declared()),
    ]);
    expect(fromMigrations.some((e) => e.key.startsWith('function private.ensure_profile('))).toBe(
      true,
    );
    failWithDiff(diffCatalogs(fromMigrations, fromSchemas, LABELS));
  });

  it('seeds the singleton rows the functions read, as the migrations do', async () => {
    const rows = `
      select (select to_jsonb(s) - 'updated_at' from private.settings s) as settings,
             (select to_jsonb(c) from private.profile_census c) as census`;
    const [fromMigrations, fromSchemas] = await Promise.all([
      migrated().one(rows),
      declared().one(rows),
    ]);
    expect(fromSchemas.settings).not.toBeNull();
    expect(fromSchemas).toEqual(fromMigrations);
  });

  it('reports a changed function body, a changed grant and a constraint made valid as the lines that differ', async () => {
    const fromMigrations = await entries(migrated());
    const diff = await declared().withTransaction(async (client) => {
      await client.query(`
        create or replace function private.set_updated_at()
        returns trigger
        language plpgsql
        security invoker
        set search_path = ''
        as $$
        begin
          new.updated_at := clock_timestamp();
          return new;
        end;
        $$`);
      await client.query(
        'grant execute on function public.profile_system_health() to authenticated',
      );
      await client.query(
        'alter table public.user_profiles validate constraint user_profiles_metadata_check',
      );
      return diffCatalogs(fromMigrations, await catalogEntries(client), LABELS);
    });
    expect(diff).toContain('~ function private.set_updated_at()\n');
    expect(diff).toMatch(/^ {2}- +new\.updated_at := now\(\);$/m);
    expect(diff).toMatch(/^ {2}\+ +new\.updated_at := clock_timestamp\(\);$/m);
    expect(diff).toMatch(
      /^ {2}\+ owner=postgres acl=\{authenticated=X\/postgres,postgres=X\/postgres,service_role=X\/postgres\}$/m,
    );
    expect(diff).toMatch(/^- constraint user_profiles user_profiles_metadata_check .* NOT VALID$/m);
    expect(diff).toMatch(
      /^\+ constraint user_profiles user_profiles_metadata_check CHECK \(private\.is_valid_profile_metadata\(metadata\)\)$/m,
    );
  });
});
