// The database restarts (fast shutdown, down for over a second, then start on the same port and
// data directory) in the middle of 2,000 registrations at concurrency 16. register's one deadline
// (PROFILE_RETRY_DEADLINE_MS, shared by the preflight, Auth and the profile stage) outlasts the
// outage, so no registration answers 5xx, none is told "failed" or "taken" for the account it
// created, none outlives the deadline, and after one reconcile every user has exactly one profile.
//   CHAOS_RESTART_WORKERS        concurrent registration loops (default 16)
//   CHAOS_RESTART_REGISTRATIONS  registrations in all (default 2000)
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../dev/migrate.ts';
import { type EmbeddedCluster, freePort, startEmbeddedCluster } from '../../dev/postgres.ts';
import { type Stack, startStack } from '../../dev/stack.ts';
import { loadConfig } from '../../shared/config.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import type { ReconcileBatch } from '../../shared/rpc-results.ts';
import { duplicateEmails, envCount, pool, sleep, usersWithoutProfile, within } from './helpers.ts';

const WORKERS = envCount('CHAOS_RESTART_WORKERS', 16);
const REGISTRATIONS = envCount('CHAOS_RESTART_REGISTRATIONS', 2000);
/** The production default deadline of a request's retries. */
const DEADLINE_MS = 8000;
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
  stack = await startStack({
    databaseUrl: cluster.url,
    port: 0,
    functions: false,
    bcryptCost: 4,
    log: (line) => logs.push(line),
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await cluster?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

interface Outcome {
  email: string;
  status: number | 'hung';
  code: string | null;
  userId: string | null;
  profileStatus: string | null;
  ms: number;
}

function registerHandler() {
  // The production retry defaults: the point is that they cover the outage.
  const config = loadConfig({
    SUPABASE_URL: stack!.apiUrl,
    SUPABASE_ANON_KEY: stack!.keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: stack!.keys.serviceRoleKey,
    REGISTER_MODE: 'signup',
    REGISTER_RATE_LIMIT_MAX: '100000',
    PROFILE_RETRY_DEADLINE_MS: String(DEADLINE_MS),
    LOG_LEVEL: 'silent',
  });
  return createRegisterHandler({ config });
}

async function send(handler: (r: Request) => Promise<Response>, email: string): Promise<Outcome> {
  const request = new Request('http://functions.local/register', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-forwarded-for': '198.51.100.7',
      'idempotency-key': randomUUID(),
    },
    body: JSON.stringify({ email, password: `pw-${randomUUID()}` }),
  });
  const started = performance.now();
  try {
    const response = await within(HANG_MS, 'register', handler(request));
    const json = (await response.json()) as {
      user?: { id: string };
      profile_status?: string;
      error?: { code: string };
    };
    return {
      email,
      status: response.status,
      code: json.error?.code ?? null,
      userId: json.user?.id ?? null,
      profileStatus: json.profile_status ?? null,
      ms: performance.now() - started,
    };
  } catch (error) {
    if ((error as Error).name === 'Hung') {
      return { email, status: 'hung', code: null, userId: null, profileStatus: null, ms: HANG_MS };
    }
    throw error;
  }
}

describe('a database restart in the middle of 2,000 registrations at concurrency 16', () => {
  it(
    'answers every registration 201 or 202 within the deadline, and one reconcile leaves every user with one profile',
    async () => {
      const handler = registerHandler();
      const run = randomUUID().slice(0, 8);
      let done = 0;
      const load = pool(REGISTRATIONS, WORKERS, async (i) => {
        const outcome = await send(handler, `restart-${run}-${i}@example.test`);
        done++;
        return outcome;
      });

      let restartedAt = 0;
      let downMs = 0;
      // Restart once a sixth of the load is done, so that it lands in the middle.
      await within(
        60_000,
        'the load getting going',
        (async () => {
          while (done < REGISTRATIONS / 6) await sleep(20);
        })(),
      );
      const doneBefore = done;
      await within(30_000, 'stopping PostgreSQL', cluster!.stop());
      cluster = undefined;
      restartedAt = Date.now();
      await sleep(1000); // down for a while: connections are refused
      cluster = await within(
        60_000,
        'starting PostgreSQL',
        startEmbeddedCluster({ dataDir, persistent: true, port, unsafeFast: true }),
      );
      downMs = Date.now() - restartedAt;
      const doneAtRecovery = done;
      const outcomes = await within(300_000, 'the load', load);

      const byStatus = outcomes.reduce<Record<string, number>>(
        (acc, o) => ({
          ...acc,
          [`${o.status}${o.code ? ` ${o.code}` : ''}`]:
            (acc[`${o.status}${o.code ? ` ${o.code}` : ''}`] ?? 0) + 1,
        }),
        {},
      );
      const slowest = Math.max(...outcomes.map((o) => o.ms));
      console.log(
        `restart: down ${downMs} ms with ${doneBefore}/${REGISTRATIONS} done (${doneAtRecovery} at recovery); answers ${
          JSON.stringify(byStatus)
        }; slowest ${Math.round(slowest)} ms`,
      );
      // The restart did land in the middle of the load.
      expect(downMs).toBeGreaterThanOrEqual(1000);
      expect(doneBefore).toBeLessThan(REGISTRATIONS);
      // No 5xx, no hang, nobody told "taken" or "failed" for the account it was creating.
      expect(
        outcomes.filter((o) => o.status !== 201 && o.status !== 202).map((o) => ({
          status: o.status,
          code: o.code,
        })),
      ).toEqual([]);
      // Nobody waited past the deadline (plus the profile stage's last single calls).
      expect(slowest).toBeLessThan(DEADLINE_MS + 2000);

      const admin = new pg.Client({ connectionString: cluster!.url });
      await admin.connect();
      try {
        // Every answer names the user made for its email, and a 201 one with its profile.
        const { rows: users } = await admin.query<
          { id: string; email: string; has_profile: boolean }
        >(
          `select u.id, u.email, exists (select 1 from public.user_profiles p where p.user_id = u.id) as has_profile
         from auth.users u where u.email like $1`,
          [`restart-${run}-%`],
        );
        expect(users).toHaveLength(REGISTRATIONS);
        const byId = new Map(users.map((u) => [u.id, u]));
        for (const o of outcomes) {
          expect(byId.get(o.userId!)?.email).toBe(o.email);
          if (o.status === 201) expect(byId.get(o.userId!)?.has_profile).toBe(true);
          // A 202 only for a profile that was truly not there when it answered.
          if (o.status === 202) expect(o.profileStatus).toBe('pending');
        }

        // Reconciling until nothing more is due (what one scheduled tick does) finishes what the outage left undone.
        let summary: ReconcileBatch;
        do {
          summary = (await admin.query<{ s: ReconcileBatch }>(
            'select public.reconcile_profiles(10000) as s',
          )).rows[0]!.s;
          expect(summary).toMatchObject({ ran: true, queue: { failed: 0 }, sweep: { failed: 0 } });
        } while (summary.more);
        expect(await usersWithoutProfile(admin)).toEqual([]);
        expect(await duplicateEmails(admin)).toEqual([]);
        const { rows: profiles } = await admin.query<{ n: number }>(
          `select count(*)::int as n from public.user_profiles p join auth.users u on u.id = p.user_id where u.email like $1`,
          [`restart-${run}-%`],
        );
        expect(profiles[0]!.n).toBe(REGISTRATIONS);
      } finally {
        await admin.end();
      }
    },
    400_000,
  );
});
