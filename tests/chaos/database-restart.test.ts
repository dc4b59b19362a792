// The database restarts (fast shutdown, then start on the same port and data directory) in the
// middle of a registration load. Every request must end in 201, 202 or 503 — never a hang or an
// unexplained 500 — and after recovery and one reconcile no auth user lacks a profile and no
// email has two users.
//   CHAOS_RESTART_WORKERS  concurrent registration loops (default 16)
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../dev/migrate.ts';
import { freePort, startEmbeddedCluster, type EmbeddedCluster } from '../../dev/postgres.ts';
import { startStack, type Stack } from '../../dev/stack.ts';
import { loadConfig } from '../../shared/config.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import { duplicateEmails, envCount, pool, sleep, usersWithoutProfile, within } from './helpers.ts';

const WORKERS = envCount('CHAOS_RESTART_WORKERS', 16);
/** A request still unanswered after this long counts as hung. */
const HANG_MS = 20_000;

let dataDir: string;
let port: number;
let cluster: EmbeddedCluster | undefined;
let stack: Stack | undefined;
const logs: string[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'profile-guard-chaos-restart-'));
  port = await freePort();
  cluster = await startEmbeddedCluster({ dataDir, persistent: true, port, unsafeFast: true });
  await migrateDatabase(cluster.url);
  stack = await startStack({ databaseUrl: cluster.url, port: 0, functions: false, bcryptCost: 4, log: (line) => logs.push(line) });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await cluster?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

interface Outcome {
  email: string;
  key: string;
  body: { email: string; password: string };
  status: number | 'hung';
  retryAfter: string | null;
  code: string | null;
  userId: string | null;
  startedAt: number;
}

function registerHandler() {
  const config = loadConfig({
    SUPABASE_URL: stack!.apiUrl,
    SUPABASE_ANON_KEY: stack!.keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: stack!.keys.serviceRoleKey,
    REGISTER_MODE: 'signup',
    REGISTER_RATE_LIMIT_MAX: '100000',
    PROFILE_RETRY_MAX_ATTEMPTS: '4',
    PROFILE_RETRY_BASE_DELAY_MS: '20',
    PROFILE_RETRY_MAX_DELAY_MS: '200',
    PROFILE_RETRY_DEADLINE_MS: '3000',
    LOG_LEVEL: 'silent',
  });
  return createRegisterHandler({ config });
}

async function send(handler: (r: Request) => Promise<Response>, body: { email: string; password: string }, key: string): Promise<Omit<Outcome, 'email' | 'key' | 'body' | 'startedAt'>> {
  const request = new Request('http://functions.local/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.7', 'idempotency-key': key },
    body: JSON.stringify(body),
  });
  try {
    const response = await within(HANG_MS, 'register', handler(request));
    const json = (await response.json()) as { user?: { id: string }; error?: { code: string } };
    return { status: response.status, retryAfter: response.headers.get('retry-after'), code: json.error?.code ?? null, userId: json.user?.id ?? null };
  } catch (error) {
    if ((error as Error).name === 'Hung') return { status: 'hung', retryAfter: null, code: null, userId: null };
    throw error;
  }
}

describe('a database restart in the middle of a registration load', () => {
  it('answers every registration with 201, 202 or 503 and Retry-After, and one reconcile afterwards leaves every user with one profile and every email with one user', async () => {
    const handler = registerHandler();
    const run = randomUUID().slice(0, 8);
    const outcomes: Outcome[] = [];
    let stopLoad = false;
    let n = 0;

    const load = Promise.all(Array.from({ length: WORKERS }, async () => {
      while (!stopLoad) {
        const i = n++;
        const body = { email: `restart-${run}-${i}@example.test`, password: `pw-${run}-${i}` };
        const key = randomUUID();
        const startedAt = Date.now();
        outcomes.push({ email: body.email, key, body, startedAt, ...(await send(handler, body, key)) });
      }
    }));

    let restartedAt = 0;
    let recoveredAt = 0;
    try {
      // Restart once the load is flowing: some registrations have completed.
      await within(30_000, 'the load getting going', (async () => {
        while (outcomes.filter((o) => o.status === 201).length < 2 * WORKERS) await sleep(50);
      })());
      await within(30_000, 'stopping PostgreSQL', cluster!.stop());
      cluster = undefined;
      restartedAt = Date.now();
      await sleep(1000); // down for a while: connections are refused
      cluster = await within(60_000, 'starting PostgreSQL', startEmbeddedCluster({ dataDir, persistent: true, port, unsafeFast: true }));
      recoveredAt = Date.now();
      await sleep(2500);
    } finally {
      stopLoad = true;
      await within(HANG_MS + 5_000, 'the load', load);
    }

    // Every request ended, in an answer the client can act on.
    const byStatus = outcomes.reduce<Record<string, number>>((acc, o) => ({ ...acc, [String(o.status)]: (acc[String(o.status)] ?? 0) + 1 }), {});
    expect(outcomes.filter((o) => o.status === 'hung')).toEqual([]);
    expect(outcomes.filter((o) => o.status !== 201 && o.status !== 202 && o.status !== 503).map((o) => ({ status: o.status, code: o.code }))).toEqual([]);
    // The restart did hit the load, and the load did recover from it.
    expect(byStatus['503'] ?? 0).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.status === 201 && o.startedAt > recoveredAt).length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.status === 201 && o.startedAt < restartedAt).length).toBeGreaterThan(0);
    for (const o of outcomes.filter((x) => x.status === 503)) {
      expect({ code: o.code, retryAfter: Number(o.retryAfter) > 0 }).toEqual({ code: 'service_unavailable', retryAfter: true });
    }

    const admin = new pg.Client({ connectionString: cluster!.url });
    await admin.connect();
    try {
      // Every 201 and 202 names a user that exists; every 201 one with its profile.
      const { rows: users } = await admin.query<{ id: string; email: string; has_profile: boolean }>(
        `select u.id, u.email, exists (select 1 from public.user_profiles p where p.user_id = u.id) as has_profile
         from auth.users u where u.email like $1`, [`restart-${run}-%`]);
      const byId = new Map(users.map((u) => [u.id, u]));
      for (const o of outcomes.filter((x) => x.status === 201 || x.status === 202)) {
        expect(byId.get(o.userId!)?.email).toBe(o.email);
        if (o.status === 201) expect(byId.get(o.userId!)?.has_profile).toBe(true);
      }

      // The client retries what got 503, with the same Idempotency-Key, once the database is back.
      const failed = outcomes.filter((o) => o.status === 503);
      const retried = await pool(failed.length, WORKERS, async (i) => ({ o: failed[i]!, again: await send(handler, failed[i]!.body, failed[i]!.key) }));
      for (const { again } of retried) {
        expect({ status: again.status, code: again.code }).toSatisfy(
          (a: { status: unknown; code: unknown }) => a.status === 201 || a.status === 202 || (a.status === 409 && (a.code === 'email_taken' || a.code === 'idempotency_in_progress')),
        );
      }

      // One reconcile, past the grace period, finishes what the outage left undone.
      await admin.query(`update private.settings set grace_period = interval '0'`);
      const summary = (await admin.query<{ s: Record<string, any> }>('select public.reconcile_profiles(10000) as s')).rows[0]!.s;
      expect(summary).toMatchObject({ ran: true, queue: { failed: 0 }, sweep: { failed: 0 } });
      expect(await usersWithoutProfile(admin)).toEqual([]);
      expect(await duplicateEmails(admin)).toEqual([]);
      const { rows: open } = await admin.query('select user_id from private.repair_queue where resolved_at is null');
      expect(open).toEqual([]);
      console.log(`restart load: ${outcomes.length} registrations ${JSON.stringify(byStatus)}; retries ${JSON.stringify(retried.reduce<Record<string, number>>((acc, r) => ({ ...acc, [`${r.again.status} ${r.again.code ?? ''}`]: (acc[`${r.again.status} ${r.again.code ?? ''}`] ?? 0) + 1 }), {}))}; reconcile ${JSON.stringify(summary)}`);
    } finally {
      await admin.end();
    }
  }, 120_000);
});
