// Backfill: N auth users without profiles (made set-based with the trigger off, as
// bulkSignUpAsSupabaseAuth does), repaired three ways on the same data, reset in between:
//   floor — one INSERT … SELECT (same columns through the same metadata mapping, no audit, no
//           anti-join: the floor of writing the rows);
//   ours  — the real CLI, `tsx scripts/backfill.ts --yes --json --batch-size B` against a local
//           stack (REST stand-in → public.backfill_missing_profiles), each RPC timed and the
//           CLI's RSS sampled by tests/bench/rpc-timer.mjs preloaded into it;
//   loop  — the seed-style loop: 100 users per page, `select public.ensure_user_profile(id,
//           'backfill')` per user, on a subset, extrapolated to N.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack } from '../../dev/stack.ts';
import {
  type BenchCluster,
  bulkUsersWithoutProfiles,
  envInt,
  log,
  percentile,
  quiet,
  type ResultRow,
  round,
  startBenchCluster,
  timed,
  withClient,
} from './lib.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

async function reset(cluster: BenchCluster): Promise<void> {
  await withClient(cluster.url, async (c) => {
    await c.query(
      'truncate public.user_profiles, private.audit_logs, private.repair_queue cascade',
    );
    await c.query('vacuum analyze public.user_profiles');
    await c.query('vacuum analyze private.audit_logs');
    await c.query('checkpoint');
  });
}

const FLOOR_SQL = `
  insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
  select u.id, u.email, f ->> 'full_name', f ->> 'username', f ->> 'avatar_url', f -> 'metadata', 'backfill'
  from auth.users u
  cross join lateral private.profile_fields(u.raw_user_meta_data) as f
  on conflict (user_id) do nothing`;
// No NOT EXISTS: the table is empty after reset(), and on an emptied-and-analyzed user_profiles the
// planner picks a nested-loop anti-join whose inner scan re-reads the pages this same statement
// is writing (quadratic: over 6 minutes of CPU at 1 M users before it was stopped).

async function profileCount(cluster: BenchCluster): Promise<number> {
  return await withClient(
    cluster.url,
    async (c) =>
      Number((await c.query('select count(*) as n from public.user_profiles')).rows[0].n),
  );
}

interface CliRun {
  ms: number;
  summary: Record<string, unknown>;
  batches: number[];
  rss: Array<{ t: number; rss: number }>;
}

async function runCli(apiUrl: string, serviceRoleKey: string, batchSize: number): Promise<CliRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'profile-bench-cli-'));
  const rpcLog = path.join(dir, 'rpc.jsonl');
  try {
    const started = performance.now();
    const { code, stdout, stderr } = await new Promise<
      { code: number | null; stdout: string; stderr: string }
    >((resolve, reject) => {
      const child = spawn(
        path.join(ROOT, 'node_modules', '.bin', 'tsx'),
        [
          'scripts/backfill.ts',
          '--yes',
          '--json',
          '--batch-size',
          String(batchSize),
          '--checkpoint',
          path.join(dir, 'checkpoint.json'),
        ],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            SUPABASE_URL: apiUrl,
            SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
            LOG_LEVEL: 'warn',
            BENCH_RPC_LOG: rpcLog,
            NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${
              path.join(ROOT, 'tests', 'bench', 'rpc-timer.mjs')
            }`.trim(),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.on('error', reject);
      child.on('exit', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
    });
    const ms = performance.now() - started;
    if (code !== 0) throw new Error(`backfill CLI exited ${code}: ${stderr.slice(-2000)}`);
    const summary = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    const events = (await readFile(rpcLog, 'utf8')).trim().split('\n').map((l) =>
      JSON.parse(l) as { pid: number; t: number; rpc?: string; ms?: number; rss: number }
    );
    const cliPid = events.find((e) => e.rpc === 'backfill_missing_profiles')?.pid;
    const mine = events.filter((e) => e.pid === cliPid);
    return {
      ms,
      summary,
      batches: mine.filter((e) => e.rpc === 'backfill_missing_profiles').map((e) => e.ms!),
      rss: mine.map((e) => ({ t: e.t, rss: e.rss })),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function seedLoop(
  cluster: BenchCluster,
  users: number,
): Promise<{ ms: number; created: number }> {
  return await withClient(cluster.postgresUrl, async (c) => {
    let after = '00000000-0000-0000-0000-000000000000';
    let created = 0;
    const started = performance.now();
    while (created < users) {
      const { rows } = await c.query<{ id: string }>(
        `select u.id from auth.users u
         where u.id > $1 and not exists (select 1 from public.user_profiles p where p.user_id = u.id)
         order by u.id limit 100`,
        [after],
      );
      if (rows.length === 0) break;
      for (const { id } of rows) {
        if (created >= users) break;
        await c.query(`select public.ensure_user_profile($1, 'backfill')`, [id]);
        created++;
      }
      after = rows[rows.length - 1]!.id;
    }
    return { ms: performance.now() - started, created };
  });
}

export async function backfillBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  const users = envInt('BENCH_BACKFILL_USERS', 1_000_000);
  const loopUsers = Math.min(users, envInt('BENCH_BACKFILL_LOOP_USERS', 50_000));
  const batchSize = envInt('BENCH_BACKFILL_BATCH', 5000);
  log(`backfill: ${users} users; CLI batch ${batchSize}; seed loop on ${loopUsers}`);
  const cluster = await startBenchCluster();
  try {
    const made = await timed(() => bulkUsersWithoutProfiles(cluster, users));
    log(`backfill: ${users} users made in ${round(made.ms / 1000)} s`);
    const stack = await startStack({
      databaseUrl: cluster.url,
      port: 0,
      functions: false,
      log: quiet,
    });
    try {
      await reset(cluster);
      const floor = await timed(() => withClient(cluster.url, (c) => c.query(FLOOR_SQL)));
      const floorCount = await profileCount(cluster);
      log(`backfill floor: ${round(floor.ms / 1000, 2)} s for ${floorCount}`);

      await reset(cluster);
      const loop = await seedLoop(cluster, loopUsers);
      const loopExtrapolatedMs = (loop.ms / loop.created) * users;
      log(
        `backfill seed loop: ${round(loop.ms / 1000, 2)} s for ${loop.created} → ~${
          round(loopExtrapolatedMs / 1000)
        } s for ${users}`,
      );

      await reset(cluster);
      const cli = await runCli(stack.apiUrl, stack.keys.serviceRoleKey, batchSize);
      const cliCount = await profileCount(cluster);
      const inDb = await withClient(cluster.url, async (c) =>
        (await c.query(
          `select max(duration_ms) as max_ms, count(*) as audit_rows from private.audit_logs where source = 'backfill'`,
        )).rows[0]);
      log(
        `backfill CLI: ${round(cli.ms / 1000, 2)} s for ${cliCount}; ${cli.batches.length} batches`,
      );

      const rssMb = cli.rss.map((s) => s.rss / 2 ** 20);
      const tenth = rssMb[Math.floor(rssMb.length / 10)] ?? Number.NaN;
      const rss = {
        samples: rssMb.length,
        at_10pct_mb: round(tenth),
        max_mb: round(Math.max(...rssMb)),
        last_mb: round(rssMb[rssMb.length - 1] ?? Number.NaN),
        // Ten evenly spaced samples across the run, to show the shape.
        profile_mb: Array.from(
          { length: 10 },
          (_, i) => round(rssMb[Math.floor((i * (rssMb.length - 1)) / 9)] ?? Number.NaN),
        ),
      };
      const longest = Math.max(...cli.batches);
      const ratio = cli.ms / floor.ms;
      const rows: ResultRow[] = [
        {
          benchmark: 'backfill',
          metric: `time to repair ${users} users (s)`,
          baseline: `INSERT…SELECT floor ${round(floor.ms / 1000, 1)}`,
          ours: `CLI ${round(cli.ms / 1000, 1)}`,
          ratio: `${round(ratio, 2)}×`,
          target: '≤ 1.25× floor',
          verdict: ratio <= 1.25 ? 'met' : 'missed',
        },
        {
          benchmark: 'backfill',
          metric: `time to repair ${users} users (s)`,
          baseline: `seed loop ${
            round(loopExtrapolatedMs / 1000, 1)
          } (extrapolated from ${loop.created})`,
          ours: `CLI ${round(cli.ms / 1000, 1)}`,
          ratio: `${round(cli.ms / loopExtrapolatedMs, 3)}×`,
          target: '(faster than the loop)',
          verdict: cli.ms < loopExtrapolatedMs ? 'met' : 'missed',
        },
        {
          benchmark: 'backfill',
          metric: `batch RPC ms (batch ${batchSize}): p50 / p95 / longest`,
          baseline: '—',
          ours: `${round(percentile(cli.batches, 50))} / ${round(percentile(cli.batches, 95))} / ${
            round(longest)
          }`,
          ratio: '—',
          target: 'short transactions',
          verdict: 'info',
        },
        {
          benchmark: 'backfill',
          metric: 'CLI RSS MB: at 10% / max / end',
          baseline: '—',
          ours: `${rss.at_10pct_mb} / ${rss.max_mb} / ${rss.last_mb}`,
          ratio: '—',
          target: 'flat',
          verdict: rss.max_mb - rss.at_10pct_mb < 50 ? 'met' : 'missed',
        },
      ];
      return {
        rows,
        details: {
          users,
          batch_size: batchSize,
          make_users_s: round(made.ms / 1000, 1),
          floor: { seconds: round(floor.ms / 1000, 2), profiles: floorCount },
          seed_loop: {
            users: loop.created,
            seconds: round(loop.ms / 1000, 2),
            extrapolated_seconds: round(loopExtrapolatedMs / 1000, 1),
          },
          cli: {
            seconds: round(cli.ms / 1000, 2),
            profiles: cliCount,
            summary: cli.summary,
            batches: cli.batches.length,
            batch_ms: {
              p50: percentile(cli.batches, 50),
              p95: percentile(cli.batches, 95),
              max: longest,
            },
            in_db_max_duration_ms: inDb.max_ms,
            audit_rows: inDb.audit_rows,
            rss,
          },
        },
      };
    } finally {
      await stack.stop();
    }
  } finally {
    await cluster.stop();
  }
}
