// PostgreSQL refuses to run as root, so a root user (a container, a CI image) runs it as the
// `postgres` system user. That user must be able to reach the binaries and the data directory:
// a checkout under /root (mode 0700) hides both from it, and the server would die with EACCES.
// This module finds or creates that user and puts what it needs where it can reach it.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** The account the server runs as when this process is root. */
export interface ClusterOwner {
  name: string;
  uid: number;
  gid: number;
}

/**
 * Where a root user's copies live: outside any home folder, world-traversable, and kept across
 * reboots (unlike /tmp), so `npm start` finds its data again.
 */
const ROOT_RUNTIME_DIR = '/var/tmp/supabase-profile-guard';

/** A failure the caller reports as it is: one sentence saying what to do, no stack trace. */
export class PostgresSetupError extends Error {
  override name = 'PostgresSetupError';
}

function idOf(flag: '-u' | '-g', name: string): number | null {
  const result = spawnSync('id', [flag, name], { encoding: 'utf8' });
  return result.status === 0 ? Number(result.stdout.trim()) : null;
}

/** Null unless this process is root; then the `postgres` system user, created if missing. */
export function clusterOwner(): ClusterOwner | null {
  if (process.getuid?.() !== 0) return null;
  const name = 'postgres';
  if (idOf('-u', name) === null) {
    try {
      if (idOf('-g', name) === null) {
        execFileSync('groupadd', ['--system', name], { stdio: 'pipe' });
      }
      execFileSync('useradd', [
        '--system',
        '--gid',
        name,
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        name,
      ], { stdio: 'pipe' });
    } catch {
      throw new PostgresSetupError(
        'PostgreSQL refuses to run as root and no `postgres` system user exists to run it as; create one ' +
          '(useradd --system postgres) or run as a user other than root.',
      );
    }
  }
  return { name, uid: idOf('-u', name)!, gid: idOf('-g', name)! };
}

/** Whether owner may enter (directory) or execute (file) path: every folder above it included. */
export function ownerCanUse(owner: ClusterOwner, target: string): boolean {
  const result = spawnSync('sh', ['-c', 'test -x "$1"', 'sh', target], {
    uid: owner.uid,
    gid: owner.gid,
    stdio: 'ignore',
  });
  return result.status === 0;
}

const copies = new Map<string, Promise<void>>();

/** Makes target a complete copy of source unless it is one already; one copy however many ask at once. */
export async function copyOnce(source: string, target: string): Promise<void> {
  if (existsSync(target)) return;
  let copying = copies.get(target);
  if (!copying) {
    copying = copyInto(source, target).finally(() => copies.delete(target));
    copies.set(target, copying);
  }
  await copying;
}

/**
 * Copied aside and renamed into place, so the folder exists only complete and a concurrent start
 * (another process) never runs or deletes a half copy; the loser of a race drops its own copy.
 */
async function copyInto(source: string, target: string): Promise<void> {
  await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  await chmod(path.dirname(target), 0o755);
  const staging = `${target}.staging-${randomUUID()}`;
  try {
    await cp(source, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    await rename(staging, target);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (!existsSync(target)) throw error;
  }
}

/**
 * The binaries folder (bin, lib, share) as owner can run it: the installed one when owner can
 * reach it, otherwise a copy under ROOT_RUNTIME_DIR made once per package version (every
 * checkout of that version ships the same files).
 */
export async function reachableNativeDir(
  owner: ClusterOwner,
  nativeDir: string,
  version: string,
): Promise<string> {
  if (ownerCanUse(owner, path.join(nativeDir, 'bin', 'postgres'))) return nativeDir;
  const target = path.join(ROOT_RUNTIME_DIR, `postgres-${version}`);
  await copyOnce(nativeDir, target);
  if (!ownerCanUse(owner, path.join(target, 'bin', 'postgres'))) {
    throw new PostgresSetupError(
      `the ${owner.name} user cannot run the PostgreSQL binaries copied to ${target}; check that folder's permissions.`,
    );
  }
  return target;
}

/** Creates dataDir if needed and hands it to owner; refuses, in one sentence, a folder owner cannot reach. */
export async function prepareDataDir(owner: ClusterOwner, dataDir: string): Promise<void> {
  // Folders made above it must stay enterable by owner; the data directory itself is owner's alone.
  await mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chown(dataDir, owner.uid, owner.gid);
  if (!ownerCanUse(owner, dataDir)) {
    throw new PostgresSetupError(
      `PostgreSQL runs as the system user "${owner.name}" when started by root, and that user cannot enter ${dataDir}; ` +
        'choose a data directory it can reach (for example under /var/tmp) or run as a user other than root.',
    );
  }
}

/**
 * The default data directory of a checkout the owner cannot enter (a clone under /root): one
 * folder per checkout under ROOT_RUNTIME_DIR instead of <checkout>/.data/postgres.
 */
export function relocatedDataDir(checkout: string): string {
  const id = createHash('sha256').update(path.resolve(checkout)).digest('hex').slice(0, 12);
  return path.join(ROOT_RUNTIME_DIR, `data-${id}`, 'postgres');
}
