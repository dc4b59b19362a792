import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listening } from '../../dev/functions/workers.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Starts the Deno workers the way the stack does, prints their ports, and waits to be killed. */
const OWNER = `
  const { startWorkers } = await import('./dev/functions/workers.ts');
  const { LOCAL_FUNCTION_SECRETS } = await import('./dev/stack.ts');
  const { localKeys, LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY, publicJwk } = await import('./dev/keys.ts');
  const keys = await localKeys();
  const pool = await startWorkers({
    root: process.cwd(),
    log: () => {},
    env: {
      SUPABASE_URL: 'http://127.0.0.1:9',
      SUPABASE_ANON_KEY: keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: LOCAL_PUBLISHABLE_KEY }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: LOCAL_SECRET_KEY }),
      SUPABASE_JWKS: JSON.stringify({ keys: [publicJwk(keys.signingKey)] }),
      ...LOCAL_FUNCTION_SECRETS,
    },
  });
  console.log(JSON.stringify([...pool.workers.values()].map((w) => w.port)));
  setInterval(() => {}, 60_000);
`;

describe('the function workers', () => {
  it('end when the process that started them is killed without stopping them', async () => {
    // node itself with tsx's loader (the tsx CLI would run the script in a child of its own).
    const owner = spawn(process.execPath, [
      '--import',
      'tsx',
      '--input-type=module',
      '--eval',
      OWNER,
    ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const ports = await new Promise<number[]>((resolve, reject) => {
      let out = '';
      owner.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as number[]);
      });
      owner.once(
        'exit',
        (code) => reject(new Error(`the owner exited (${code}) before its workers listened`)),
      );
    });
    expect(ports.length).toBe(3);
    expect(await Promise.all(ports.map(listening))).toEqual([true, true, true]);

    // No stop(), no exit handler: the owner is gone at once, as a crashed test worker would be.
    owner.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    let open = ports;
    while (open.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      open = (await Promise.all(ports.map(async (port) => ((await listening(port)) ? port : null))))
        .filter((p): p is number => p !== null);
    }
    expect(open).toEqual([]);
  }, 60_000);
});
