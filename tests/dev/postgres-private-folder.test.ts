// Containers and CI images run as root, often from a checkout under /root (mode 0700).
// PostgreSQL refuses to run as root, so it runs as the `postgres` system user, which cannot
// enter such a folder. These tests put the binaries and the checkout in a folder only its owner
// can enter and show that the cluster starts anyway (as root: from a copy the server user can
// reach), or says in one sentence what to do.
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { installedNative, localDataDir, startEmbeddedCluster } from '../../dev/postgres.ts';
import { copyOnce, PostgresSetupError, relocatedDataDir } from '../../dev/postgres-owner.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];

async function privateFolder(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'profile-guard-private-'));
  dirs.push(dir);
  expect((await stat(dir)).mode & 0o777).toBe(0o700);
  return dir;
}

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('PostgreSQL from a folder only its owner can enter', () => {
  it('starts from binaries inside that folder and answers queries', async () => {
    const folder = await privateFolder();
    const nativeDir = path.join(folder, 'node_modules', 'native');
    await cp((await installedNative()).nativeDir, nativeDir, {
      recursive: true,
      verbatimSymlinks: true,
    });
    const dataDir = await mkdtemp(path.join(tmpdir(), 'profile-guard-private-data-'));
    dirs.push(dataDir);

    const cluster = await startEmbeddedCluster({
      dataDir,
      persistent: false,
      unsafeFast: true,
      nativeDir,
    });
    try {
      const client = new pg.Client({ connectionString: cluster.url });
      await client.connect();
      const { rows } = await client.query<{ version: string; user: string }>(
        'select version(), current_user as user',
      );
      await client.end();
      expect(rows[0]!.version).toMatch(/^PostgreSQL 17\./);
      expect(rows[0]!.user).toBe('supabase_admin');
    } finally {
      await cluster.stop();
    }
  }, 120_000);

  it('keeps the default data directory where the server can reach it: the checkout for a user, a folder of its own under /var/tmp for root', async () => {
    const checkout = await privateFolder();
    const expected = isRoot ? relocatedDataDir(checkout) : path.join(checkout, '.data', 'postgres');
    expect(localDataDir(checkout)).toBe(expected);
    // One folder per checkout, so two clones never share a database.
    expect(relocatedDataDir(checkout)).not.toBe(relocatedDataDir(`${checkout}-other`));
    expect(relocatedDataDir(checkout)).toMatch(
      /^\/var\/tmp\/supabase-profile-guard\/data-[0-9a-f]{12}\/postgres$/,
    );
  });

  it(
    isRoot
      ? 'refuses, as root, an explicit data directory the postgres user cannot enter, in one sentence that says what to do'
      : 'uses, as a user, an explicit data directory inside a folder only that user can enter',
    async () => {
      const dataDir = path.join(await privateFolder(), 'data');
      const started = startEmbeddedCluster({ dataDir, persistent: false, unsafeFast: true });
      if (isRoot) {
        const error = await started.then(async (cluster) => {
          await cluster.stop();
          return null;
        }, (e: unknown) => e);
        expect(error).toBeInstanceOf(PostgresSetupError);
        expect((error as Error).message).toBe(
          `PostgreSQL runs as the system user "postgres" when started by root, and that user cannot enter ${dataDir}; ` +
            'choose a data directory it can reach (for example under /var/tmp) or run as a user other than root.',
        );
      } else {
        const cluster = await started;
        await cluster.stop();
        expect(cluster.dataDir).toBe(dataDir);
      }
    },
    120_000,
  );
});

describe('the copy of the binaries that root makes for the postgres user', () => {
  it(
    'comes out once and complete when several starts in this process and another process ask for it at once, with no staging folder left',
    async () => {
      const source = (await installedNative()).nativeDir;
      const folder = await privateFolder();
      const target = path.join(folder, 'runtime', 'postgres-copy');
      const other = `import('./dev/postgres-owner.ts').then((m) => m.copyOnce(${
        JSON.stringify(source)
      }, ${JSON.stringify(target)}))`;
      const child = spawn(process.execPath, [
        '--import',
        'tsx',
        '--input-type=module',
        '--eval',
        other,
      ], { cwd: ROOT, stdio: 'inherit' });
      const childDone = new Promise<number | null>((resolve) => child.once('exit', resolve));

      await Promise.all([1, 2, 3, 4].map(() => copyOnce(source, target)));
      expect(await childDone).toBe(0);

      expect(await readdir(path.dirname(target))).toEqual(['postgres-copy']);
      expect((await stat(path.join(target, 'bin', 'postgres'))).size).toBe(
        (await stat(path.join(source, 'bin', 'postgres'))).size,
      );
      expect((await readdir(path.join(target, 'lib'))).sort()).toEqual(
        (await readdir(path.join(source, 'lib'))).sort(),
      );
    },
    120_000,
  );
});
