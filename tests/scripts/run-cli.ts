// Spawns an operator CLI exactly as `npm run <name>` does (tsx on scripts/<name>.ts), off a
// terminal, with a clean Supabase environment pointing wherever the test says.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

export interface CliRun {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  /** stdout and stderr interleaved as they arrived. */
  output: () => string;
  exit: Promise<number | null>;
}

// Variables of the machine that must not leak into a CLI under test.
const CLEARED = [
  'SUPABASE_URL',
  'SUPABASE_SERVICE_ROLE_KEY',
  'SUPABASE_SECRET_KEYS',
  'SUPABASE_ANON_KEY',
  'SUPABASE_PUBLISHABLE_KEYS',
  'ALERT_WEBHOOK_URL',
  'PROFILE_RETRY_MAX_ATTEMPTS',
  'PROFILE_RETRY_BASE_DELAY_MS',
  'PROFILE_RETRY_MAX_DELAY_MS',
  'PROFILE_RETRY_DEADLINE_MS',
  'LOG_LEVEL',
];

export function runCli(
  script: 'backfill' | 'reconcile',
  args: string[],
  env: Record<string, string> = {},
): CliRun {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const name of CLEARED) delete base[name];
  const child = spawn(TSX, [`scripts/${script}.ts`, ...args], {
    cwd: ROOT,
    env: { ...base, CI: 'true', ...env },
  });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
    output += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
    output += chunk;
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, output: () => output, exit };
}

/** Waits until check() holds, polling; fails with the CLI's output when it exits first or time runs out. */
export async function waitUntil(
  run: CliRun,
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline || run.child.exitCode !== null) {
      throw new Error(`never saw ${what}:\n${run.output()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The single JSON object a --json run printed on stdout (and nothing else). */
export function jsonSummary<T = Record<string, unknown>>(run: CliRun): T {
  const lines = run.stdout().split('\n').filter((line) => line !== '');
  if (lines.length !== 1) {
    throw new Error(`expected one line on stdout, got ${lines.length}:\n${run.output()}`);
  }
  return JSON.parse(lines[0]!) as T;
}
