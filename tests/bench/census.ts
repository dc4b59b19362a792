// The missing-profile census at scale: what one scheduled period costs at N auth users (all but
// a few with profiles), for each N in BENCH_CENSUS_USERS (default 1 M and 10 M). Per period the
// schedule runs one census step (a slice of census_scan_batch users of the safety-net scan, plus
// pruning the set) and health counts live; both are timed here over many calls, beside the full
// anti-join of auth.users against the profiles that the census used to run once a minute.
import {
  bulkUsersWithoutProfiles,
  log,
  percentile,
  PROFILES_FOR_ALL_USERS_SQL,
  type ResultRow,
  round,
  startBenchCluster,
  timed,
  withClient,
} from './lib.ts';

/** Users in the set (switched-off signups, deleted profiles) and in the repair queue, as a busy project has. */
const MISSING = 100;
const QUEUED = 50;
const CALLS = 30;

function sizes(): number[] {
  const raw = process.env.BENCH_CENSUS_USERS ?? '1000000,10000000';
  return raw.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

async function timeCalls(url: string, sql: string, calls: number): Promise<number[]> {
  return withClient(url, async (c) => {
    const ms: number[] = [];
    for (let i = 0; i < calls; i++) {
      const started = performance.now();
      await c.query(sql);
      ms.push(performance.now() - started);
    }
    return ms;
  });
}

export async function censusBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  const rows: ResultRow[] = [];
  const details: Record<string, unknown> = {};
  for (const users of sizes()) {
    const cluster = await startBenchCluster();
    try {
      const made = await timed(async () => {
        await bulkUsersWithoutProfiles(cluster, users);
        await withClient(cluster.url, async (c) => {
          await c.query("set maintenance_work_mem = '512MB'");
          await c.query(PROFILES_FOR_ALL_USERS_SQL);
          // Some users whom the census knows to be without a profile, and some in the repair queue.
          await c.query(
            `with picked as (select user_id from public.user_profiles order by user_id limit $1)
                         delete from public.user_profiles p using picked where p.user_id = picked.user_id`,
            [MISSING + QUEUED],
          );
          await c.query(
            `insert into private.repair_queue (user_id, source, reason, sqlstate, next_attempt_at)
                         select m.user_id, 'trigger', 'bench', 'XX000', now() + interval '1 hour'
                         from private.missing_profiles m order by m.user_id limit $1`,
            [QUEUED],
          );
          await c.query('vacuum analyze');
        });
      });
      log(`census ${users}: data made in ${round(made.ms / 1000)} s`);
      const step = await timeCalls(
        cluster.postgresUrl,
        'select public.profile_census_step()',
        CALLS,
      );
      const health = await timeCalls(
        cluster.postgresUrl,
        'select public.profile_system_health()',
        CALLS,
      );
      const fullCount = await timeCalls(
        cluster.postgresUrl,
        `select count(*) from auth.users u
        where not exists (select 1 from public.user_profiles p where p.user_id = u.id)`,
        3,
      );
      const verdict = await withClient(
        cluster.postgresUrl,
        async (c) =>
          (await c.query(
            `select public.profile_system_health() -> 'checks' -> 'missing_profiles' as m`,
          )).rows[0].m as { value: number; queued: number },
      );
      const figures = {
        step_p50: round(percentile(step, 50), 2),
        step_max: round(Math.max(...step), 2),
        health_p50: round(percentile(health, 50), 2),
        health_max: round(Math.max(...health), 2),
        full_count_p50: round(percentile(fullCount, 50), 1),
        missing: verdict.value,
        queued: verdict.queued,
      };
      log(`census ${users}: ${JSON.stringify(figures)}`);
      details[String(users)] = { make_data_s: round(made.ms / 1000), ...figures };
      const perPeriod = figures.step_max + figures.health_max;
      rows.push({
        benchmark: 'missing-profile census',
        metric: `per period at ${
          users.toLocaleString('en-US')
        } users: census step + live count, ms (p50; max of ${CALLS})`,
        baseline: `full anti-join: ${figures.full_count_p50}`,
        ours: `${figures.step_p50} + ${figures.health_p50} (max ${
          round(perPeriod, 1)
        }); counts ${figures.missing} missing, ${figures.queued} queued`,
        ratio: `${
          round(figures.full_count_p50 / (figures.step_p50 + figures.health_p50), 0)
        }× less`,
        target: '≤ 100 ms per period',
        verdict: perPeriod <= 100 ? 'met' : 'missed',
      });
    } finally {
      await cluster.stop();
    }
  }
  return { rows, details };
}
