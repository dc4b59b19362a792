import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../dev/postgres.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** The printed curl as fetch arguments: URL, -X method, -H headers, -d body. */
function parseCurl(command: string): { url: string; init: RequestInit } {
  const args = [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!).filter((a) => a !== '\\');
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
    socket.once('connect', () => { socket.destroy(); resolve(true); });
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
    const [port, dbPort] = [await freePort(), await freePort()];
    const child = spawn(TSX, ['dev/start.ts', '--port', String(port), '--db-port', String(dbPort), '--data-dir', dataDir], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: '' },
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    const deadline = Date.now() + 90_000;
    while (!output.includes('Press Ctrl-C to stop.')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`npm start did not come up:\n${output}`);
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
    const body = (await response.json()) as { profile: { full_name: string; email: string }; profile_status: string };
    expect(body.profile).toMatchObject({ email: 'ada@example.com', full_name: 'Ada Lovelace' });
    expect(['created', 'existed']).toContain(body.profile_status);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output).toContain('SIGINT: stopping the local stack');
    expect(await listening(port)).toBe(false);
    expect(await listening(dbPort)).toBe(false);
  });
});
