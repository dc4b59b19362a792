import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DENO = path.join(ROOT, 'node_modules', '.bin', 'deno');

describe('the runtime-neutral core', () => {
  it('type-checks under real Deno with the project deno.json', async () => {
    const files = (await readdir(path.join(ROOT, 'shared'))).filter((f) => f.endsWith('.ts')).map((f) => `shared/${f}`);
    expect(files.length).toBeGreaterThan(0);
    const { stdout, stderr } = await promisify(execFile)(DENO, ['check', '--config', 'deno.json', ...files], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
    });
    expect(`${stdout}${stderr}`).not.toMatch(/error/i);
  });
});
