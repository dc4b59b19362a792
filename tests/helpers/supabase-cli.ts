// Runs the real Supabase CLI (npm package `supabase`, pinned in package.json) as a deploy would,
// but contained, so a test can never touch a real project, the network or the user's files:
//
// * its project directory is a temporary copy of the checkout's files it needs (by default
//   supabase/config.toml and supabase/migrations), so what it writes there (supabase/.temp/…)
//   stays in the sandbox, not in the checkout;
// * HOME and the XDG folders point into the sandbox (it keeps ~/.supabase/telemetry.json), and
//   the environment is built from scratch, so no SUPABASE_ACCESS_TOKEN or profile leaks in;
// * telemetry (PostHog) and the update check (api.github.com) are switched off with the CLI's
//   own variables, and any HTTP client it has is sent to a closed loopback port;
// * where the kernel allows it, it runs in a network namespace of its own that has nothing but
//   a loopback device; the ports a test allows are bridged to the real loopback through Unix
//   sockets, so `--db-url postgres://…@127.0.0.1:<port>/…` still reaches the test server.
//   Where it does not (user namespaces restricted), the environment above is the containment.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnWithLifeline } from '../../dev/lifeline.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** What `npx supabase` runs: the package's launcher, which starts the platform binary. */
export const SUPABASE_CLI = path.join(ROOT, 'node_modules', '.bin', 'supabase');

export type Isolation = 'network-namespace' | 'environment';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliSandbox {
  /** The project directory the CLI runs in (its cwd): a copy of the checkout's supabase/ files. */
  readonly workdir: string;
  /** The sandbox's HOME. */
  readonly home: string;
  readonly isolation: Isolation;
  /**
   * Runs `supabase <args>` in workdir, stdin closed; resolves when it exits, whatever the code.
   * `env` adds variables (e.g. an access token for a local API stand-in).
   */
  run(
    args: readonly string[],
    options?: { timeoutMs?: number; env?: Record<string, string> },
  ): Promise<CliResult>;
  /** Stops the loopback bridges and deletes the sandbox. */
  dispose(): Promise<void>;
}

// Inside the namespace: bring loopback up, listen on each allowed port and pipe every
// connection to its Unix socket, then run the command and exit with its code. CommonJS for
// `node -e`; signals are passed on so a timeout stops the CLI, not only this bridge.
const BRIDGE = `
const { execFileSync, spawn } = require('node:child_process');
const net = require('node:net');
const [routes, command, ...args] = process.argv.slice(1);
execFileSync('ip', ['link', 'set', 'lo', 'up']);
Promise.all(JSON.parse(routes).map(({ port, socket }) => new Promise((resolve, reject) => {
  const server = net.createServer((client) => {
    const upstream = net.connect(socket);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => resolve(server));
}))).then(() => {
  const child = spawn(command, args, { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 1));
}, (error) => { console.error('loopback bridge: ' + error.message); process.exit(70); });
`;

const NAMESPACE = ['--user', '--map-root-user', '--net'];

let namespaceProbe: Promise<boolean> | undefined;

/** Whether this machine lets us create a network namespace and bring its loopback up. */
function namespaceAvailable(): Promise<boolean> {
  namespaceProbe ??= new Promise((resolve) => {
    execFile(
      'unshare',
      [...NAMESPACE, 'ip', 'link', 'set', 'lo', 'up'],
      { timeout: 10_000 },
      (error) => resolve(!error),
    );
  });
  return namespaceProbe;
}

/** A Unix socket outside the namespace that forwards every connection to 127.0.0.1:port. */
async function loopbackBridge(socket: string, port: number): Promise<{ close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const end of [client, upstream]) {
      open.add(end);
      end.on('close', () => open.delete(end));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  return {
    // A connection the CLI left open must not keep the sandbox (or the test run) alive.
    close: () =>
      new Promise<void>((resolve) => {
        for (const end of open) end.destroy();
        server.close(() => resolve());
      }),
  };
}

function cliEnvironment(home: string): NodeJS.ProcessEnv {
  // Nothing listens on the discard port: any HTTP request that is not to loopback fails at once.
  const closed = 'http://127.0.0.1:9';
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    // The binary (Bun) unpacks a 3 MB native module here and leaves it behind.
    TMPDIR: path.join(home, 'tmp'),
    LANG: 'C.UTF-8',
    SUPABASE_TELEMETRY_DISABLED: '1',
    DO_NOT_TRACK: '1',
    SUPABASE_NO_UPDATE_NOTIFIER: '1',
    HTTP_PROXY: closed,
    HTTPS_PROXY: closed,
    ALL_PROXY: closed,
    http_proxy: closed,
    https_proxy: closed,
    NO_PROXY: '127.0.0.1,localhost,::1',
    no_proxy: '127.0.0.1,localhost,::1',
  };
}

// ---------------------------------------------------------------------------------------------
// The forms of the CLI the guides may show
// ---------------------------------------------------------------------------------------------

/** A command line of the CLI, reduced to what identifies it: the subcommand and its flags. */
export interface CliForm {
  /** The subcommand words, e.g. ['db', 'push']; empty for `supabase --version`. */
  readonly command: readonly string[];
  /** The flags, in the order the guides write them (each is given once). */
  readonly flags: readonly string[];
  /** The test file that runs this form with the real CLI (it names the entry of SUPABASE_CLI_FORMS). */
  readonly test: string;
}

/** Flags that take a value (the next word); every other flag is a switch. */
export const VALUE_FLAGS = ['--db-url', '--project-ref'] as const;
export type ValueFlag = (typeof VALUE_FLAGS)[number];

/**
 * Every form of `npx supabase …` that README.md and docs/*.md show, and the test that runs it with
 * the pinned CLI. tests/docs/guides.test.ts fails on a documented `npx supabase` command whose
 * subcommand and flags are none of these, on an entry no guide uses, and on an entry whose test
 * file does not use it; the tests build their argv with cliArgv() from these entries.
 * Authentication is never a command: the CLI reads SUPABASE_ACCESS_TOKEN (no `login`), and every
 * command names its target (`--project-ref` or `--db-url`, no `link`).
 */
export const SUPABASE_CLI_FORMS = {
  version: { command: [], flags: ['--version'], test: 'tests/deploy/supabase-cli.test.ts' },
  dbPushDryRun: {
    command: ['db', 'push'],
    flags: ['--db-url', '--dry-run'],
    test: 'tests/deploy/db-push.test.ts',
  },
  dbPush: { command: ['db', 'push'], flags: ['--db-url'], test: 'tests/deploy/db-push.test.ts' },
  dbPushIncludeAll: {
    command: ['db', 'push'],
    flags: ['--db-url', '--include-all'],
    test: 'tests/deploy/db-push.test.ts',
  },
  migrationList: {
    command: ['migration', 'list'],
    flags: ['--db-url'],
    test: 'tests/deploy/db-push.test.ts',
  },
  migrationFetch: {
    command: ['migration', 'fetch'],
    flags: ['--db-url'],
    test: 'tests/deploy/db-push.test.ts',
  },
  secretsSet: {
    command: ['secrets', 'set'],
    flags: ['--project-ref'],
    test: 'tests/deploy/supabase-cli.test.ts',
  },
  secretsList: {
    command: ['secrets', 'list'],
    flags: ['--project-ref'],
    test: 'tests/deploy/supabase-cli.test.ts',
  },
  secretsUnset: {
    command: ['secrets', 'unset'],
    flags: ['--project-ref'],
    test: 'tests/deploy/supabase-cli.test.ts',
  },
  functionsDeploy: {
    command: ['functions', 'deploy'],
    flags: ['--use-api', '--project-ref'],
    test: 'tests/deploy/functions-deploy.test.ts',
  },
  functionsList: {
    command: ['functions', 'list'],
    flags: ['--project-ref'],
    test: 'tests/deploy/functions-deploy.test.ts',
  },
  functionsDelete: {
    command: ['functions', 'delete'],
    flags: ['--project-ref'],
    test: 'tests/deploy/functions-deploy.test.ts',
  },
} as const satisfies Record<string, CliForm>;
export type CliFormName = keyof typeof SUPABASE_CLI_FORMS;

/**
 * The argv of a form: its subcommand, then `args` (function names, NAME=value pairs), then its
 * flags, each value flag followed by its value from `values`.
 */
export function cliArgv(
  form: CliForm,
  options: { args?: readonly string[]; values?: Partial<Record<ValueFlag, string>> } = {},
): string[] {
  const argv = [...form.command, ...(options.args ?? [])];
  for (const flag of form.flags) {
    argv.push(flag);
    if ((VALUE_FLAGS as readonly string[]).includes(flag)) {
      const value = options.values?.[flag as ValueFlag];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      argv.push(value);
    }
  }
  return argv;
}

/**
 * Which form a shell command `npx supabase …` is (quotes respected, `\` continuations joined by
 * the caller), or null: the leading words must be the form's subcommand and its flags exactly the
 * form's flags.
 */
export function formOf(command: string): CliFormName | null {
  const words = command.match(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g) ?? [];
  if (words[0] !== 'npx' || words[1] !== 'supabase') return null;
  const flags: string[] = [];
  const positional: string[] = [];
  for (let i = 2; i < words.length; i++) {
    const word = words[i]!;
    if (!word.startsWith('--')) {
      positional.push(word);
      continue;
    }
    const [flag, inline] = word.split('=', 2) as [string, string | undefined];
    flags.push(flag);
    if (inline === undefined && (VALUE_FLAGS as readonly string[]).includes(flag)) i++;
  }
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
  for (const [name, form] of Object.entries(SUPABASE_CLI_FORMS) as Array<[CliFormName, CliForm]>) {
    if (form.command.every((word, i) => positional[i] === word) && same(flags, form.flags)) {
      // `npx supabase --version` has no subcommand; any other form must name its own.
      if (form.command.length === 0 && positional.length > 0) continue;
      return name;
    }
  }
  return null;
}

/** What a project directory needs for `db push`; `functions deploy` needs more. */
export const MIGRATION_FILES = ['supabase/config.toml', 'supabase/migrations'] as const;

/**
 * A sandbox for the CLI. `loopbackPorts`: the 127.0.0.1 ports it may reach (the test's database
 * server, a local API stand-in); in a network namespace nothing else exists for it. `files`:
 * what to copy from the checkout into the project directory, paths relative to it.
 */
export async function createCliSandbox(options: {
  loopbackPorts: readonly number[];
  files?: readonly string[];
}): Promise<CliSandbox> {
  const dir = await mkdtemp(path.join(tmpdir(), 'supabase-cli-'));
  const workdir = path.join(dir, 'project');
  const home = path.join(dir, 'home');
  const bridges: Array<{ close(): Promise<void> }> = [];
  try {
    for (const file of options.files ?? MIGRATION_FILES) {
      await cp(path.join(ROOT, file), path.join(workdir, file), { recursive: true });
    }
    await mkdir(path.join(home, 'tmp'), { recursive: true });

    const isolation: Isolation = (await namespaceAvailable()) ? 'network-namespace' : 'environment';
    const routes: Array<{ port: number; socket: string }> = [];
    if (isolation === 'network-namespace') {
      for (const port of options.loopbackPorts) {
        const socket = path.join(dir, `loopback-${port}.sock`);
        bridges.push(await loopbackBridge(socket, port));
        routes.push({ port, socket });
      }
    }

    const run: CliSandbox['run'] = (args, { timeoutMs = 60_000, env = {} } = {}) => {
      const [command, commandArgs] = isolation === 'network-namespace'
        ? ['unshare', [
          ...NAMESPACE,
          process.execPath,
          '-e',
          BRIDGE,
          JSON.stringify(routes),
          SUPABASE_CLI,
          ...args,
        ]]
        : [SUPABASE_CLI, [...args]];
      // The lifeline guard gives the CLI a closed stdin and ends it if this test process dies.
      const child = spawnWithLifeline(command, commandArgs, {
        name: 'supabase-cli',
        cwd: workdir,
        env: { ...cliEnvironment(home), ...env },
      });
      let stdout = '';
      let stderr = '';
      // Decoded as a stream: a chunk may end inside a multi-byte character (the CLI prints •).
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      return new Promise<CliResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGTERM');
          reject(
            new Error(
              `supabase ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`,
            ),
          );
        }, timeoutMs);
        child.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.once('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    };

    return {
      workdir,
      home,
      isolation,
      run,
      async dispose() {
        await Promise.all(bridges.map((bridge) => bridge.close()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(bridges.map((bridge) => bridge.close()));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
