// The declarative schema files (supabase/schemas/), in the order supabase/config.toml's
// `[db.migrations] schema_paths` gives them, and a way to build a database from them the way
// dev/migrate.ts builds one from the migrations.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { parse as parseToml } from 'smol-toml';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** The Supabase CLI resolves schema_paths relative to the supabase/ folder. */
export const SUPABASE_DIR = path.join(ROOT, 'supabase');
export const CONFIG_FILE = path.join(SUPABASE_DIR, 'config.toml');
export const SCHEMAS_DIR = path.join(SUPABASE_DIR, 'schemas');

const GLOB_CHARS = /[*?[]/;

function segmentPattern(segment: string): RegExp {
  const source = segment.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(
    /\?/g,
    '[^/]',
  );
  return new RegExp(`^${source}$`);
}

/**
 * The files one schema_paths entry names, sorted by name as the CLI sorts a glob's matches.
 * Only what this project uses is supported: a file, or `*` and `?` in the last path segment.
 */
async function expand(entry: string): Promise<string[]> {
  const absolute = path.resolve(SUPABASE_DIR, entry);
  const dir = path.dirname(absolute);
  const name = path.basename(absolute);
  if (GLOB_CHARS.test(dir)) {
    throw new Error(`schema_paths entry ${entry}: only the file name may hold wildcards here`);
  }
  if (!GLOB_CHARS.test(name)) return [absolute];
  if (name.includes('[')) {
    throw new Error(`schema_paths entry ${entry}: character classes are not supported here`);
  }
  const pattern = segmentPattern(name);
  const matches = (await readdir(dir)).filter((file) => pattern.test(file)).sort();
  if (matches.length === 0) throw new Error(`schema_paths entry ${entry} matches no file`);
  return matches.map((file) => path.join(dir, file));
}

/** The schema files in the order schema_paths applies them (each file once, first place wins). */
export async function schemaFiles(configFile = CONFIG_FILE): Promise<string[]> {
  const config = parseToml(await readFile(configFile, 'utf8')) as {
    db?: { migrations?: { schema_paths?: unknown } };
  };
  const entries = config.db?.migrations?.schema_paths;
  if (
    !Array.isArray(entries) || entries.length === 0 || !entries.every((e) => typeof e === 'string')
  ) {
    throw new Error(
      `${path.relative(ROOT, configFile)}: [db.migrations] schema_paths must list the schema files`,
    );
  }
  const files: string[] = [];
  for (const entry of entries as string[]) {
    for (const file of await expand(entry)) if (!files.includes(file)) files.push(file);
  }
  return files;
}

/**
 * Applies the schema files to a database that has the Supabase bootstrap only, each file in its
 * own transaction and as the non-superuser `postgres` role, as applyMigrations (dev/migrate.ts)
 * applies a migration. `client` must be a superuser connection.
 */
export async function applySchemaFiles(
  client: pg.ClientBase,
  files: readonly string[],
): Promise<void> {
  for (const file of files) {
    const sql = await readFile(file, 'utf8');
    await client.query('begin');
    try {
      await client.query('set local role postgres');
      await client.query(sql);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw new Error(
        `schema file ${path.relative(ROOT, file)} failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
}
