// `npm run gen:types`: writes shared/database.types.ts from a database built from the bootstrap and
// every migration: a throw-away embedded PostgreSQL, or a new database on DATABASE_URL's server.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { databaseUrl } from './database-url.ts';
import { generateDatabaseTypes } from './database-types.ts';
import { migrateDatabase } from './migrate.ts';
import { startEmbeddedCluster } from './postgres.ts';

export const DATABASE_TYPES_FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'shared',
  'database.types.ts',
);

async function withMigratedDatabase<T>(work: (url: string) => Promise<T>): Promise<T> {
  const serverUrl = process.env.DATABASE_URL;
  if (serverUrl) {
    const name = `gen_types_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
      try {
        const url = databaseUrl(serverUrl, { database: name });
        await migrateDatabase(url);
        return await work(url);
      } finally {
        await admin.query(`drop database if exists ${name}`);
      }
    } finally {
      await admin.end();
    }
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'profile-guard-types-'));
  const cluster = await startEmbeddedCluster({ dataDir, persistent: false, unsafeFast: true });
  try {
    await migrateDatabase(cluster.url);
    return await work(cluster.url);
  } finally {
    await cluster.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const text = await withMigratedDatabase(async (url) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await generateDatabaseTypes(client);
    } finally {
      await client.end();
    }
  });
  await writeFile(DATABASE_TYPES_FILE, text);
  console.log(`wrote ${path.relative(process.cwd(), DATABASE_TYPES_FILE)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
