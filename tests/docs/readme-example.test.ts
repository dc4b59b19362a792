// README's "Use it from your app" is the example app's code, not a sketch of it: every code block
// there that follows a link to a file under examples/ is that file, byte for byte.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

async function section(): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Use it from your app');
  expect(start).toBeGreaterThan(-1);
  return readme.slice(start, readme.indexOf('\n## ', start + 1));
}

describe("README's Use it from your app", () => {
  it('quotes examples/app/src/supabase.ts and SignUp.tsx exactly, each under a link to its file', async () => {
    const text = await section();
    const quoted = [
      ...text.matchAll(/\]\((examples\/[^)]+)\)[^\n]*\n\n```(?:ts|tsx)\n([\s\S]*?)```/g),
    ]
      .map(([, file, code]) => ({ file: file!, code: code! }));
    expect(quoted.map((q) => q.file)).toEqual([
      'examples/app/src/supabase.ts',
      'examples/app/src/SignUp.tsx',
    ]);
    for (const { file, code } of quoted) {
      expect(code, file).toBe(await readFile(path.join(ROOT, file), 'utf8'));
    }
  });

  it("names what replaces each of an app's three frontend pieces: the service, the hook and the flag", async () => {
    const rows = (await section()).split('\n').filter((line) => /^\| A /.test(line));
    expect(rows.map((row) => row.split('|')[1]!.trim())).toEqual([
      'A profile service: `supabase.auth.signUp`, then an insert into the profile table from the browser',
      'A registration hook with hand-written states',
      'A flag choosing the new signup or the old one',
    ]);
  });
});
