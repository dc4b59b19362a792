// What the operator CLIs (backfill, reconcile) share besides their flag parsing (cli-flags.ts):
// the target (SUPABASE_URL + service key through the one config loader, or the local stack), RPC
// calls under the one retry policy, and main()'s exit handling: 0 done, 1 failed, 2 bad arguments
// or configuration, 130 interrupted.
import { createInterface } from 'node:readline/promises';
import { type Config, ConfigError, loadConfig } from '../shared/config.ts';
import { createLogger, type Logger, redact } from '../shared/logger.ts';
import { RetryExhausted, type RetryPolicy } from '../shared/retry.ts';
import type { RpcName, RpcResult } from '../shared/rpc-results.ts';
import { LOCAL_API_URL, LOCAL_SECRET_KEY } from '../shared/local-stack.ts';
import { callRpc as callSharedRpc, type RpcArgs, RpcError } from '../shared/rpc.ts';
import { createSupabaseClient, type SupabaseClient } from '../shared/supabase-client.ts';
import { UsageError } from './cli-flags.ts';

/** One RPC may run a whole batch (up to 10,000 users): give it longer than an API call. */
const CLI_CALL_TIMEOUT_MS = 60_000;

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A deliberate stop with an exit code and one line for stderr (no usage). */
export class CliExit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'CliExit';
  }
}

/** A URL fit for a terminal: any user:password@ part is dropped, never printed. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '[unparsable url]';
  }
}

export interface Target {
  config: Config;
  /** True when SUPABASE_URL was unset and the local stack was assumed. */
  local: boolean;
}

/**
 * SUPABASE_URL and the service key from the environment through loadConfig; when SUPABASE_URL is
 * unset, the local stack with its fixed local secret key (unless a key is given). A bad
 * environment is a CliExit(2) naming the variables, never their values.
 */
export async function resolveTarget(env: Record<string, string | undefined>): Promise<Target> {
  const local = !env.SUPABASE_URL;
  const effective = { ...env };
  if (local) {
    effective.SUPABASE_URL = LOCAL_API_URL;
    if (!env.SUPABASE_SERVICE_ROLE_KEY && !env.SUPABASE_SECRET_KEYS) {
      effective.SUPABASE_SECRET_KEYS = JSON.stringify({ default: LOCAL_SECRET_KEY });
    }
  }
  try {
    return { config: loadConfig(effective), local };
  } catch (error) {
    if (error instanceof ConfigError) throw new CliExit(EXIT.usage, error.message);
    throw error;
  }
}

/** The one line that says which project a run talks to (stderr: --json keeps stdout clean). */
export function targetNotice(target: Target): string {
  return target.local
    ? `SUPABASE_URL is not set: using the local stack at ${LOCAL_API_URL} with its fixed local secret key`
    : `target: ${displayUrl(target.config.supabaseUrl)}`;
}

export function createClient(config: Config): SupabaseClient {
  return createSupabaseClient(config.supabaseUrl, config.serviceRoleKey, {
    timeoutMs: CLI_CALL_TIMEOUT_MS,
  });
}

/** Structured logs of a CLI: pino JSON on stderr, redacted by the shared logger. */
export function createCliLogger(config: Config, name: string): Logger {
  return createLogger({
    level: config.logLevel,
    bindings: { cli: name },
    destination: process.stderr,
  });
}

/** callRpc for a CLI: each retry logged, and a final failure as one RpcError whose message is one printable line. */
export async function callRpc<F extends RpcName>(
  supabase: SupabaseClient,
  fn: F,
  args: RpcArgs<F>,
  policy: RetryPolicy,
  log: Logger,
): Promise<RpcResult<F>> {
  try {
    return await callSharedRpc(supabase, fn, args, policy, {
      onRetry: ({ attempt, delayMs, error }) =>
        log.warn({
          fn,
          attempt,
          delay_ms: delayMs,
          code: (error as RpcError).code,
          status: (error as RpcError).status,
          err: (error as Error).message,
        }, 'rpc failed, retrying'),
    });
  } catch (error) {
    if (error instanceof RetryExhausted) {
      const last = error.lastError;
      const message = last instanceof RpcError
        ? `${last.code ? `${last.code} ` : ''}${last.message}`
        : last instanceof Error
        ? last.message
        : String(last);
      const why = error.reason === 'permanent'
        ? 'not retryable'
        : `retries exhausted: ${error.reason}`;
      throw new RpcError(
        fn,
        last instanceof RpcError ? last.code : '',
        last instanceof RpcError ? last.status : 0,
        `${fn} failed after ${error.attempts} attempt(s) (${why}): ${message}`,
      );
    }
    throw error;
  }
}

/** Interactive means a person can answer: a TTY on stdin, and not a CI job. */
export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY) && !process.env.CI;
}

/** Asks a yes/no question on the terminal; anything but y or yes, and Ctrl-C, is no. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const aborted = new AbortController();
  rl.on('SIGINT', () => aborted.abort());
  try {
    const answer = await rl.question(question, { signal: aborted.signal });
    return /^y(es)?$/i.test(answer.trim());
  } catch {
    return false;
  } finally {
    rl.close();
  }
}

/** Progress can be drawn in place: stderr is a terminal, and not a CI job. */
export function canDrawProgress(): boolean {
  return Boolean(process.stderr.isTTY) && !process.env.CI;
}

/** Quotes an argument for a POSIX shell only when it needs it, so printed commands can be pasted. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return minutes < 60
    ? `${minutes} min ${seconds} s`
    : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Sleeps ms, or less when signal aborts (Ctrl-C should not wait out a rate limit). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

// One Ctrl-C in a terminal reaches this process more than once: the terminal signals the whole
// process group (npm, tsx, node), and npm and tsx each relay what they got to their child. Signals
// this close to the first are the same keypress.
const SAME_CTRL_C_MS = 1_000;

/**
 * Calls first() on Ctrl-C (SIGINT) or on SIGTERM (what `docker stop`, systemd and Kubernetes send
 * before they kill), and again() on a later, separate signal. Returns the function that removes
 * the handlers.
 */
export function onInterrupt(first: () => void, again: () => void): () => void {
  let firstAt: number | undefined;
  const handler = () => {
    const now = Date.now();
    if (firstAt === undefined) {
      firstAt = now;
      first();
    } else if (now - firstAt >= SAME_CTRL_C_MS) {
      again();
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** Secrets never reach a terminal line: JWTs, sb_secret_ keys and bearer headers are masked. */
export function scrub(text: string): string {
  return redact(text) as string;
}

async function flush(stream: NodeJS.WriteStream): Promise<void> {
  await new Promise<void>((resolve) => stream.write('', () => resolve()));
}

/** Exits once stdout and stderr have taken everything written (pipes can lag behind). */
async function exit(code: number): Promise<never> {
  await Promise.all([flush(process.stdout), flush(process.stderr)]);
  process.exit(code);
}

/**
 * The top level of a CLI: runs main and exits with its code. A UsageError prints the usage and
 * exits 2; a CliExit prints its line and exits with its code; anything else prints one clear
 * line and exits 1.
 */
export function runMain(name: string, usage: string, main: () => Promise<number>): void {
  main()
    .then((code) => exit(code))
    .catch(async (error: unknown) => {
      if (error instanceof UsageError) {
        process.stderr.write(`${scrub(error.message)}\n\n${usage}\n`);
        return exit(EXIT.usage);
      }
      if (error instanceof CliExit) {
        process.stderr.write(`${scrub(error.message)}\n`);
        return exit(error.code);
      }
      process.stderr.write(
        `npm run ${name} failed: ${
          scrub(error instanceof Error ? error.message : String(error))
        }\n`,
      );
      return exit(EXIT.failed);
    });
}
