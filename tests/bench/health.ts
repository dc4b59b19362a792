// profile-health at scale: N auth users, all with profiles, and an audit table that holds the
// same recent load (R rows over the last 24 h, the stats window) in both scenarios; only the
// history differs: none (R rows in all, 10 k by default) vs H rows in all, the rest spread over
// 1-91 days ago (10 M by default). p50/p95 of GET /functions/v1/profile-health through the
// local stack, public (health verdict only) and with the health token (verdict + 24 h stats),
// at concurrency 1. Also: the audit table's size per million attempts, EXPLAIN ANALYZE of the
// queries health runs, and a prune of the rows past the retention if prune_audit_logs exists.
import { startStack } from '../../dev/stack.ts';
import { cannon, type CannonResult } from './http.ts';
import {
  type BenchCluster,
  bulkUsersWithoutProfiles,
  envInt,
  log,
  PROFILES_FOR_ALL_USERS_SQL,
  quiet,
  type ResultRow,
  round,
  startBenchCluster,
  timed,
  withClient,
} from './lib.ts';

// Audit rows as the product writes them: mostly trigger creations, some existed, 0.1 % failed.
function auditInsert(ageSql: string): string {
  return `
    insert into private.audit_logs (occurred_at, user_id, operation, source, outcome, sqlstate, message, duration_ms, details)
    select ${ageSql}, gen_random_uuid(), 'ensure_profile',
           (array['trigger', 'trigger', 'trigger', 'register', 'ensure', 'backfill'])[1 + (n % 6)],
           case when n % 1000 = 0 then 'failed' when n % 10 = 0 then 'existed' else 'created' end,
           case when n % 1000 = 0 then '23505' end,
           case when n % 1000 = 0 then 'duplicate key value violates unique constraint "user_profiles_username_key"' end,
           round((random() * 20)::numeric, 3), '{}'::jsonb
    from generate_series(1, $1::int) as n`;
}

async function addHistory(cluster: BenchCluster, rows: number): Promise<void> {
  await withClient(cluster.url, async (c) => {
    // Bulk load without the secondary indexes, then build them (sorted builds): the same end state
    // as rows trickling in over 90 days, in minutes instead of hours.
    const { rows: indexes } = await c.query<{ name: string; def: string }>(
      `select indexname as name, indexdef as def from pg_indexes
        where schemaname = 'private' and tablename = 'audit_logs' and indexname <> 'audit_logs_pkey'`,
    );
    for (const index of indexes) await c.query(`drop index private.${index.name}`);
    const chunk = 1_000_000;
    for (let done = 0; done < rows; done += chunk) {
      await c.query(auditInsert(`now() - interval '1 day' - random() * interval '90 days'`), [
        Math.min(chunk, rows - done),
      ]);
      log(`health: history ${Math.min(done + chunk, rows)} / ${rows}`);
    }
    await c.query("set maintenance_work_mem = '512MB'");
    for (const index of indexes) await c.query(index.def);
    await c.query('vacuum analyze private.audit_logs');
  });
}

async function explain(cluster: BenchCluster): Promise<Record<string, string[]>> {
  return await withClient(cluster.url, async (c) => {
    const plan = async (sql: string) =>
      (await c.query(`explain (analyze, buffers) ${sql}`)).rows.map((r: Record<string, string>) =>
        r['QUERY PLAN']!
      );
    return {
      count_missing_profiles: await plan('select private.count_missing_profiles()'),
      health_window: await plan(
        `select count(*) filter (where a.outcome = 'created'), count(*) filter (where a.outcome = 'failed')
                                 from private.audit_logs a where a.occurred_at >= now() - interval '15 minutes'`,
      ),
      stats_window_24h: await plan(
        `select percentile_cont(0.95) within group (order by a.duration_ms)
                                    from private.audit_logs a where a.occurred_at >= now() - interval '24 hours' and a.duration_ms is not null`,
      ),
      profile_system_health: await plan('select public.profile_system_health()'),
      profile_system_stats: await plan(`select public.profile_system_stats('24 hours')`),
    };
  });
}

export async function healthBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  const users = envInt('BENCH_HEALTH_USERS', 1_000_000);
  const recent = envInt('BENCH_HEALTH_RECENT', 10_000);
  const history = Math.max(recent, envInt('BENCH_HEALTH_AUDIT', 10_000_000));
  const requests = envInt('BENCH_HEALTH_REQUESTS', 20);
  log(
    `health: ${users} users; audit ${recent} vs ${history} rows (${recent} in the last 24 h); ${requests} requests per point`,
  );
  const cluster = await startBenchCluster();
  try {
    const made = await timed(async () => {
      await bulkUsersWithoutProfiles(cluster, users, { createdAgo: '2 days' });
      await withClient(cluster.url, async (c) => {
        await c.query(PROFILES_FOR_ALL_USERS_SQL);
        await c.query('truncate private.audit_logs');
        await c.query(auditInsert(`now() - random() * interval '24 hours'`), [recent]);
        await c.query('vacuum analyze public.user_profiles');
        await c.query('vacuum analyze private.audit_logs');
      });
    });
    log(`health: data made in ${round(made.ms / 1000)} s`);
    const stack = await startStack({
      databaseUrl: cluster.url,
      port: 0,
      functions: true,
      log: quiet,
    });
    try {
      const url = `${stack.apiUrl}/functions/v1/profile-health`;
      const token = { 'x-health-token': stack.functionSecrets.PROFILE_HEALTH_TOKEN! };
      const measure = async (label: string) => {
        await cannon({ url, connections: 1, amount: 10, headers: token });
        const open = await cannon({ url, connections: 1, amount: requests, headers: {} });
        const withToken = await cannon({ url, connections: 1, amount: requests, headers: token });
        log(
          `health ${label}: public p50 ${open.p50} p95 ${open.p95}; token p50 ${withToken.p50} p95 ${withToken.p95}`,
        );
        return { public: open, token: withToken };
      };
      const small = await measure(`${recent} audit rows`);
      const smallPlans = await explain(cluster);
      const grown = await timed(() => addHistory(cluster, history - recent));
      log(`health: history added in ${round(grown.ms / 1000)} s`);
      const large = await measure(`${history} audit rows`);
      const largePlans = await explain(cluster);

      const size = await withClient(cluster.url, async (c) =>
        (await c.query(
          `select count(*)::bigint as rows, pg_total_relation_size('private.audit_logs') as total,
                pg_relation_size('private.audit_logs') as heap from private.audit_logs`,
        )).rows[0] as { rows: string; total: string; heap: string });
      const mbPerMillion = (Number(size.total) / 2 ** 20) / (Number(size.rows) / 1e6);

      let prune: Record<string, unknown> = { available: false };
      const hasPrune = await withClient(
        cluster.url,
        async (c) =>
          (await c.query(
            `select to_regprocedure('public.prune_audit_logs(integer)') is not null as ok`,
          )).rows[0].ok as boolean,
      );
      if (hasPrune) {
        const maxCalls = envInt('BENCH_PRUNE_CALLS', 40);
        prune = await withClient(cluster.postgresUrl, async (c) => {
          const old = Number(
            (await c.query(`select count(*) as n from private.audit_logs
                                              where occurred_at < now() - (select audit_retention from private.settings where id)`))
              .rows[0].n,
          );
          const calls: number[] = [];
          let deleted = 0;
          for (let i = 0; i < maxCalls; i++) {
            const started = performance.now();
            const { rows } = await c.query(`select public.prune_audit_logs(10000) as r`);
            calls.push(performance.now() - started);
            deleted += Number(rows[0].r.audit_logs);
            if (rows[0].r.done) break;
          }
          const total = calls.reduce((a, b) => a + b, 0);
          return {
            available: true,
            rows_past_retention: old,
            deleted,
            calls: calls.length,
            ms_per_call_max: round(Math.max(...calls)),
            rows_per_s: Math.round(deleted / (total / 1000)),
          };
        });
        log(`health: prune ${JSON.stringify(prune)}`);
      }

      const growth = (a: CannonResult, b: CannonResult) => b.p95 / a.p95;
      const rows: ResultRow[] = [];
      for (const kind of ['public', 'token'] as const) {
        const g = growth(small[kind], large[kind]);
        rows.push({
          benchmark: 'profile-health',
          metric: `${kind} p95 ms (p50), ${users} users`,
          baseline: `${recent} audit rows: ${small[kind].p95} (${small[kind].p50})`,
          ours: `${history} audit rows: ${large[kind].p95} (${large[kind].p50})`,
          ratio: `${round(g, 2)}×`,
          target: '≤ 50 ms p95; ≤ 1.5× growth',
          verdict: large[kind].p95 <= 50 && g <= 1.5 ? 'met' : 'missed',
        });
      }
      rows.push({
        benchmark: 'audit size',
        metric: 'MB per million attempts (heap + indexes)',
        baseline: '—',
        ours: `${round(mbPerMillion)} MB (${size.rows} rows, ${
          round(Number(size.total) / 2 ** 20)
        } MB)`,
        ratio: '—',
        target: 'bounded by retention',
        verdict: hasPrune ? 'info' : 'missed',
      });
      if (hasPrune) {
        rows.push({
          benchmark: 'audit prune',
          metric: 'prune_audit_logs(10000): rows/s, longest call',
          baseline: '—',
          ours:
            `${prune.rows_per_s} rows/s, ${prune.ms_per_call_max} ms (${prune.deleted} of ${prune.rows_past_retention} past retention, ${prune.calls} calls)`,
          ratio: '—',
          target: 'short batches',
          verdict: 'info',
        });
      }
      return {
        rows,
        details: {
          users,
          recent_rows: recent,
          history_rows: history,
          requests,
          make_data_s: round(made.ms / 1000),
          add_history_s: round(grown.ms / 1000),
          small,
          large,
          size: { ...size, mb_per_million: round(mbPerMillion, 1) },
          prune,
          plans: { small: smallPlans, large: largePlans },
        },
      };
    } finally {
      await stack.stop();
    }
  } finally {
    await cluster.stop();
  }
}
