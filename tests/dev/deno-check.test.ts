import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DENO, LOCAL_DENO_FLAGS } from '../../dev/deno.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

async function denoCheck(files: string[]): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)(DENO, [
    'check',
    ...LOCAL_DENO_FLAGS,
    ...files,
  ], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
  });
  return `${stdout}${stderr}`;
}

describe('Deno', () => {
  it('type-checks every shared module, the runtime-neutral core, with the project deno.json', async () => {
    const files = (await readdir(path.join(ROOT, 'shared'), { recursive: true })).filter((f) =>
      f.endsWith('.ts')
    ).map((f) => `shared/${f}`);
    expect(files.length).toBeGreaterThan(10);
    expect(files).toContain('shared/dashboard/client.ts');
    expect(await denoCheck(files)).not.toMatch(/\[ERROR\]|^error:/m);
  });

  it('type-checks the index.ts of every function', async () => {
    const functions = await readdir(path.join(ROOT, 'supabase', 'functions'));
    expect(functions.sort()).toEqual(['ensure-profile', 'profile-health', 'register']);
    expect(await denoCheck(functions.map((f) => `supabase/functions/${f}/index.ts`))).not.toMatch(
      /\[ERROR\]|^error:/m,
    );
  });

  it("maps the same package versions in deno.json's import map as package.json pins", async () => {
    const deno = JSON.parse(await readFile(path.join(ROOT, 'deno.json'), 'utf8')) as {
      imports: Record<string, string>;
    };
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const mapped = Object.entries(deno.imports).map(([name, spec]) => [name, spec]);
    expect(mapped.length).toBeGreaterThan(0);
    for (const [name, spec] of mapped) expect(spec).toBe(`npm:${name}@${pkg.dependencies[name!]}`);
  });
});
