import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { listMigrations } from '../../dev/migrate.ts';
import { freePort } from '../../dev/postgres.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

interface Run {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  exit: Promise<number | null>;
}

function runDb(args: string[]): Run {
  const child = spawn(TSX, ['dev/db.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: '' },
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

async function waitFor(run: Run, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!run.output().includes(text)) {
    if (Date.now() > deadline || run.child.exitCode !== null) {
      throw new Error(`never printed "${text}":\n${run.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('npm run db', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('prints usage and exits 2 on an unknown flag or a bad port', async () => {
    const unknown = runDb(['--bogus']);
    expect(await unknown.exit).toBe(2);
    expect(unknown.output()).toContain('usage: npm run db');
    const badPort = runDb(['--port', 'http']);
    expect(await badPort.exit).toBe(2);
    expect(badPort.output()).toContain('--port must be a port number, got http');
  });

  it('starts migrated, keeps data across Ctrl-C and restart, and never applies a migration twice', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'profile-guard-db-'));
    dirs.push(dataDir);
    const port = await freePort();
    const url = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`;
    const migrations = await listMigrations();

    const first = runDb(['--port', String(port), '--data-dir', dataDir]);
    await waitFor(first, 'Ready.');
    expect(first.output()).toContain(`${migrations.length} migration(s) applied`);
    expect(first.output()).toContain(`DB URL: ${url}`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query(
      'select current_user, (select count(*)::int from supabase_migrations.schema_migrations) as applied',
    );
    expect(rows).toEqual([{ current_user: 'postgres', applied: migrations.length }]);
    await client.query(`update private.settings set grace_period = interval '7 minutes'`);
    await client.end();
    first.child.kill('SIGINT');
    expect(await first.exit).toBe(0);
    expect(first.output()).toContain('SIGINT: stopping PostgreSQL');

    const second = runDb(['--port', String(port), '--data-dir', dataDir]);
    await waitFor(second, 'Ready.');
    expect(second.output()).toContain('0 migration(s) applied');
    const again = new pg.Client({ connectionString: url });
    await again.connect();
    expect((await again.query('select grace_period::text from private.settings')).rows).toEqual([{
      grace_period: '00:07:00',
    }]);
    await again.end();
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);

    // Nothing is left listening once it has exited.
    const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    await expect(probe.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
