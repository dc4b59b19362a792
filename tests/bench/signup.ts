// Signup overhead of the trigger: users/s written into auth.users exactly as Supabase Auth writes
// them (dev/auth/user-store.ts insertAuthUser: users row with role '', identity, UPDATE, in one
// transaction as supabase_auth_admin), over C connections, with no trigger, with the naive
// documented handle_new_user trigger, with ours (users_ensure_profile) on the default table, and
// with ours on an adopted quickstart `profiles` table (a second database of the same cluster,
// docs/DEPLOYMENT.md §5.1.1). Rounds interleave the variants so drift in the machine's load hits
// all four alike; the median round is reported.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { insertAuthUser } from '../../dev/auth/user-store.ts';
import { databaseUrl } from '../../dev/database-url.ts';
import { migrateDatabase } from '../../dev/migrate.ts';
import { envInt, log, type ResultRow, round, startBenchCluster, withClient } from './lib.ts';

const QUICKSTART_SQL = path.join(import.meta.dirname, '..', 'adoption', 'quickstart.sql');
const ADOPTED_DATABASE = 'bench_adopted';

const PLACEHOLDER_BCRYPT = '$2a$10$abcdefghijklmnopqrstuuJ4tvbhS2Ycv6mJ3L2oMgUs5p0Z5C3eS';

// The trigger from Supabase's "User Management" docs, into a bench-only copy of its profiles table.
export const NAIVE_SQL = `
  create table if not exists public.bench_naive_profiles (
    id uuid not null references auth.users on delete cascade primary key,
    updated_at timestamptz,
    username text unique,
    full_name text,
    avatar_url text,
    website text
  );
  create or replace function public.bench_handle_new_user()
  returns trigger
  language plpgsql
  security definer set search_path = ''
  as $$
  begin
    insert into public.bench_naive_profiles (id, full_name, avatar_url)
    values (new.id, new.raw_user_meta_data->>'full_name', new.raw_user_meta_data->>'avatar_url');
    return new;
  end;
  $$;
  drop trigger if exists bench_on_auth_user_created on auth.users;
  create trigger bench_on_auth_user_created
    after insert on auth.users
    for each row execute procedure public.bench_handle_new_user();
`;

type Variant = 'none' | 'naive' | 'ours' | 'adopted';
const VARIANTS = ['none', 'naive', 'ours', 'adopted'] as const;

/** A second database with the quickstart's schema, adopted as the profile table. */
async function adoptedDatabase(serverUrl: string): Promise<string> {
  await withClient(serverUrl, (c) => c.query(`create database ${ADOPTED_DATABASE}`));
  const url = databaseUrl(serverUrl, { database: ADOPTED_DATABASE });
  await migrateDatabase(url, { log: () => {} });
  const quickstart = await readFile(QUICKSTART_SQL, 'utf8');
  await withClient(url, async (c) => {
    await c.query('set role postgres');
    await c.query(quickstart);
    await c.query('select private.adopt_profile_table()');
  });
  return url;
}

async function setVariant(url: string, variant: Variant): Promise<void> {
  // The adopted database has its own trigger, always on; the default database's triggers are off
  // meanwhile only so that nothing else in the cluster writes.
  await withClient(url, async (c) => {
    await c.query(
      `alter table auth.users ${
        variant === 'naive' ? 'enable' : 'disable'
      } trigger bench_on_auth_user_created`,
    );
    await c.query(
      `alter table auth.users ${
        variant === 'ours' ? 'enable' : 'disable'
      } trigger users_ensure_profile`,
    );
  });
}

export async function signUpOne(pool: pg.Pool, n: number): Promise<void> {
  const id = randomUUID();
  const email = `signup-${n}-${id.slice(0, 8)}@example.test`;
  const client = await pool.connect();
  try {
    await client.query('begin');
    await insertAuthUser(client, {
      id,
      email,
      encryptedPassword: PLACEHOLDER_BCRYPT,
      userMetadata: {
        full_name: `Bench User ${n}`,
        avatar_url: `https://example.test/avatars/${n}.png`,
      },
      identities: [{
        provider: 'email',
        providerId: id,
        identityData: { sub: id, email, email_verified: false, phone_verified: false },
      }],
      emailConfirmed: false,
    });
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

export async function run(
  pool: pg.Pool,
  users: number,
  connections: number,
  offset: number,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    for (;;) {
      const n = next++;
      if (n >= users) return;
      await signUpOne(pool, offset + n);
    }
  }));
  return users / ((performance.now() - started) / 1000);
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function signupBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  const users = envInt('BENCH_SIGNUP_USERS', 4000);
  const connections = envInt('BENCH_SIGNUP_CONNECTIONS', 8);
  const rounds = envInt('BENCH_SIGNUP_ROUNDS', 3);
  log(`signup: ${rounds} round(s) × ${users} users per variant, ${connections} connections`);
  const cluster = await startBenchCluster();
  try {
    await withClient(cluster.url, (c) => c.query(NAIVE_SQL));
    const adoptedUrl = await adoptedDatabase(cluster.url);
    const pool = new pg.Pool({ connectionString: cluster.authUrl, max: connections });
    const adoptedPool = new pg.Pool({
      connectionString: databaseUrl(cluster.authUrl, { database: ADOPTED_DATABASE }),
      max: connections,
    });
    const poolOf = (variant: Variant) => (variant === 'adopted' ? adoptedPool : pool);
    const results: Record<Variant, number[]> = { none: [], naive: [], ours: [], adopted: [] };
    let offset = 0;
    try {
      // Warm-up: connections, plan caches, the first pages of every index.
      for (const variant of VARIANTS) {
        await setVariant(cluster.url, variant === 'adopted' ? 'none' : variant);
        await run(poolOf(variant), Math.min(500, users), connections, offset);
        offset += Math.min(500, users);
      }
      for (let round_ = 0; round_ < rounds; round_++) {
        for (const variant of VARIANTS) {
          await setVariant(cluster.url, variant === 'adopted' ? 'none' : variant);
          await withClient(cluster.url, (c) => c.query('checkpoint'));
          const rate = await run(poolOf(variant), users, connections, offset);
          offset += users;
          results[variant].push(rate);
          log(`signup round ${round_ + 1} ${variant}: ${round(rate)} users/s`);
        }
      }
    } finally {
      await pool.end();
      await adoptedPool.end();
    }
    const adoptedCounts = await withClient(adoptedUrl, async (c) =>
      (await c.query(
        `select (select count(*) from auth.users) as users, (select count(*) from public.profiles) as profiles,
              (select count(*) from private.audit_logs where outcome = 'failed') as failed`,
      )).rows[0]);
    const counts = await withClient(cluster.url, async (c) =>
      (await c.query(
        `select (select count(*) from auth.users) as users, (select count(*) from public.user_profiles) as ours,
              (select count(*) from public.bench_naive_profiles) as naive,
              (select count(*) from private.audit_logs where outcome = 'failed') as failed`,
      )).rows[0]);
    const none = median(results.none);
    const naive = median(results.naive);
    const ours = median(results.ours);
    const adopted = median(results.adopted);
    const rows: ResultRow[] = [
      {
        benchmark: 'signup',
        metric: `users/s, ${connections} conns (median of ${rounds})`,
        baseline: `no trigger ${round(none)}`,
        ours: `${round(ours)}`,
        ratio: `${round(ours / none, 2)}×`,
        target: '≥ 0.70× no trigger',
        verdict: ours / none >= 0.7 ? 'met' : 'missed',
      },
      {
        benchmark: 'signup',
        metric: `users/s, ${connections} conns (median of ${rounds})`,
        baseline: `naive trigger ${round(naive)}`,
        ours: `${round(ours)}`,
        ratio: `${round(ours / naive, 2)}×`,
        target: '≥ 0.90× naive',
        verdict: ours / naive >= 0.9 ? 'met' : 'missed',
      },
      {
        benchmark: 'signup',
        metric: `users/s, ${connections} conns (median of ${rounds})`,
        baseline: `ours, default table ${round(ours)}`,
        ours: `adopted profiles ${round(adopted)}`,
        ratio: `${round(adopted / ours, 2)}×`,
        target: '≥ 0.95× default table',
        verdict: adopted / ours >= 0.95 ? 'met' : 'missed',
      },
    ];
    return {
      rows,
      details: {
        users_per_round: users,
        connections,
        rounds,
        rates: results,
        counts,
        adopted_counts: adoptedCounts,
      },
    };
  } finally {
    await cluster.stop();
  }
}
