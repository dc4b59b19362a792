import { execFileSync, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { relocatedDataDir } from '../../dev/postgres-owner.ts';
import { freePort } from '../../dev/postgres.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** The printed curl as fetch arguments: URL, -X method, -H headers, -d body. */
function parseCurl(command: string): { url: string; init: RequestInit } {
  const args = [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!).filter((a) =>
    a !== '\\'
  );
  const headers: Record<string, string> = {};
  let url = '';
  let method = 'GET';
  let body: string | undefined;
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-X') method = args[++i]!;
    else if (arg === '-H') {
      const [name, ...value] = args[++i]!.split(':');
      headers[name!.trim()] = value.join(':').trim();
    } else if (arg === '-d') body = args[++i];
    else if (arg === '-i') continue;
    else url = arg;
  }
  return { url, init: { method, headers, ...(body !== undefined ? { body } : {}) } };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('npm start', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('prints the status lines and a curl that registers a user with 201, and Ctrl-C leaves nothing running', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'profile-guard-start-'));
    dirs.push(dataDir);
    const output = await startRegisterAndStop(ROOT, ['--data-dir', dataDir]);
    expect(output).toContain(`PostgreSQL data: ${dataDir}\n`);
  });

  it('runs from a checkout in a folder only its owner can enter, with the default data directory (as root: one under /var/tmp the postgres user can reach)', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'profile-guard-private-checkout-'));
    dirs.push(folder);
    expect((await stat(folder)).mode & 0o777).toBe(0o700);
    const checkout = path.join(folder, 'checkout');
    const files = execFileSync('git', [
      'ls-files',
      '-z',
      '--cached',
      '--others',
      '--exclude-standard',
    ], { cwd: ROOT, encoding: 'utf8' })
      .split('\0').filter(Boolean);
    for (const file of files) {
      await mkdir(path.dirname(path.join(checkout, file)), { recursive: true });
      await cp(path.join(ROOT, file), path.join(checkout, file)).catch(() => undefined); // a file deleted but not yet staged
    }
    await symlink(path.join(ROOT, 'node_modules'), path.join(checkout, 'node_modules'));
    const expected = process.getuid?.() === 0
      ? relocatedDataDir(checkout)
      : path.join(checkout, '.data', 'postgres');
    dirs.push(path.dirname(expected));

    const output = await startRegisterAndStop(checkout, []);
    expect(output).toContain(`PostgreSQL data: ${expected}\n`);
    expect(output).not.toMatch(/EACCES/);
  });
});

/** Runs `npm start` in checkout, registers with the printed curl, stops it with Ctrl-C; returns its output. */
async function startRegisterAndStop(checkout: string, args: string[]): Promise<string> {
  const [port, dbPort] = [await freePort(), await freePort()];
  const child = spawn(TSX, [
    'dev/start.ts',
    '--port',
    String(port),
    '--db-port',
    String(dbPort),
    ...args,
  ], {
    cwd: checkout,
    env: { ...process.env, DATABASE_URL: '' },
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const deadline = Date.now() + 90_000;
  while (!output.includes('Press Ctrl-C to stop.')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      throw new Error(`npm start did not come up:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  expect(output).toContain(`API URL: http://127.0.0.1:${port}\n`);
  expect(output).toContain(`DB URL: postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres\n`);
  expect(output).toMatch(/anon key: eyJ[\w-]+\.[\w-]+\.[\w-]+\n/);
  expect(output).toMatch(/service_role key: eyJ[\w-]+\.[\w-]+\.[\w-]+\n/);

  const curl = /^curl [\s\S]*?-d '.*'$/m.exec(output)?.[0];
  expect(curl).toBeDefined();
  const { url, init } = parseCurl(curl!.replace(/\\\n/g, ' '));
  expect(url).toBe(`http://127.0.0.1:${port}/functions/v1/register`);
  const response = await fetch(url, init);
  expect(response.status).toBe(201);
  const body = (await response.json()) as {
    profile: { full_name: string; email: string };
    profile_status: string;
  };
  expect(body.profile).toMatchObject({ email: 'ada@example.com', full_name: 'Ada Lovelace' });
  expect(['created', 'existed']).toContain(body.profile_status);

  // The schedule is printed, and runs with nobody calling anything: a user who signs up through
  // Auth while the trigger is switched off gets a profile from the local stand-in for pg_cron.
  expect(output).toContain(
    "self-repair: select public.run_self_repair() every 60 s (local stand-in for the pg_cron job profile-self-repair, '* * * * *')\n",
  );
  const anonKey = /anon key: (\S+)\n/.exec(output)![1]!;
  const sql = new pg.Client({
    connectionString: `postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres`,
  });
  await sql.connect();
  try {
    await sql.query(
      `update private.settings set trigger_enabled = false, self_repair_period = interval '1 second'`,
    );
    const signup = await fetch(`http://127.0.0.1:${port}/auth/v1/signup`, {
      method: 'POST',
      headers: { apikey: anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({
        email: 'switched-off@example.com',
        password: 'correct-horse-battery',
      }),
    });
    expect(signup.status).toBe(200);
    const userId = ((await signup.json()) as { user: { id: string } }).user.id;
    await sql.query('update private.settings set trigger_enabled = true');
    const deadline = Date.now() + 10_000;
    let profile: unknown[] = [];
    while (profile.length === 0 && Date.now() < deadline) {
      profile =
        (await sql.query('select created_via from public.user_profiles where user_id = $1', [
          userId,
        ])).rows;
      if (profile.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(profile).toEqual([{ created_via: 'backfill' }]);
    await sql.query(`update private.settings set self_repair_period = interval '1 minute'`);
  } finally {
    await sql.end();
  }

  child.kill('SIGINT');
  expect(await exited).toBe(0);
  expect(output).toContain('SIGINT: stopping the local stack');
  expect(await listening(port)).toBe(false);
  expect(await listening(dbPort)).toBe(false);
  return output;
}
