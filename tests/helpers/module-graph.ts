// What a function's upload must hold, worked out by Deno rather than by the Supabase CLI: the
// project files in the module graph of its entry point (static, dynamic and type imports).
import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DENO, LOCAL_DENO_FLAGS } from '../../dev/deno.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Paths from root (posix separators, sorted) of the graph's files outside node_modules. */
export async function moduleGraphFiles(entry: string, root: string = ROOT): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    DENO,
    ['info', '--json', ...LOCAL_DENO_FLAGS, entry],
    {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
      maxBuffer: 64 * 2 ** 20,
    },
  );
  const graph = JSON.parse(stdout) as { modules: Array<{ specifier: string }> };
  // Deno reports real paths (symlinks resolved).
  const real = await realpath(root);
  return graph.modules
    .filter((m) => m.specifier.startsWith('file:'))
    .map((m) => path.relative(real, fileURLToPath(m.specifier)).split(path.sep).join('/'))
    .filter((file) => !file.startsWith('node_modules/') && !file.startsWith('../'))
    .sort();
}
