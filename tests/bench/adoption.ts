// How long private.adopt_profile_table() holds Auth's writes to auth.users (signups, and the
// last_sign_in_at update of every sign-in wait for its transaction): a quickstart project of N users,
// one in ten with a profile (the rest missed by its trigger), adopted with the in-transaction
// backfill and, in a second database of the same cluster, with p_backfill => false (the backfill
// then runs in batches afterwards, holding nothing).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { databaseUrl } from '../../dev/database-url.ts';
import { migrateDatabase } from '../../dev/migrate.ts';
import {
  type BenchCluster,
  bulkUsersWithoutProfiles,
  envInt,
  log,
  type ResultRow,
  round,
  startBenchCluster,
  timed,
  withClient,
} from './lib.ts';

const QUICKSTART_SQL = path.join(import.meta.dirname, '..', 'adoption', 'quickstart.sql');

/** A quickstart project of `users` users in database `name`, one in ten with a profile. */
async function quickstartProject(cluster: BenchCluster, name: string, users: number) {
  let project: BenchCluster = cluster;
  if (name !== 'postgres') {
    await withClient(cluster.url, (c) => c.query(`create database ${name}`));
    const url = databaseUrl(cluster.url, { database: name });
    await migrateDatabase(url, { log: () => {} });
    project = { ...cluster, url, authUrl: databaseUrl(cluster.authUrl, { database: name }) };
  }
  const quickstart = await readFile(QUICKSTART_SQL, 'utf8');
  await withClient(project.url, async (c) => {
    await c.query('set role postgres');
    await c.query(quickstart);
    await c.query('reset role');
    await c.query('alter table auth.users disable trigger on_auth_user_created');
  });
  await bulkUsersWithoutProfiles(project, users, { prefix: `${name}-` });
  await withClient(project.url, async (c) => {
    await c.query('alter table auth.users enable trigger on_auth_user_created');
    await c.query(
      `insert into public.profiles (id, full_name)
       select id, raw_user_meta_data ->> 'full_name' from auth.users where random() < 0.1`,
    );
    await c.query('vacuum analyze public.profiles');
  });
  return project;
}

async function adopt(project: BenchCluster, backfill: boolean) {
  return await withClient(project.url, async (c) => {
    await c.query('set role postgres');
    const { ms, value } = await timed(() =>
      c.query<{ r: { backfilled: number | null } }>(
        'select private.adopt_profile_table(p_backfill => $1) as r',
        [backfill],
      )
    );
    const missing = await c.query<{ n: string }>(
      'select count(*) as n from auth.users u where not exists (select 1 from public.profiles p where p.id = u.id)',
    );
    return { ms, backfilled: value.rows[0]!.r.backfilled, missing: Number(missing.rows[0]!.n) };
  });
}

export async function adoptionBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  const users = envInt('BENCH_ADOPT_USERS', 100_000);
  log(`adoption: a quickstart project of ${users} users, one in ten with a profile`);
  const cluster = await startBenchCluster();
  try {
    const withBackfill = await quickstartProject(cluster, 'postgres', users);
    const without = await quickstartProject(cluster, 'bench_adopt_later', users);
    const inTransaction = await adopt(withBackfill, true);
    log(`adoption with backfill: ${round(inTransaction.ms)} ms`);
    const later = await adopt(without, false);
    log(`adoption without backfill: ${round(later.ms)} ms`);
    const rows: ResultRow[] = [
      {
        benchmark: 'adoption',
        metric: `ms auth.users writes wait, ${users} users`,
        baseline: '—',
        ours: `${round(inTransaction.ms)} (backfilled ${inTransaction.backfilled})`,
        ratio: '—',
        target: '— (info)',
        // Every user must have their profile after it: anything else is a failed adoption.
        verdict: inTransaction.missing === 0 ? 'info' : 'missed',
      },
      {
        benchmark: 'adoption',
        metric: `ms auth.users writes wait, ${users} users, p_backfill => false`,
        baseline: '—',
        ours: `${round(later.ms)} (${later.missing} left to the batched backfill)`,
        ratio: '—',
        target: '— (info)',
        verdict: 'info',
      },
    ];
    return { rows, details: { users, with_backfill: inTransaction, without_backfill: later } };
  } finally {
    await cluster.stop();
  }
}
