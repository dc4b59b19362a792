// Cold start: how long each function takes from `deno run` to its first answers, against a
// minimal function that only imports supabase-js (tests/bench/cold-start-baseline/), same run.
//   What boots: each function's shipped set — the files `supabase functions deploy --use-api`
//   uploads (the real CLI, to the local Management API stand-in): deno.json, the entry point and
//   every shared/*.ts it imports, under the same relative paths — written to a temp dir.
//   BENCH_COLD_START_FILES=module-graph takes the same set from Deno's module graph instead.
//   There is no node_modules there, so Deno takes the npm packages from DENO_DIR, as the hosted
//   runtime takes them from its module cache.
//   Warm cache: a fresh DENO_DIR (BENCH_DENO_DIR reuses one) is filled once from the npm registry
//   (`deno cache`) and by one untimed boot per function (transpiled TypeScript, V8 code cache);
//   every timed boot then runs with --cached-only. A deployment's first request is served from a
//   warm module cache too: the cold part is the process and the module graph, not the download.
//   Timed: spawn → the first answer to a CORS preflight (the worker is up), then → the answer to a
//   real request that goes through the handler without a database (routing, validation, logging);
//   and the CPU time the Deno process used by then, which other load on the machine hardly moves.
//   Boots alternate between the functions, round by round, to spread the machine's noise.
//   BENCH_COLD_START_COMPARE=<checkout> boots that checkout's functions in the same rounds
//   (a before/after that shares the run's noise).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DENO, DENO_REGISTRY_ENV, FUNCTION_PERMISSIONS } from '../../dev/deno.ts';
import { listFunctions } from '../../dev/functions/workers.ts';
import { LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY, localKeys, publicJwk } from '../../dev/keys.ts';
import { spawnWithLifeline, stopProcess } from '../../dev/lifeline.ts';
import { startManagementApi } from '../../dev/management-api.ts';
import { freePort } from '../../dev/postgres.ts';
import { LOCAL_FUNCTION_SECRETS } from '../../dev/stack.ts';
import {
  deployWithSupabaseCli,
  TEST_ACCESS_TOKEN,
  TEST_PROJECT_REF,
} from '../helpers/functions-deploy.ts';
import { moduleGraphFiles } from '../helpers/module-graph.ts';
import { writeFilesUnder } from '../helpers/uploaded-function.ts';
import { envInt, log, percentile, type ResultRow, round } from './lib.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASELINE = 'cold-start-baseline';
const TARGET_RATIO = 1.3;
const BOOT_TIMEOUT_MS = 30_000;

/** One file of a function's upload, by its path relative to the project root (posix separators). */
export interface ShippedFile {
  path: string;
  content: Uint8Array;
}

/** Where a function's shipped files come from: the one thing that differs between the sources. */
export type ShippedFileSource = (functionName: string) => Promise<ShippedFile[]>;

async function readShipped(root: string, relativePaths: string[]): Promise<ShippedFile[]> {
  return await Promise.all(
    [...new Set(relativePaths)].sort().map(async (p) => ({
      path: p.split(path.sep).join('/'),
      content: await readFile(path.join(root, p)),
    })),
  );
}

/**
 * The same set without the CLI: deno.json plus every project file in Deno's module graph of the
 * entry point (static and dynamic imports), which is what the CLI uploads. root: a checkout with
 * the project's node_modules (the graph is resolved with them).
 */
export function filesFromModuleGraph(root: string = ROOT): ShippedFileSource {
  return async (functionName) =>
    await readShipped(root, [
      'deno.json',
      ...(await moduleGraphFiles(`supabase/functions/${functionName}/index.ts`, root)),
    ]);
}

/**
 * What the real Supabase CLI uploads: one `supabase functions deploy --use-api` of every
 * function, from this checkout, to the local Management API stand-in.
 */
export function filesFromCliDeploy(names: readonly string[]): ShippedFileSource {
  let deployed: Promise<ReadonlyMap<string, ShippedFile[]>> | undefined;
  const deployAll = async () => {
    const api = await startManagementApi({
      accessToken: TEST_ACCESS_TOKEN,
      projectRef: TEST_PROJECT_REF,
    });
    try {
      const result = await deployWithSupabaseCli(names, { api });
      if (result.code !== 0) {
        throw new Error(
          `supabase functions deploy exited ${result.code}: ${result.stderr.slice(-1000)}`,
        );
      }
      return new Map(
        [...result.live].map((
          [slug, deployment],
        ) => [slug, deployment.files.map((f) => ({ path: f.path, content: f.content }))]),
      );
    } finally {
      await api.close();
    }
  };
  return async (functionName) => {
    const files = (await (deployed ??= deployAll())).get(functionName);
    if (!files) throw new Error(`the CLI did not deploy ${functionName}`);
    return files;
  };
}

/** The baseline laid out like a shipped function, with the same deno.json. */
async function baselineFiles(): Promise<ShippedFile[]> {
  const [config, entry] = await readShipped(ROOT, [
    'deno.json',
    path.join('tests', 'bench', BASELINE, 'index.ts'),
  ]);
  return [config!, { path: `supabase/functions/${BASELINE}/index.ts`, content: entry!.content }];
}

interface Probe {
  label: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
}

interface Target {
  /** The function (its folder under supabase/functions). */
  name: string;
  /** How rows and details name it: the function, plus the compared checkout's folder name. */
  label: string;
  dir: string;
  files: string[];
  bytes: number;
  preflight: Probe;
  real: Probe;
}

const PREFLIGHT_HEADERS = {
  origin: 'http://localhost:3000',
  'access-control-request-method': 'POST',
  'access-control-request-headers': 'authorization, apikey, content-type',
};

/** Requests each function answers meaningfully with no database behind it. */
function probesFor(
  name: string,
  keys: { anonKey: string; serviceRoleKey: string },
): { preflight: Probe; real: Probe } {
  const preflight: Probe = {
    label: 'OPTIONS preflight',
    method: 'OPTIONS',
    path: '/',
    headers: PREFLIGHT_HEADERS,
    status: name === BASELINE ? 200 : 204,
  };
  const asJson = (key: string) => ({
    'content-type': 'application/json',
    authorization: `Bearer ${key}`,
    apikey: key,
  });
  const real: Record<string, Probe> = {
    [BASELINE]: { label: 'GET', method: 'GET', path: '/', status: 200 },
    register: {
      label: 'POST {} → 400 validation_failed',
      method: 'POST',
      path: '/',
      headers: asJson(keys.anonKey),
      body: '{}',
      status: 400,
    },
    'ensure-profile': {
      label: 'POST {"user_id": "not-a-uuid"} as service → 400',
      method: 'POST',
      path: '/',
      headers: asJson(keys.serviceRoleKey),
      body: '{"user_id":"not-a-uuid"}',
      status: 400,
    },
    'profile-health': {
      label: 'GET ?format=html → 200 dashboard',
      method: 'GET',
      path: '/?format=html',
      status: 200,
    },
  };
  if (!real[name]) throw new Error(`cold-start: no probe for function ${name}`);
  return { preflight, real: real[name]! };
}

class WrongAnswer extends Error {}

interface BootTiming {
  readyMs: number;
  realMs: number;
  /** CPU time the Deno process had used by each answer: unlike wall time, hardly moved by other load. */
  readyCpuMs: number;
  realCpuMs: number;
}

/** The Deno process under the lifeline guard (a shell): its child named deno. */
function denoPid(guardPid: number): number {
  const children = readFileSync(`/proc/${guardPid}/task/${guardPid}/children`, 'utf8').trim().split(
    /\s+/,
  ).map(Number);
  const pid = children.find((child) =>
    readFileSync(`/proc/${child}/comm`, 'utf8').trim() === 'deno'
  );
  if (pid === undefined) throw new Error(`no deno process under ${guardPid}`);
  return pid;
}

/** CPU time of all of a process's threads so far, in ms (schedstat: nanoseconds on the CPU). */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  }
  return ns / 1e6;
}

/** One boot: spawn, first answered preflight, first answered real request, stop. */
async function boot(target: Target, env: Record<string, string>): Promise<BootTiming> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let output = '';
  let listening = false;
  let wake = () => {};
  const started = performance.now();
  const child = spawnWithLifeline(
    DENO,
    [
      'run',
      ...FUNCTION_PERMISSIONS,
      '--config',
      'deno.json',
      '--node-modules-dir=none',
      '--cached-only',
      `supabase/functions/${target.name}/index.ts`,
    ],
    {
      name: `cold-start-${target.name}`,
      cwd: target.dir,
      env: { ...env, DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}` },
    },
  );
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8000);
    // Deno.serve says so the moment it listens: ask then, instead of waiting for the next poll.
    if (!listening && output.includes('Listening on')) {
      listening = true;
      wake();
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const answered = async (probe: Probe): Promise<number> => {
    for (;;) {
      try {
        const response = await fetch(`${base}${probe.path}`, {
          method: probe.method,
          headers: probe.headers ?? {},
          body: probe.body ?? null,
        });
        const text = await response.text();
        if (response.status !== probe.status) {
          throw new WrongAnswer(
            `${target.label}: ${probe.label} answered ${response.status}, expected ${probe.status}: ${
              text.slice(0, 300)
            }`,
          );
        }
        return performance.now() - started;
      } catch (error) {
        if (error instanceof WrongAnswer) throw error;
        if (child.exitCode !== null) {
          throw new Error(
            `${target.label} exited during boot (${child.exitCode}): ${output.slice(-2000)}`,
          );
        }
        if (performance.now() - started > BOOT_TIMEOUT_MS) {
          throw new Error(
            `${target.label} did not answer within ${BOOT_TIMEOUT_MS} ms: ${output.slice(-2000)}`,
          );
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 10);
        });
      }
    }
  };

  try {
    const readyMs = await answered(target.preflight);
    const pid = denoPid(child.pid!);
    const readyCpuMs = cpuMs(pid);
    const realMs = await answered(target.real);
    return { readyMs, realMs, readyCpuMs, realCpuMs: cpuMs(pid) };
  } finally {
    await stopProcess(child);
  }
}

function summary(values: number[]): { median: number; p90: number } {
  return { median: round(percentile(values, 50)), p90: round(percentile(values, 90)) };
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();

export async function coldStartBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  const boots = envInt('BENCH_COLD_START_BOOTS', 12);
  const fileSource = process.env.BENCH_COLD_START_FILES ?? 'cli';
  if (fileSource !== 'cli' && fileSource !== 'module-graph') {
    throw new Error('BENCH_COLD_START_FILES must be cli or module-graph');
  }
  // e.g. `git archive` of an older commit with node_modules linked in; its sets come from its
  // module graph, as the CLI helper deploys only this checkout.
  const compare = process.env.BENCH_COLD_START_COMPARE
    ? path.resolve(process.env.BENCH_COLD_START_COMPARE)
    : null;
  const work = await mkdtemp(path.join(tmpdir(), 'profile-cold-start-'));
  const denoDir = process.env.BENCH_DENO_DIR || path.join(work, 'deno-dir');
  try {
    const keys = await localKeys();
    const names = await listFunctions(ROOT);
    const source = fileSource === 'cli' ? filesFromCliDeploy(names) : filesFromModuleGraph();
    const sets: Array<{ name: string; label: string; files: () => Promise<ShippedFile[]> }> = [
      { name: BASELINE, label: BASELINE, files: baselineFiles },
      ...names.map((name) => ({ name, label: name, files: () => source(name) })),
      ...(compare
        ? names.map((name) => ({
          name,
          label: `${name} (${path.basename(compare)})`,
          files: () => filesFromModuleGraph(compare)(name),
        }))
        : []),
    ];
    const targets: Target[] = [];
    for (const [i, set] of sets.entries()) {
      const files = await set.files();
      const dir = path.join(work, 'sets', String(i));
      await writeFilesUnder(dir, files);
      targets.push({
        name: set.name,
        label: set.label,
        dir,
        files: files.map((f) => f.path),
        bytes: files.reduce((sum, f) => sum + f.content.byteLength, 0),
        ...probesFor(set.name, keys),
      });
    }
    const denoEnv = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      DENO_DIR: denoDir,
      DENO_NO_UPDATE_CHECK: '1',
      NO_COLOR: '1',
      ...DENO_REGISTRY_ENV,
    };
    // What Supabase injects into every function, as the local stack passes it; the URL points
    // at nothing, because no probe needs Supabase.
    const env = {
      ...denoEnv,
      SUPABASE_URL: `http://127.0.0.1:${await freePort()}`,
      SUPABASE_ANON_KEY: keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: LOCAL_PUBLISHABLE_KEY }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: LOCAL_SECRET_KEY }),
      SUPABASE_JWKS: JSON.stringify({ keys: [publicJwk(keys.signingKey)] }),
      SUPABASE_DB_URL: 'postgresql://postgres:postgres@127.0.0.1:1/postgres',
      ...LOCAL_FUNCTION_SECRETS,
    };

    const fillStarted = performance.now();
    for (const target of targets) {
      await promisify(execFile)(DENO, [
        'cache',
        '--config',
        'deno.json',
        '--node-modules-dir=none',
        `supabase/functions/${target.name}/index.ts`,
      ], {
        cwd: target.dir,
        env: { ...process.env, ...denoEnv },
      });
    }
    for (const target of targets) await boot(target, env);
    const fillSeconds = round((performance.now() - fillStarted) / 1000);
    log(
      `cold-start: DENO_DIR ${denoDir} filled and warmed in ${fillSeconds} s; ${boots} timed boots per function, load ${loadavg()}`,
    );

    const loadAtStart = loadavg();
    const timings = new Map<string, BootTiming[]>(targets.map((t) => [t.label, []]));
    for (let n = 0; n < boots; n++) {
      // Each round starts with another function, so none always boots right after the same one.
      const order = targets.map((_, i) => targets[(i + n) % targets.length]!);
      for (const target of order) timings.get(target.label)!.push(await boot(target, env));
    }
    const loadAtEnd = loadavg();
    log(`cold-start: done, load ${loadAtEnd}`);

    const stats = Object.fromEntries(targets.map((t) => {
      const runs = timings.get(t.label)!;
      return [t.label, {
        ready: summary(runs.map((r) => r.readyMs)),
        real: summary(runs.map((r) => r.realMs)),
        ready_cpu: summary(runs.map((r) => r.readyCpuMs)),
        real_cpu: summary(runs.map((r) => r.realCpuMs)),
      }];
    }));
    const base = stats[BASELINE]!;
    const rows: ResultRow[] = [];
    for (const target of targets.filter((t) => t.name !== BASELINE)) {
      const ours = stats[target.label]!;
      for (const kind of ['ready', 'real'] as const) {
        const ratio = ours[kind].median / base[kind].median;
        const probe = kind === 'ready' ? target.preflight : target.real;
        rows.push({
          benchmark: `cold start ${target.label}`,
          metric: `spawn → ${
            kind === 'ready' ? 'first answer' : 'first real answer'
          } (${probe.label}), ms median / p90`,
          baseline: `${base[kind].median} / ${base[kind].p90}`,
          ours: `${ours[kind].median} / ${ours[kind].p90}`,
          ratio: `${round(ratio, 2)}×`,
          target: `≤ ${TARGET_RATIO}× baseline`,
          verdict: ratio <= TARGET_RATIO ? 'met' : 'missed',
        });
      }
      rows.push({
        benchmark: `cold start ${target.label}`,
        metric: 'CPU ms of the Deno process by the first real answer, median / p90',
        baseline: `${base.real_cpu.median} / ${base.real_cpu.p90}`,
        ours: `${ours.real_cpu.median} / ${ours.real_cpu.p90}`,
        ratio: `${round(ours.real_cpu.median / base.real_cpu.median, 2)}×`,
        target: '—',
        verdict: 'info',
      });
    }
    return {
      rows,
      details: {
        boots_per_function: boots,
        files: fileSource === 'cli'
          ? 'uploaded by supabase functions deploy --use-api (local Management API stand-in)'
          : 'Deno module graph of each entry point',
        deno_dir: process.env.BENCH_DENO_DIR
          ? denoDir
          : 'fresh temp dir, filled from the npm registry',
        fill_and_warm_seconds: fillSeconds,
        load_at_start: loadAtStart,
        load_at_end: loadAtEnd,
        sets: Object.fromEntries(
          targets.map((
            t,
          ) => [t.label, {
            files: t.files,
            bytes: t.bytes,
            preflight: t.preflight.label,
            real: t.real.label,
          }]),
        ),
        stats,
        timings_ms: Object.fromEntries([...timings].map(([name, runs]) => [
          name,
          runs.map((r) => ({
            ready: round(r.readyMs),
            real: round(r.realMs),
            ready_cpu: round(r.readyCpuMs),
            real_cpu: round(r.realCpuMs),
          })),
        ])),
      },
    };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}
