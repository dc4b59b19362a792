import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { databaseUrl } from '../../dev/database-url.ts';
import { withTransaction } from '../../dev/transaction.ts';
import { TEMPLATE_BARE, TEMPLATE_MIGRATED } from './templates.ts';

export type ApiRole = 'anon' | 'authenticated' | 'service_role';
export type Claims = Record<string, unknown>;

export interface TestDatabase {
  readonly name: string;
  /** Superuser URL of this test file's database. */
  readonly url: string;
  /** Superuser connections: setup, assertions, hostile fixtures. */
  readonly admin: pg.Pool;
  /** Logged in as supabase_auth_admin, whose search_path is `auth`: how Supabase Auth connects. */
  readonly auth: pg.Pool;
  /** Logged in as authenticator (NOINHERIT), which switches role per request: how PostgREST connects. */
  readonly authenticator: pg.Pool;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** The single row a query returns; throws when it returns none. */
  one<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R>;
  withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  withTransaction<T>(
    work: (client: pg.PoolClient) => Promise<T>,
    options?: { commit?: boolean },
  ): Promise<T>;
  asRole<T>(
    role: ApiRole,
    claims: Claims | null,
    work: (client: pg.PoolClient) => Promise<T>,
    options?: { commit?: boolean },
  ): Promise<T>;
  close(): Promise<void>;
}

/**
 * Clones a fresh database for the calling test file from one of the templates the global setup
 * built: `migrated` (bootstrap + migrations) or `bare` (bootstrap only, to test migrating a
 * project that already has users).
 */
export async function createTestDatabase(
  template: 'migrated' | 'bare' = 'migrated',
): Promise<TestDatabase> {
  const serverUrl = inject('serverUrl');
  const name = `test_${randomBytes(6).toString('hex')}`;
  const maintenance = new pg.Client({ connectionString: serverUrl });
  await maintenance.connect();
  try {
    await maintenance.query(
      `create database ${name} template ${template === 'bare' ? TEMPLATE_BARE : TEMPLATE_MIGRATED}`,
    );
  } finally {
    await maintenance.end();
  }

  const url = databaseUrl(serverUrl, { database: name });
  const admin = new pg.Pool({ connectionString: url, max: 60 });
  const auth = new pg.Pool({
    connectionString: databaseUrl(serverUrl, { database: name, role: 'supabase_auth_admin' }),
    max: 60,
  });
  const authenticator = new pg.Pool({
    connectionString: databaseUrl(serverUrl, { database: name, role: 'authenticator' }),
    max: 60,
  });

  const db: TestDatabase = {
    name,
    url,
    admin,
    auth,
    authenticator,
    query: (sql, params) => admin.query(sql, params),
    async one(sql, params) {
      const { rows } = await admin.query(sql, params);
      if (rows.length === 0) throw new Error(`expected one row from: ${sql}`);
      return rows[0];
    },
    async withClient(work) {
      const client = await admin.connect();
      try {
        return await work(client);
      } finally {
        client.release();
      }
    },
    withTransaction: (work, options) =>
      withTransaction(admin, work, { commit: options?.commit ?? false }),
    // What PostgREST does per request: SET LOCAL ROLE to the JWT's role and expose the claims
    // (with the role inserted) in request.jwt.claims, inside one transaction.
    asRole: (role, claims, work, options) =>
      withTransaction(authenticator, work, {
        commit: options?.commit ?? false,
        prepare: async (client) => {
          await client.query(`set local role ${pg.escapeIdentifier(role)}`);
          await client.query(`select set_config('request.jwt.claims', $1, true)`, [
            JSON.stringify({ ...(claims ?? {}), role }),
          ]);
        },
      }),
    async close() {
      await Promise.all([admin.end(), auth.end(), authenticator.end()]);
      const maintenance = new pg.Client({ connectionString: serverUrl });
      await maintenance.connect();
      try {
        await maintenance.query(`drop database if exists ${name}`);
      } finally {
        await maintenance.end();
      }
    },
  };
  return db;
}

/** Registers beforeAll/afterAll for a per-file database and returns its accessor. */
export function useTestDatabase(template: 'migrated' | 'bare' = 'migrated'): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await createTestDatabase(template);
  });
  afterAll(async () => {
    await db?.close();
  });
  return () => {
    if (!db) throw new Error('the test database is only available inside tests and hooks');
    return db;
  };
}

/** Runs work with the auth.users trigger switched off, so users created meanwhile have no profile. */
export async function withTriggerOff<T>(db: TestDatabase, work: () => Promise<T>): Promise<T> {
  await db.query('update private.settings set trigger_enabled = false');
  try {
    return await work();
  } finally {
    await db.query('update private.settings set trigger_enabled = true');
  }
}
