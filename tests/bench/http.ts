// ensure-profile and register end to end through the local stack (real Deno workers behind the
// /functions/v1 gateway), loaded by autocannon (its own process) at concurrency C, against a naive
// function (tests/bench/naive-function/, its own `deno run` with the same env) reached through an
// equivalent one-hop proxy in this process, so both pay the same gateway hop.
//   ensure:   every request names a different user who has no profile yet.
//   register: every request a new email; REGISTER_MODE=admin so ours and the naive one both create
//             users with auth.admin.createUser; REGISTER_RATE_LIMIT_MAX raised; the naive run has
//             our trigger disabled (it models a project without this system).
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DENO, FUNCTION_PERMISSIONS, LOCAL_DENO_FLAGS } from '../../dev/deno.ts';
import { freePort } from '../../dev/postgres.ts';
import { type Stack, startStack } from '../../dev/stack.ts';
import {
  type BenchCluster,
  bulkUsersWithoutProfiles,
  envInt,
  log,
  quiet,
  type ResultRow,
  round,
  startBenchCluster,
  withClient,
} from './lib.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CannonResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  non2xx: number;
}

export async function cannon(config: Record<string, unknown>): Promise<CannonResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'tests', 'bench', 'cannon.mjs')], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.end(JSON.stringify(config));
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}: ${err.slice(-1000)}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as CannonResult);
    });
  });
}

async function startNaive(stack: Stack): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    DENO,
    ['run', ...FUNCTION_PERMISSIONS, ...LOCAL_DENO_FLAGS, 'tests/bench/naive-function/index.ts'],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        DENO_NO_UPDATE_CHECK: '1',
        NO_COLOR: '1',
        SUPABASE_URL: stack.apiUrl,
        SUPABASE_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
        SUPABASE_ANON_KEY: stack.keys.anonKey,
        PORT: String(port),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' });
      break;
    } catch {
      if (child.exitCode !== null) throw new Error(`naive function exited: ${stderr.slice(-1000)}`);
      if (Date.now() > deadline) throw new Error('naive function did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // The same hop the stack's /functions/v1 gateway adds in front of ours: read, forward, answer.
  const proxy: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) {
          if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers.set(k, v);
        }
        const upstream = await fetch(`http://127.0.0.1:${port}${req.url}`, {
          method: req.method,
          headers,
          body: chunks.length ? Buffer.concat(chunks) : null,
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/json',
        });
        res.end(body);
      } catch (error) {
        res.writeHead(502).end(String(error));
      }
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    async stop() {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}

async function idsWithoutProfile(cluster: BenchCluster, prefix: string): Promise<string[]> {
  return await withClient(cluster.url, async (c) =>
    (await c.query<{ id: string }>(
      `select u.id from auth.users u where u.email like $1 || '%'
       and not exists (select 1 from public.user_profiles p where p.user_id = u.id) order by random()`,
      [prefix],
    )).rows.map((r) => r.id));
}

async function setOurTrigger(cluster: BenchCluster, on: boolean): Promise<void> {
  await withClient(
    cluster.url,
    (c) =>
      c.query(`alter table auth.users ${on ? 'enable' : 'disable'} trigger users_ensure_profile`),
  );
}

/** `limit`: the p99 ratio the issue sets (ensure-profile 1.3×, register 1.2×). */
function row(
  name: string,
  naive: CannonResult,
  ours: CannonResult,
  connections: number,
  limit: number,
): ResultRow[] {
  const ratio = ours.p99 / naive.p99;
  const statuses = (r: CannonResult) =>
    Object.entries(r.statuses).map(([k, v]) => `${k}:${v}`).join(' ');
  return [
    {
      benchmark: name,
      metric: `req/s at c=${connections} (statuses)`,
      baseline: `${naive.rps} (${statuses(naive)})`,
      ours: `${ours.rps} (${statuses(ours)})`,
      ratio: `${round(ours.rps / naive.rps, 2)}×`,
      target: '—',
      verdict: 'info',
    },
    {
      benchmark: name,
      metric: 'latency ms p50 / p95 / p99',
      baseline: `${naive.p50} / ${naive.p95} / ${naive.p99}`,
      ours: `${ours.p50} / ${ours.p95} / ${ours.p99}`,
      ratio: `p99 ${round(ratio, 2)}×`,
      target: `p99 ≤ ${limit}× naive`,
      verdict: ratio <= limit ? 'met' : 'missed',
    },
  ];
}

export async function httpBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  const connections = envInt('BENCH_HTTP_CONNECTIONS', 32);
  const seconds = envInt('BENCH_HTTP_SECONDS', 15);
  const warmup = envInt('BENCH_HTTP_WARMUP_SECONDS', 3);
  const pool = envInt('BENCH_HTTP_USERS', 20_000);
  log(
    `http: c=${connections}, ${seconds} s per run (+${warmup} s warm-up), ${pool} fresh users per ensure run`,
  );
  const cluster = await startBenchCluster();
  try {
    for (
      const prefix of ['ens-naive-warm-', 'ens-ours-warm-', 'ens-naive-main-', 'ens-ours-main-']
    ) {
      await bulkUsersWithoutProfiles(
        cluster,
        prefix.includes('warm') ? Math.min(5000, pool) : pool,
        { prefix },
      );
    }
    const stack = await startStack({
      databaseUrl: cluster.url,
      port: 0,
      functions: true,
      bcryptCost: 4,
      log: quiet,
      functionEnv: { REGISTER_MODE: 'admin', REGISTER_RATE_LIMIT_MAX: '1000000' },
    });
    const naive = await startNaive(stack);
    try {
      const service = {
        authorization: `Bearer ${stack.keys.serviceRoleKey}`,
        apikey: stack.keys.serviceRoleKey,
        'content-type': 'application/json',
      };
      const anon = {
        authorization: `Bearer ${stack.keys.anonKey}`,
        apikey: stack.keys.anonKey,
        'content-type': 'application/json',
      };
      const ours = `${stack.apiUrl}/functions/v1`;
      const run = async (
        label: string,
        base: string,
        fn: string,
        mode: string,
        headers: Record<string, string>,
        extra: Record<string, unknown>,
      ) => {
        const { ids, warmIds } = extra as { ids?: string[]; warmIds?: string[] };
        await cannon({
          url: `${base}/${fn}`,
          method: 'POST',
          connections,
          duration: warmup,
          mode,
          headers,
          ids: warmIds,
          prefix: `${label}-warm`,
        });
        const result = await cannon({
          url: `${base}/${fn}`,
          method: 'POST',
          connections,
          duration: seconds,
          mode,
          headers,
          ids,
          prefix: `${label}`,
        });
        log(
          `http ${label}: ${result.rps} req/s p50 ${result.p50} p95 ${result.p95} p99 ${result.p99} ${
            JSON.stringify(result.statuses)
          }`,
        );
        return result;
      };
      const ensureNaive = await run(
        'ensure-naive',
        naive.url,
        'ensure-profile',
        'ensure',
        service,
        {
          ids: await idsWithoutProfile(cluster, 'ens-naive-main-'),
          warmIds: await idsWithoutProfile(cluster, 'ens-naive-warm-'),
        },
      );
      const ensureOurs = await run('ensure-ours', ours, 'ensure-profile', 'ensure', service, {
        ids: await idsWithoutProfile(cluster, 'ens-ours-main-'),
        warmIds: await idsWithoutProfile(cluster, 'ens-ours-warm-'),
      });
      await setOurTrigger(cluster, false);
      const registerNaive = await run('reg-naive', naive.url, 'register', 'register', anon, {});
      await setOurTrigger(cluster, true);
      const registerOurs = await run('reg-ours', ours, 'register', 'register', anon, {});
      // Where ours spends its time: the database's own duration of each ensure (audit duration_ms).
      const inDb = await withClient(cluster.url, async (c) =>
        (await c.query(
          `select source, count(*) as n, round(percentile_cont(0.5) within group (order by duration_ms)::numeric, 3) as p50_ms,
                round(percentile_cont(0.99) within group (order by duration_ms)::numeric, 3) as p99_ms
           from private.audit_logs where source in ('ensure', 'register', 'trigger') group by source order by source`,
        )).rows);
      log(`http: in-database ensure durations ${JSON.stringify(inDb)}`);
      return {
        rows: [
          ...row('ensure-profile', ensureNaive, ensureOurs, connections, 1.3),
          ...row('register', registerNaive, registerOurs, connections, 1.2),
        ],
        details: {
          connections,
          seconds,
          warmup_seconds: warmup,
          bcrypt_cost: 4,
          in_db_audit_durations: inDb,
          ensure: { naive: ensureNaive, ours: ensureOurs },
          register: { naive: registerNaive, ours: registerOurs },
        },
      };
    } finally {
      await naive.stop();
      await stack.stop();
    }
  } finally {
    await cluster.stop();
  }
}
