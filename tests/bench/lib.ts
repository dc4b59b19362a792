// Shared plumbing for the benchmarks (npm run bench): a throw-away PostgreSQL 17 cluster of their
// own, sizes from the environment, timing and result tables. Nothing here asserts on timings.
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { databaseUrl } from '../../dev/database-url.ts';
import { migrateDatabase } from '../../dev/migrate.ts';
import { startEmbeddedCluster } from '../../dev/postgres.ts';

export const quiet = (): void => {};

/** An integer size from the environment (underscores allowed: 1_000_000). */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, got ${raw}`);
  }
  return value;
}

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

export interface BenchCluster {
  /** Superuser URL. */
  url: string;
  /** As supabase_auth_admin (search_path auth), the role Supabase Auth writes with. */
  authUrl: string;
  /** As the non-superuser postgres role. */
  postgresUrl: string;
  stop(): Promise<void>;
}

/**
 * A fresh embedded PostgreSQL 17 cluster in a temp dir, bootstrapped and migrated. Durable
 * settings (fsync and synchronous_commit on) unless BENCH_UNSAFE_FAST=1.
 */
export async function startBenchCluster(): Promise<BenchCluster> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'profile-bench-'));
  const cluster = await startEmbeddedCluster({
    dataDir,
    persistent: false,
    unsafeFast: process.env.BENCH_UNSAFE_FAST === '1',
  });
  try {
    await migrateDatabase(cluster.url, { log: quiet });
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query(`alter role postgres with password 'postgres'`);
    await admin.end();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return {
    url: cluster.url,
    authUrl: databaseUrl(cluster.url, { role: 'supabase_auth_admin' }),
    postgresUrl: databaseUrl(cluster.url, { role: 'postgres', password: 'postgres' }),
    async stop() {
      await cluster.stop().catch(() => {});
      await rm(dataDir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

export async function withClient<T>(
  url: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const round = (value: number, digits = 1): number =>
  Math.round(value * 10 ** digits) / 10 ** digits;

/** Users created the way bulkSignUpAsSupabaseAuth does, set-based, in chunks, with no trigger. */
const PLACEHOLDER_BCRYPT = '$2a$10$abcdefghijklmnopqrstuuJ4tvbhS2Ycv6mJ3L2oMgUs5p0Z5C3eS';

/** Every auth user's profile from its metadata in one statement, as a bulk-loaded project would have. */
export const PROFILES_FOR_ALL_USERS_SQL = `
  insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
  select u.id, u.email, f ->> 'full_name', f ->> 'username', f ->> 'avatar_url', f -> 'metadata', 'backfill'
  from auth.users u
  cross join lateral private.profile_fields(u.raw_user_meta_data) as f
  on conflict (user_id) do nothing`;

export async function bulkUsersWithoutProfiles(
  cluster: BenchCluster,
  count: number,
  options: { prefix?: string; chunk?: number; createdAgo?: string } = {},
): Promise<void> {
  const chunk = options.chunk ?? 100_000;
  await withClient(
    cluster.url,
    (c) => c.query('alter table auth.users disable trigger users_ensure_profile'),
  );
  try {
    await withClient(cluster.authUrl, async (client) => {
      for (let done = 0; done < count; done += chunk) {
        const n = Math.min(chunk, count - done);
        await client.query('begin');
        await client.query(
          `create temp table new_ids on commit drop as
           with ins as (
             insert into users (instance_id, id, aud, role, email, encrypted_password, raw_app_meta_data,
                                raw_user_meta_data, is_sso_user, is_anonymous, confirmation_token,
                                recovery_token, email_change_token_new, email_change, created_at, updated_at)
             select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', '',
                    $1 || ($4::int + n) || '@example.test', $2,
                    '{"provider": "email", "providers": ["email"]}',
                    jsonb_build_object('full_name', 'Bench User ' || ($4::int + n),
                                       'avatar_url', 'https://example.test/avatars/' || ($4::int + n) || '.png'),
                    false, false, '', '', '', '', now() - $5::interval, now() - $5::interval
             from generate_series(1, $3::int) as n
             returning id, email)
           select id, email from ins`,
          [options.prefix ?? 'bulk-', PLACEHOLDER_BCRYPT, n, done, options.createdAgo ?? '1 hour'],
        );
        await client.query(
          `insert into identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
           select i.id::text, i.id, jsonb_build_object('sub', i.id, 'email', i.email), 'email', now(), now() from new_ids i`,
        );
        await client.query(
          `update users u set role = 'authenticated', updated_at = now() from new_ids i where u.id = i.id`,
        );
        await client.query('commit');
      }
    });
  } finally {
    await withClient(
      cluster.url,
      (c) => c.query('alter table auth.users enable trigger users_ensure_profile'),
    );
  }
  await withClient(cluster.url, async (c) => {
    await c.query('vacuum analyze auth.users');
    await c.query('vacuum analyze auth.identities');
  });
}

export interface ResultRow {
  benchmark: string;
  metric: string;
  baseline: string;
  ours: string;
  ratio: string;
  target: string;
  verdict: 'met' | 'missed' | 'info';
}

export function machine(): Record<string, string> {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ??
    cpus()[0]?.model ?? 'unknown';
  const os = /PRETTY_NAME="([^"]*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ??
    process.platform;
  return {
    cpu,
    cores: String(cpus().length),
    ram_gib: String(Math.round(totalmem() / 2 ** 30)),
    os,
    node: process.version,
    load_at_start: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
}

export function markdownTable(rows: ResultRow[]): string {
  const head =
    '| benchmark | metric | baseline | ours | ratio | target | verdict |\n|---|---|---|---|---|---|---|';
  return [
    head,
    ...rows.map((r) =>
      `| ${r.benchmark} | ${r.metric} | ${r.baseline} | ${r.ours} | ${r.ratio} | ${r.target} | ${r.verdict} |`
    ),
  ].join('\n');
}
