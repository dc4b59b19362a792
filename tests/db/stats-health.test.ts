import type { PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

type Json = Record<string, unknown>;

/**
 * Every transactional test starts from an empty audit trail and repair queue (rolled back with
 * the rest), so the figures it expects can be computed by hand whatever ran before it.
 */
async function clearHistory(c: PoolClient): Promise<void> {
  await c.query('delete from private.audit_logs');
  await c.query('delete from private.repair_queue');
}

async function statsOf(c: PoolClient, window: string): Promise<Json> {
  const { rows } = await c.query<{ stats: Json }>(
    'select public.profile_system_stats($1::interval) as stats',
    [
      window,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('profile_system_stats returned no row');
  return row.stats;
}

async function healthOf(c: PoolClient): Promise<Json> {
  const { rows } = await c.query<{ health: Json }>(
    'select public.profile_system_health() as health',
  );
  const row = rows[0];
  if (!row) throw new Error('profile_system_health returned no row');
  return row.health;
}

/** How PostgreSQL renders `now() - <ago>` inside jsonb (the transaction's now(), so exact). */
async function jsonTimeAgo(c: PoolClient, ago: string): Promise<string> {
  const { rows } = await c.query<{ at: string }>(
    `select to_jsonb(now() - $1::interval) #>> '{}' as at`,
    [ago],
  );
  const row = rows[0];
  if (!row) throw new Error('no row');
  return row.at;
}

/** Inserts `count` audit rows of one kind, i = 1..count seconds apart, ending `ago` before now(). */
async function seedAudit(
  c: PoolClient,
  rows: {
    count: number;
    ago: string;
    source: string;
    outcome: 'created' | 'existed' | 'failed' | 'skipped';
    /** Duration of the i-th row is firstDuration + i - 1; null for no duration. */
    firstDuration: number | null;
    sqlstate?: string | null;
    message?: string | null;
  },
): Promise<void> {
  await c.query(
    `insert into private.audit_logs (occurred_at, operation, source, outcome, sqlstate, message, duration_ms)
     select now() - $2::interval - (i - 1) * interval '1 second', 'ensure_profile', $3, $4, $5, $6,
            case when $7::numeric is null then null else $7::numeric + i - 1 end
     from generate_series(1, $1::int) as i`,
    [
      rows.count,
      rows.ago,
      rows.source,
      rows.outcome,
      rows.sqlstate ?? null,
      rows.message ?? null,
      rows.firstDuration,
    ],
  );
}

/** One failed audit row with an explicit time, SQLSTATE, message and duration. */
async function seedFailure(
  c: PoolClient,
  failure: {
    ago: string;
    source: string;
    sqlstate: string | null;
    message: string;
    duration: number | null;
  },
): Promise<void> {
  await c.query(
    `insert into private.audit_logs (occurred_at, operation, source, outcome, sqlstate, message, duration_ms)
     values (now() - $1::interval, 'ensure_profile', $2, 'failed', $3, $4, $5)`,
    [failure.ago, failure.source, failure.sqlstate, failure.message, failure.duration],
  );
}

async function seedQueueEntry(
  c: PoolClient,
  entry: { firstFailedAgo: string; attempts: number; resolved?: boolean },
): Promise<void> {
  await c.query(
    `insert into private.repair_queue
       (user_id, source, reason, sqlstate, attempts, first_failed_at, last_failed_at, next_attempt_at,
        resolved_at, resolution)
     values (gen_random_uuid(), 'trigger', 'seeded failure', '23505', $2,
             now() - $1::interval, now() - $1::interval, now(),
             case when $3 then now() end, case when $3 then 'backfill' end)`,
    [entry.firstFailedAgo, entry.attempts, entry.resolved ?? false],
  );
}

async function expectSqlState(promise: Promise<unknown>, sqlstate: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code: sqlstate });
}

/** Every check passing; the missing-profile count was taken in the caller's transaction. */
/** When the census's scan last finished a pass (JSON text, as health reports it), or null. */
async function lastFullScan(c: PoolClient): Promise<string | null> {
  const { rows } = await c.query<{ at: string | null }>(
    `select to_jsonb(last_pass_completed_at) #>> '{}' as at from private.profile_census`,
  );
  return rows[0]?.at ?? null;
}

/** Every check passing; `queued`: the open repair-queue entries the test made. */
async function cleanChecks(c: PoolClient, queued = 0): Promise<Json> {
  return {
    trigger_installed: { ok: true, value: true },
    trigger_enabled: { ok: true, value: true },
    missing_profiles: {
      ok: true,
      value: 0,
      threshold: 0,
      queued,
      counted_at: await jsonTimeAgo(c, '0'),
      last_full_scan_at: await lastFullScan(c),
    },
    success_rate: { ok: true, value: null, threshold: 0.99, attempts: 0, window_seconds: 900 },
    repair_queue_age: { ok: true, value: null, threshold: 900, open: 0 },
  };
}

describe('profile_system_stats', () => {
  it('reports counts, sources, success rate, failures and latency of the window only', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);

      // Failures in the last hour: 23505 and 57014 three times each (a tie broken by SQLSTATE),
      // 42501 and a missing SQLSTATE once each. Durations 1..8.
      await seedFailure(c, {
        ago: '50 minutes',
        source: 'register',
        sqlstate: '23505',
        message: 'duplicate A',
        duration: 1,
      });
      await seedFailure(c, {
        ago: '10 minutes',
        source: 'register',
        sqlstate: '23505',
        message: 'duplicate B',
        duration: 2,
      });
      await seedFailure(c, {
        ago: '30 minutes',
        source: 'register',
        sqlstate: '23505',
        message: 'duplicate C',
        duration: 3,
      });
      await seedFailure(c, {
        ago: '40 minutes',
        source: 'trigger',
        sqlstate: '57014',
        message: 'timeout A',
        duration: 4,
      });
      await seedFailure(c, {
        ago: '5 minutes',
        source: 'trigger',
        sqlstate: '57014',
        message: 'timeout B',
        duration: 5,
      });
      await seedFailure(c, {
        ago: '20 minutes',
        source: 'trigger',
        sqlstate: '57014',
        message: 'timeout C',
        duration: 6,
      });
      await seedFailure(c, {
        ago: '15 minutes',
        source: 'ensure',
        sqlstate: null,
        message: 'mystery',
        duration: 7,
      });
      await seedFailure(c, {
        ago: '25 minutes',
        source: 'webhook',
        sqlstate: '42501',
        message: 'denied',
        duration: 8,
      });
      // Successes and skips in the last hour, durations 9..100 (so all durations are exactly 1..100).
      await seedAudit(c, {
        count: 50,
        ago: '1 minute',
        source: 'trigger',
        outcome: 'created',
        firstDuration: 9,
      });
      await seedAudit(c, {
        count: 10,
        ago: '2 minutes',
        source: 'register',
        outcome: 'created',
        firstDuration: 59,
      });
      await seedAudit(c, {
        count: 20,
        ago: '3 minutes',
        source: 'ensure',
        outcome: 'existed',
        firstDuration: 69,
      });
      await seedAudit(c, {
        count: 4,
        ago: '4 minutes',
        source: 'webhook',
        outcome: 'existed',
        firstDuration: 89,
      });
      await seedAudit(c, {
        count: 8,
        ago: '6 minutes',
        source: 'trigger',
        outcome: 'skipped',
        firstDuration: 93,
      });
      // In the window without a duration: counted as attempts, ignored by the latency figures.
      await seedAudit(c, {
        count: 2,
        ago: '7 minutes',
        source: 'backfill',
        outcome: 'created',
        firstDuration: null,
      });
      // Exactly on the window's lower bound: inside.
      await seedAudit(c, {
        count: 1,
        ago: '1 hour',
        source: 'reconcile',
        outcome: 'existed',
        firstDuration: null,
      });

      // Outside the window: just past the bound, and two days old. None of it may count.
      await seedFailure(c, {
        ago: '1 hour 1 second',
        source: 'reconcile',
        sqlstate: '23505',
        message: 'too old',
        duration: 5000,
      });
      await seedFailure(c, {
        ago: '2 days',
        source: 'register',
        sqlstate: 'XX000',
        message: 'ancient',
        duration: 9000,
      });
      await seedAudit(c, {
        count: 30,
        ago: '2 days',
        source: 'trigger',
        outcome: 'created',
        firstDuration: 1000,
      });
      await seedAudit(c, {
        count: 5,
        ago: '2 days',
        source: 'webhook',
        outcome: 'skipped',
        firstDuration: 2000,
      });

      const stats = await statsOf(c, '1 hour');
      expect(stats).toEqual({
        window: {
          from: await jsonTimeAgo(c, '1 hour'),
          to: await jsonTimeAgo(c, '0'),
          seconds: 3600,
        },
        attempts: {
          total: 103,
          by_outcome: { created: 62, existed: 25, failed: 8, skipped: 8 },
          by_source: {
            trigger: { created: 50, failed: 3, skipped: 8 },
            register: { created: 10, failed: 3 },
            ensure: { existed: 20, failed: 1 },
            webhook: { existed: 4, failed: 1 },
            backfill: { created: 2 },
            reconcile: { existed: 1 },
          },
        },
        // (62 + 25) / (62 + 25 + 8) = 87 / 95 = 0.91578...
        success_rate: 0.9158,
        failures_by_sqlstate: [
          {
            sqlstate: '23505',
            count: 3,
            example: 'duplicate B',
            last_at: await jsonTimeAgo(c, '10 minutes'),
          },
          {
            sqlstate: '57014',
            count: 3,
            example: 'timeout B',
            last_at: await jsonTimeAgo(c, '5 minutes'),
          },
          {
            sqlstate: '42501',
            count: 1,
            example: 'denied',
            last_at: await jsonTimeAgo(c, '25 minutes'),
          },
          {
            sqlstate: 'unknown',
            count: 1,
            example: 'mystery',
            last_at: await jsonTimeAgo(c, '15 minutes'),
          },
        ],
        // percentile_cont over 1..100: p50 = 50.5, p95 = 95 + 0.05, p99 = 99 + 0.01.
        latency_ms: { p50: 50.5, p95: 95.05, p99: 99.01, max: 100 },
        missing_profiles: 0,
        repair_queue: {
          open: 0,
          oldest_failed_at: null,
          oldest_age_seconds: null,
          max_attempts: 0,
        },
      });
    });
  });

  it('counts the older rows once the window is wide enough to include them', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await seedAudit(c, {
        count: 3,
        ago: '10 minutes',
        source: 'trigger',
        outcome: 'created',
        firstDuration: 1,
      });
      await seedFailure(c, {
        ago: '2 days',
        source: 'trigger',
        sqlstate: '23505',
        message: 'old duplicate',
        duration: 4,
      });

      const hour = await statsOf(c, '1 hour');
      expect(hour.attempts).toEqual({
        total: 3,
        by_outcome: { created: 3, existed: 0, failed: 0, skipped: 0 },
        by_source: { trigger: { created: 3 } },
      });
      expect(hour.success_rate).toBe(1);
      expect(hour.failures_by_sqlstate).toEqual([]);
      expect(hour.latency_ms).toEqual({ p50: 2, p95: 2.9, p99: 2.98, max: 3 });

      const week = await statsOf(c, '7 days');
      expect(week.attempts).toEqual({
        total: 4,
        by_outcome: { created: 3, existed: 0, failed: 1, skipped: 0 },
        by_source: { trigger: { created: 3, failed: 1 } },
      });
      expect(week.success_rate).toBe(0.75);
      expect(week.failures_by_sqlstate).toEqual([
        {
          sqlstate: '23505',
          count: 1,
          example: 'old duplicate',
          last_at: await jsonTimeAgo(c, '2 days'),
        },
      ]);
      expect(week.latency_ms).toEqual({ p50: 2.5, p95: 3.85, p99: 3.97, max: 4 });
    });
  });

  it('reports zeros for every outcome, an empty breakdown and a null success rate for an empty window', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await seedAudit(c, {
        count: 5,
        ago: '2 days',
        source: 'trigger',
        outcome: 'created',
        firstDuration: 1,
      });

      const stats = await statsOf(c, '15 minutes');
      expect(stats).toEqual({
        window: {
          from: await jsonTimeAgo(c, '15 minutes'),
          to: await jsonTimeAgo(c, '0'),
          seconds: 900,
        },
        attempts: {
          total: 0,
          by_outcome: { created: 0, existed: 0, failed: 0, skipped: 0 },
          by_source: {},
        },
        success_rate: null,
        failures_by_sqlstate: [],
        latency_ms: { p50: null, p95: null, p99: null, max: null },
        missing_profiles: 0,
        repair_queue: {
          open: 0,
          oldest_failed_at: null,
          oldest_age_seconds: null,
          max_attempts: 0,
        },
      });
    });
  });

  it('leaves the success rate null when the window holds only skipped attempts', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await seedAudit(c, {
        count: 4,
        ago: '1 minute',
        source: 'trigger',
        outcome: 'skipped',
        firstDuration: 10,
      });

      const stats = await statsOf(c, '1 hour');
      expect(stats.attempts).toEqual({
        total: 4,
        by_outcome: { created: 0, existed: 0, failed: 0, skipped: 4 },
        by_source: { trigger: { skipped: 4 } },
      });
      expect(stats.success_rate).toBeNull();
      expect(stats.latency_ms).toEqual({ p50: 11.5, p95: 12.85, p99: 12.97, max: 13 });
    });
  });

  it('rounds the success rate to four decimal places', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      // 2 / 3 = 0.66666...
      await seedAudit(c, {
        count: 1,
        ago: '1 minute',
        source: 'register',
        outcome: 'created',
        firstDuration: null,
      });
      await seedAudit(c, {
        count: 1,
        ago: '1 minute',
        source: 'ensure',
        outcome: 'existed',
        firstDuration: null,
      });
      await seedFailure(c, {
        ago: '1 minute',
        source: 'ensure',
        sqlstate: '23503',
        message: 'fk',
        duration: null,
      });

      const stats = await statsOf(c, '1 hour');
      expect(stats.success_rate).toBe(0.6667);
      expect(stats.latency_ms).toEqual({ p50: null, p95: null, p99: null, max: null });
    });
  });

  it('lists at most 20 SQLSTATEs: the most frequent first, ties broken by SQLSTATE', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      // 22 SQLSTATEs seen once each (inserted in reverse order) and one seen twice.
      for (let n = 22; n >= 1; n -= 1) {
        const sqlstate = `S${String(n).padStart(4, '0')}`;
        await seedFailure(c, {
          ago: '1 minute',
          source: 'trigger',
          sqlstate,
          message: `failure ${sqlstate}`,
          duration: n,
        });
      }
      await seedFailure(c, {
        ago: '2 minutes',
        source: 'trigger',
        sqlstate: 'ZZZZZ',
        message: 'older',
        duration: 1,
      });
      await seedFailure(c, {
        ago: '1 minute',
        source: 'trigger',
        sqlstate: 'ZZZZZ',
        message: 'newer',
        duration: 1,
      });

      const stats = await statsOf(c, '1 hour');
      const at = await jsonTimeAgo(c, '1 minute');
      const expected = [
        { sqlstate: 'ZZZZZ', count: 2, example: 'newer', last_at: at },
        ...Array.from({ length: 19 }, (_, index) => {
          const sqlstate = `S${String(index + 1).padStart(4, '0')}`;
          return { sqlstate, count: 1, example: `failure ${sqlstate}`, last_at: at };
        }),
      ];
      expect(stats.failures_by_sqlstate).toEqual(expected);
    });
  });

  it('summarises the open repair-queue entries and ignores resolved ones', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await seedQueueEntry(c, { firstFailedAgo: '20 minutes', attempts: 2 });
      await seedQueueEntry(c, { firstFailedAgo: '90 seconds', attempts: 5 });
      await seedQueueEntry(c, { firstFailedAgo: '3 minutes 0.25 seconds', attempts: 1 });
      // Resolved: older and retried more, yet it must not show.
      await seedQueueEntry(c, { firstFailedAgo: '3 days', attempts: 9, resolved: true });

      const stats = await statsOf(c, '1 hour');
      expect(stats.repair_queue).toEqual({
        open: 3,
        oldest_failed_at: await jsonTimeAgo(c, '20 minutes'),
        oldest_age_seconds: 1200,
        max_attempts: 5,
      });

      await c.query(
        `update private.repair_queue set first_failed_at = now() - interval '1 hour 0.5 seconds' where attempts = 1`,
      );
      expect((await statsOf(c, '1 hour')).repair_queue).toEqual({
        open: 3,
        oldest_failed_at: await jsonTimeAgo(c, '1 hour 0.5 seconds'),
        oldest_age_seconds: 3600.5,
        max_attempts: 5,
      });
    });
  });

  it('rejects a null, zero, negative or longer-than-366-days window with SQLSTATE 22023', async () => {
    await expectSqlState(db().query('select public.profile_system_stats(null)'), '22023');
    await expectSqlState(db().query(`select public.profile_system_stats(interval '0')`), '22023');
    await expectSqlState(
      db().query(`select public.profile_system_stats(interval '-1 hour')`),
      '22023',
    );
    await expectSqlState(
      db().query(`select public.profile_system_stats(interval '1 hour' - interval '2 hours')`),
      '22023',
    );
    await expectSqlState(
      db().query(`select public.profile_system_stats(interval '367 days')`),
      '22023',
    );
    const { rows } = await db().query<{ seconds: string }>(
      `select public.profile_system_stats(interval '1 second') #>> '{window,seconds}' as seconds`,
    );
    expect(rows).toEqual([{ seconds: '1.000' }]);
  });

  it('uses a 24-hour window by default', async () => {
    const { rows } = await db().query<{ seconds: string }>(
      `select public.profile_system_stats() #>> '{window,seconds}' as seconds`,
    );
    expect(rows).toEqual([{ seconds: '86400.000' }]);
  });
});

async function missingOf(c: PoolClient): Promise<Json> {
  return (await healthOf(c)).checks as Json & { missing_profiles: Json };
}

/** `count` users signed up through Auth's write path while the trigger is switched off. */
async function usersWithTriggerOff(count: number): Promise<string[]> {
  return withTriggerOff(db(), async () => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(await signUpAsSupabaseAuth(db()));
    return ids;
  });
}

/** Auth users the trigger never saw (loaded with triggers off, as a restore or an import does). */
async function unseenUsers(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await signUpAsSupabaseAuth(db()));
  await db().query('delete from public.user_profiles where user_id = any($1)', [ids]);
  await db().query('delete from private.missing_profiles where user_id = any($1)', [ids]);
  return ids;
}

async function removeUsers(ids: string[]): Promise<void> {
  await db().query('delete from private.audit_logs where user_id = any($1)', [ids]);
  await db().query('delete from private.repair_queue where user_id = any($1)', [ids]);
  await db().query('delete from auth.users where id = any($1)', [ids]);
  await db().query('delete from private.missing_profiles where user_id = any($1)', [ids]);
}

describe('missing profiles', () => {
  it('counts a user the moment its signup commits with the trigger switched off, in stats and health, with no grace period', async () => {
    const [first, second] = await usersWithTriggerOff(2);
    try {
      expect(
        (await db().query(
          'select user_id, found_by from private.missing_profiles where user_id = any($1) order by user_id',
          [[first, second]],
        )).rows,
      )
        .toEqual(
          [first!, second!].sort().map((user_id) => ({ user_id, found_by: 'trigger_disabled' })),
        );
      await db().withTransaction(async (c) => {
        await clearHistory(c);
        expect((await statsOf(c, '1 hour')).missing_profiles).toBe(2);
        expect(await healthOf(c)).toEqual({
          status: 'down',
          checked_at: await jsonTimeAgo(c, '0'),
          checks: {
            ...(await cleanChecks(c)),
            missing_profiles: {
              ok: false,
              value: 2,
              threshold: 0,
              queued: 0,
              counted_at: await jsonTimeAgo(c, '0'),
              last_full_scan_at: await lastFullScan(c),
            },
          },
        });

        // A profile made by any path takes the user out of the count on the next call.
        await c.query(`select private.ensure_profile($1, 'ensure')`, [first]);
        expect((await missingOf(c)).missing_profiles).toMatchObject({ ok: false, value: 1 });
        await c.query(`select private.ensure_profile($1, 'ensure')`, [second]);
        await c.query('delete from private.audit_logs');
        expect(await healthOf(c)).toEqual({
          status: 'ok',
          checked_at: await jsonTimeAgo(c, '0'),
          checks: await cleanChecks(c),
        });
      });
    } finally {
      await removeUsers([first!, second!]);
    }
  });

  it('judges the count against alert_max_missing_profiles at once: at the threshold ok, one above it down', async () => {
    const ids = await usersWithTriggerOff(2);
    try {
      await db().withTransaction(async (c) => {
        await clearHistory(c);
        await c.query('update private.settings set alert_max_missing_profiles = 5');
        expect((await healthOf(c)).status).toBe('ok');
        expect((await missingOf(c)).missing_profiles).toMatchObject({
          ok: true,
          value: 2,
          threshold: 5,
        });
        await c.query('update private.settings set alert_max_missing_profiles = 2');
        expect((await healthOf(c)).status).toBe('ok');
        await c.query('update private.settings set alert_max_missing_profiles = 1');
        expect((await healthOf(c)).status).toBe('down');
      });
    } finally {
      await removeUsers(ids);
    }
  });

  it('reports a user whose repair waits in the queue as queued, not missing', async () => {
    const [userId] = await usersWithTriggerOff(1);
    try {
      await db().withTransaction(async (c) => {
        await clearHistory(c);
        await c.query(
          `select private.record_profile_failure($1, 'reconcile', 'XX000', 'boom', clock_timestamp())`,
          [userId],
        );
        expect((await missingOf(c)).missing_profiles).toMatchObject({
          ok: true,
          value: 0,
          queued: 1,
        });
        expect((await statsOf(c, '1 hour')).missing_profiles).toBe(0);
      });
    } finally {
      await removeUsers([userId!]);
    }
  });

  it('counts a user whose profile is deleted while the user remains, and nothing for a user deleted with its profile', async () => {
    const kept = await signUpAsSupabaseAuth(db());
    const gone = await signUpAsSupabaseAuth(db());
    try {
      await db().query('delete from public.user_profiles where user_id = $1', [kept]);
      await db().query('delete from auth.users where id = $1', [gone]);
      expect(
        (await db().query(
          'select user_id, found_by from private.missing_profiles where user_id = any($1)',
          [[kept, gone]],
        )).rows,
      )
        .toEqual([{ user_id: kept, found_by: 'profile_deleted' }]);
      await db().withTransaction(async (c) => {
        await clearHistory(c);
        expect((await missingOf(c)).missing_profiles).toMatchObject({ ok: false, value: 1 });
      });
    } finally {
      await removeUsers([kept, gone]);
    }
  });

  it('counts live in a read-only transaction (a GET through PostgREST)', async () => {
    const ids = await usersWithTriggerOff(1);
    try {
      await db().withClient(async (client) => {
        await client.query('begin read only');
        try {
          expect((await statsOf(client, '1 hour')).missing_profiles).toBe(1);
          expect((await missingOf(client)).missing_profiles).toMatchObject({ value: 1 });
        } finally {
          await client.query('rollback');
        }
      });
    } finally {
      await removeUsers(ids);
    }
  });
});

async function step(c: PoolClient, batch: number, restart = false): Promise<Json> {
  return (await c.query<{ r: Json }>('select public.profile_census_step($1, $2) as r', [
    batch,
    restart,
  ])).rows[0]!.r;
}

describe('the census scan (the safety net for users the trigger never saw)', () => {
  it('checks a slice of auth.users per step in primary-key order, adds the users without a profile, and records the pass at the end', async () => {
    await db().query('delete from auth.users');
    await db().query('delete from private.missing_profiles');
    await db().query(
      'update private.profile_census set scan_cursor = null, pass_scanned = 0, pass_found = 0, last_pass_completed_at = null',
    );
    const withProfiles = [await signUpAsSupabaseAuth(db()), await signUpAsSupabaseAuth(db())];
    const unseen = await unseenUsers(3);
    const all = [...withProfiles, ...unseen].sort();
    try {
      await db().withTransaction(async (c) => {
        await clearHistory(c);
        expect((await missingOf(c)).missing_profiles).toMatchObject({
          value: 0,
          last_full_scan_at: null,
        });

        expect(await step(c, 2)).toEqual({
          ran: true,
          pruned: 0,
          scanned: 2,
          found: all.slice(0, 2).filter((id) => unseen.includes(id)).length,
          pass_completed: false,
          duration_ms: expect.any(Number),
        });
        expect((await c.query('select scan_cursor from private.profile_census')).rows).toEqual([{
          scan_cursor: all[1],
        }]);
        expect(await step(c, 2)).toMatchObject({ scanned: 2, pass_completed: false });
        expect(await step(c, 2)).toMatchObject({ scanned: 1, pass_completed: true });

        const census = (await c.query(
          `select scan_cursor, pass_scanned::int, last_pass_scanned::int, last_pass_found::int,
                                              last_pass_completed_at = now() as just_now from private.profile_census`,
        )).rows;
        expect(census).toEqual([{
          scan_cursor: null,
          pass_scanned: 0,
          last_pass_scanned: 5,
          last_pass_found: 3,
          just_now: true,
        }]);
        expect(
          (await c.query(
            `select user_id from private.missing_profiles where found_by = 'scan' order by user_id`,
          )).rows,
        )
          .toEqual([...unseen].sort().map((user_id) => ({ user_id })));
        expect((await missingOf(c)).missing_profiles).toMatchObject({
          ok: false,
          value: 3,
          last_full_scan_at: await jsonTimeAgo(c, '0'),
        });

        // The next step starts a new pass from the beginning; the users found are not found twice.
        expect(await step(c, 10)).toMatchObject({ scanned: 5, found: 0, pass_completed: true });
      });
    } finally {
      await removeUsers(all);
    }
  });

  it('prunes the members that have a profile or are gone, and restarts a pass on request', async () => {
    const unseen = await unseenUsers(3);
    try {
      await db().query(
        `insert into private.missing_profiles (user_id, found_by) select unnest($1::uuid[]), 'scan'`,
        [unseen],
      );
      await db().query(`select private.ensure_profile($1, 'ensure')`, [unseen[0]]);
      await db().query('delete from auth.users where id = $1', [unseen[1]]);
      await db().withTransaction(async (c) => {
        await c.query(
          `update private.profile_census set scan_cursor = 'ffffffff-ffff-ffff-ffff-ffffffffffff'`,
        );
        expect(await step(c, 100_000, true)).toMatchObject({
          pruned: 2,
          found: 0,
          pass_completed: true,
        });
        expect(
          (await c.query('select user_id from private.missing_profiles where user_id = any($1)', [
            unseen,
          ])).rows,
        )
          .toEqual([{ user_id: unseen[2] }]);
      });
    } finally {
      await removeUsers(unseen);
    }
  });

  it('lets one step run at a time: a concurrent caller is told, without waiting', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked = () => {};
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const stepping = db().withTransaction(async (c) => {
      await c.query(`select pg_advisory_xact_lock(hashtext('public.profile_census_step')::bigint)`);
      locked();
      await held;
    });
    try {
      await isLocked;
      await db().withTransaction(async (c) => {
        expect(await step(c, 10)).toEqual({ ran: false, reason: 'another census step is running' });
      });
    } finally {
      release();
      await stepping;
    }
  });

  it('refuses a batch outside 1-1000000 with SQLSTATE 22023', async () => {
    for (const batch of [0, -1, 1_000_001]) {
      await expect(db().query('select public.profile_census_step($1)', [batch])).rejects
        .toMatchObject({ code: '22023' });
    }
  });
});

describe('profile_system_health', () => {
  it('is ok with every check passing on a clean state', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      expect(await healthOf(c)).toEqual({
        status: 'ok',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: await cleanChecks(c),
      });
    });
  });

  it('is degraded when the trigger is switched off in settings', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await c.query('update private.settings set trigger_enabled = false');
      expect(await healthOf(c)).toEqual({
        status: 'degraded',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: { ...(await cleanChecks(c)), trigger_enabled: { ok: false, value: false } },
      });
    });
  });

  it('is degraded when the success rate in the health window is below the threshold', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      // In the 15-minute health window: 98 created, 2 failed = 0.98 < 0.99.
      await seedAudit(c, {
        count: 98,
        ago: '5 minutes',
        source: 'trigger',
        outcome: 'created',
        firstDuration: 1,
      });
      await seedFailure(c, {
        ago: '1 minute',
        source: 'trigger',
        sqlstate: '23505',
        message: 'dup',
        duration: 1,
      });
      await seedFailure(c, {
        ago: '14 minutes',
        source: 'trigger',
        sqlstate: '23505',
        message: 'dup',
        duration: 1,
      });
      // Skips are not attempts; failures outside the window do not count.
      await seedAudit(c, {
        count: 50,
        ago: '2 minutes',
        source: 'trigger',
        outcome: 'skipped',
        firstDuration: 1,
      });
      await seedAudit(c, {
        count: 30,
        ago: '20 minutes',
        source: 'trigger',
        outcome: 'failed',
        firstDuration: 1,
        sqlstate: '57014',
      });

      expect(await healthOf(c)).toEqual({
        status: 'degraded',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: {
          trigger_installed: { ok: true, value: true },
          trigger_enabled: { ok: true, value: true },
          missing_profiles: {
            ok: true,
            value: 0,
            threshold: 0,
            queued: 0,
            counted_at: await jsonTimeAgo(c, '0'),
            last_full_scan_at: await lastFullScan(c),
          },
          success_rate: {
            ok: false,
            value: 0.98,
            threshold: 0.99,
            attempts: 100,
            window_seconds: 900,
          },
          repair_queue_age: { ok: true, value: null, threshold: 900, open: 0 },
        },
      });

      // A lower threshold read from settings makes the same history acceptable.
      await c.query('update private.settings set alert_min_success_rate = 0.98');
      const relaxed = await healthOf(c);
      expect(relaxed.status).toBe('ok');
      expect((relaxed.checks as Json).success_rate).toEqual({
        ok: true,
        value: 0.98,
        threshold: 0.98,
        attempts: 100,
        window_seconds: 900,
      });

      // A wider health window takes in the 30 older failures: 98 / 130 = 0.7538...
      await c.query(`update private.settings set health_window = interval '1 hour'`);
      const wider = await healthOf(c);
      expect(wider.status).toBe('degraded');
      expect((wider.checks as Json).success_rate).toEqual({
        ok: false,
        value: 0.7538,
        threshold: 0.98,
        attempts: 130,
        window_seconds: 3600,
      });
    });
  });

  it('is ok when the success rate equals the threshold', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await seedAudit(c, {
        count: 90,
        ago: '5 minutes',
        source: 'trigger',
        outcome: 'created',
        firstDuration: 1,
      });
      await seedAudit(c, {
        count: 9,
        ago: '6 minutes',
        source: 'ensure',
        outcome: 'existed',
        firstDuration: 1,
      });
      await seedFailure(c, {
        ago: '1 minute',
        source: 'trigger',
        sqlstate: '23505',
        message: 'dup',
        duration: 1,
      });

      const health = await healthOf(c);
      expect(health.status).toBe('ok');
      expect((health.checks as Json).success_rate).toEqual({
        ok: true,
        value: 0.99,
        threshold: 0.99,
        attempts: 100,
        window_seconds: 900,
      });
    });
  });

  it('is degraded when the oldest open repair-queue entry is older than allowed', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await seedQueueEntry(c, { firstFailedAgo: '16 minutes', attempts: 3 });
      await seedQueueEntry(c, { firstFailedAgo: '1 minute', attempts: 1 });

      expect(await healthOf(c)).toEqual({
        status: 'degraded',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: {
          ...(await cleanChecks(c, 2)),
          repair_queue_age: { ok: false, value: 960, threshold: 900, open: 2 },
        },
      });

      // The threshold is read from settings at each call.
      await c.query(`update private.settings set alert_max_queue_age = interval '1 hour'`);
      expect(await healthOf(c)).toEqual({
        status: 'ok',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: {
          ...(await cleanChecks(c, 2)),
          repair_queue_age: { ok: true, value: 960, threshold: 3600, open: 2 },
        },
      });
    });
  });

  it('is ok when the open repair-queue entries are younger than the limit and old ones are resolved', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await seedQueueEntry(c, { firstFailedAgo: '14 minutes', attempts: 2 });
      await seedQueueEntry(c, { firstFailedAgo: '2 days', attempts: 7, resolved: true });

      expect(await healthOf(c)).toEqual({
        status: 'ok',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: {
          ...(await cleanChecks(c, 1)),
          repair_queue_age: { ok: true, value: 840, threshold: 900, open: 1 },
        },
      });
    });
  });

  it('is down when the trigger is disabled at the table level', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await c.query('alter table auth.users disable trigger users_ensure_profile');
      expect(await healthOf(c)).toEqual({
        status: 'down',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: { ...(await cleanChecks(c)), trigger_installed: { ok: false, value: false } },
      });
    });
  });

  it('is down when the trigger is dropped, even if a degraded condition also holds', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await c.query('drop trigger users_ensure_profile on auth.users');
      await c.query('update private.settings set trigger_enabled = false');
      expect(await healthOf(c)).toEqual({
        status: 'down',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: {
          ...(await cleanChecks(c)),
          trigger_installed: { ok: false, value: false },
          trigger_enabled: { ok: false, value: false },
        },
      });
    });
  });

  it('judges against the default thresholds when the settings row is missing', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      await c.query('delete from private.settings');
      expect(await healthOf(c)).toEqual({
        status: 'ok',
        checked_at: await jsonTimeAgo(c, '0'),
        checks: await cleanChecks(c),
      });

      await seedQueueEntry(c, { firstFailedAgo: '16 minutes', attempts: 1 });
      expect((await healthOf(c)).status).toBe('degraded');
    });
  });
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}

describe('cost of the window queries', () => {
  it('reads the window through the occurred_at index, not by scanning a large history', async () => {
    await db().withTransaction(async (c) => {
      await clearHistory(c);
      // 200,000 rows two days old and older, and a handful inside the window.
      await c.query(
        `insert into private.audit_logs (occurred_at, operation, source, outcome, duration_ms)
         select now() - interval '2 days' - i * interval '1 second', 'ensure_profile', 'trigger', 'created', 1
         from generate_series(1, 200000) as i`,
      );
      await seedAudit(c, {
        count: 10,
        ago: '1 minute',
        source: 'trigger',
        outcome: 'created',
        firstDuration: 1,
      });
      await c.query('analyze private.audit_logs');

      const windowQueries = [
        `select a.source, a.outcome from private.audit_logs a where a.occurred_at >= now() - interval '15 minutes'`,
        `select percentile_cont(0.5) within group (order by a.duration_ms), max(a.duration_ms)
           from private.audit_logs a
          where a.occurred_at >= now() - interval '15 minutes' and a.duration_ms is not null`,
      ];
      for (const query of windowQueries) {
        const { rows } = await c.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `explain (format json) ${query}`,
        );
        const plan = rows[0]?.['QUERY PLAN'][0].Plan;
        if (!plan) throw new Error('no plan');
        const nodes = planNodes(plan);
        const indexScans = nodes
          .filter((node) => node['Index Name'] !== undefined)
          .map((node) => ({ type: node['Node Type'], index: node['Index Name'] }));
        expect(indexScans).toHaveLength(1);
        expect(indexScans[0]?.index).toBe('audit_logs_occurred_at_idx');
        expect(['Index Scan', 'Index Only Scan', 'Bitmap Index Scan']).toContain(
          indexScans[0]?.type,
        );
        expect(nodes.map((node) => node['Node Type'])).not.toContain('Seq Scan');
      }

      // And the stats see only the window's ten rows.
      const stats = await statsOf(c, '15 minutes');
      expect(stats.attempts).toEqual({
        total: 10,
        by_outcome: { created: 10, existed: 0, failed: 0, skipped: 0 },
        by_source: { trigger: { created: 10 } },
      });
    });
  });
});
