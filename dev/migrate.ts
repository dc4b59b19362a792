import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BOOTSTRAP_FILE = path.join(ROOT, 'dev', 'bootstrap', 'supabase.sql');
const MIGRATIONS_DIR = path.join(ROOT, 'supabase', 'migrations');
export const ROLLBACK_FILE = path.join(ROOT, 'supabase', 'rollback', 'rollback.sql');

const MIGRATION_FILE = /^(\d{14})_([a-z0-9-]+)\.sql$/;

interface Migration {
  version: string;
  name: string;
  file: string;
}

export async function listMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return files.map((file) => {
    const match = MIGRATION_FILE.exec(file);
    if (!match) {
      throw new Error(
        `migration file name must be <14-digit UTC timestamp>_<kebab-topic>.sql: ${file}`,
      );
    }
    return { version: match[1]!, name: match[2]!, file: path.join(dir, file) };
  });
}

async function inTransaction<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    const result = await work();
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
}

// The same history table the Supabase CLI keeps, so `supabase db push` and this runner agree on
// what has been applied.
const HISTORY_DDL = `
  create schema if not exists supabase_migrations;
  create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
  );
  create table if not exists supabase_migrations.dev_bootstrap (
    sha256 text primary key,
    applied_at timestamptz not null default now()
  );
`;

/** Applies dev/'s Supabase bootstrap unless this exact version of it is already applied. */
export async function applyBootstrap(client: pg.ClientBase): Promise<boolean> {
  const sql = await readFile(BOOTSTRAP_FILE, 'utf8');
  const sha256 = createHash('sha256').update(sql).digest('hex');
  await client.query(HISTORY_DDL);
  const { rowCount } = await client.query(
    'select 1 from supabase_migrations.dev_bootstrap where sha256 = $1',
    [sha256],
  );
  if (!rowCount) {
    await inTransaction(client, async () => {
      await client.query(sql);
      await client.query('insert into supabase_migrations.dev_bootstrap (sha256) values ($1)', [
        sha256,
      ]);
    });
  }
  // Database-level privileges live in pg_database, not in the database, so a clone made with
  // CREATE DATABASE ... TEMPLATE loses them: grant on every run, not only with the bootstrap.
  await client.query(`
    do $$ begin
      execute format('grant create, connect on database %I to postgres', current_database());
    end $$`);
  return !rowCount;
}

/**
 * Applies pending migrations in file-name order, each in its own transaction and as the
 * non-superuser `postgres` role, as `supabase db push` does on a hosted project.
 */
export async function applyMigrations(
  client: pg.ClientBase,
  options: { upTo?: string; log?: (line: string) => void } = {},
): Promise<Migration[]> {
  await client.query(HISTORY_DDL);
  const { rows } = await client.query<{ version: string }>(
    'select version from supabase_migrations.schema_migrations',
  );
  const applied = new Set(rows.map((r) => r.version));
  const pending = (await listMigrations()).filter(
    (m) => !applied.has(m.version) && (options.upTo === undefined || m.version <= options.upTo),
  );
  for (const migration of pending) {
    const sql = await readFile(migration.file, 'utf8');
    try {
      await inTransaction(client, async () => {
        await client.query('set local role postgres');
        await client.query(sql);
        await client.query('reset role');
        await client.query(
          'insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, array[$3])',
          [migration.version, migration.name, sql],
        );
      });
    } catch (error) {
      throw new Error(
        `migration ${path.basename(migration.file)} failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    options.log?.(`applied ${path.basename(migration.file)}`);
  }
  return pending;
}

/** Runs supabase/rollback/rollback.sql as `postgres`, the role an operator would use. */
export async function applyRollback(client: pg.ClientBase): Promise<void> {
  const sql = await readFile(ROLLBACK_FILE, 'utf8');
  await inTransaction(client, async () => {
    await client.query('set local role postgres');
    await client.query(sql);
  });
}

/** Bootstrap then migrations against one database URL (superuser). */
export async function migrateDatabase(
  url: string,
  options: { migrations?: boolean; log?: (line: string) => void } = {},
) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await applyBootstrap(client);
    if (options.migrations !== false) return await applyMigrations(client, { log: options.log });
    return [];
  } finally {
    await client.end();
  }
}
