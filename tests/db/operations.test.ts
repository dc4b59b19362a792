import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { bulkSignUpAsSupabaseAuth, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return (await db().one<{ n: number }>(`select count(*)::int as n from ${sql}`, params)).n;
}

const reconcile = async (batch = 200, window = '1 day') =>
  (await db().one(`select public.reconcile_profiles($1, $2::interval) as r`, [batch, window])).r;

/** Users without profiles, aged past the grace period, optionally queued for repair and due. */
async function missingUsers(n: number, options: { queued?: boolean; ago?: string } = {}): Promise<string[]> {
  const ids = await withTriggerOff(db(), () => bulkSignUpAsSupabaseAuth(db(), n, { createdAgo: options.ago ?? '10 minutes', emailPrefix: `m-${randomUUID().slice(0, 6)}-` }));
  if (options.queued) {
    await db().query(
      `insert into private.repair_queue (user_id, source, reason, attempts, next_attempt_at)
       select id, 'trigger', 'seeded', 2, now() - interval '1 second' from unnest($1::uuid[]) id`,
      [ids],
    );
  }
  return ids;
}

async function resetOperations() {
  await db().query(`delete from private.repair_queue; delete from private.alert_state; delete from private.alert_deliveries; delete from private.audit_logs;
                    delete from private.reconcile_runs;`);
  // Alert tests change the missing users between evaluations: count on every call.
  await db().query(`update private.settings set trigger_enabled = true, alert_max_missing_profiles = 0, missing_count_max_age = interval '0'`);
  // Whatever earlier tests left without a profile is repaired so each test starts clean.
  await db().query(`select public.backfill_missing_profiles(10000, null, false)`);
}

describe('reconcile_profiles', () => {
  it('repairs due queue entries and swept users, records the run, and resolves the queue', async () => {
    await resetOperations();
    const queued = await missingUsers(4, { queued: true });
    const swept = await missingUsers(3);
    const young = await withTriggerOff(db(), () => signUpAsSupabaseAuth(db())); // inside the grace period
    const result = await reconcile();
    expect(result).toEqual({
      ran: true,
      queue: { due: 4, repaired: 4, failed: 0, user_deleted: 0 },
      sweep: { missing: 3, created: 3, failed: 0 },
      // The young user is still inside the grace period, so nothing counts as missing.
      missing_profiles: 0,
      duration_ms: expect.any(Number),
    });
    expect(await count(`public.user_profiles where user_id = any($1)`, [[...queued, ...swept]])).toBe(7);
    expect(await count(`public.user_profiles where user_id = $1`, [young])).toBe(0);
    expect(await count(`private.repair_queue where user_id = any($1) and resolution = 'reconcile'`, [queued])).toBe(4);
    expect(await count(`private.audit_logs where source = 'reconcile' and outcome = 'created'`)).toBe(7);
    expect((await db().one(`select summary from private.reconcile_runs order by id desc limit 1`)).summary).toEqual(result);
  });

  it('waits for an entry whose backoff has not passed, and leaves the sweep to skip queued users', async () => {
    await resetOperations();
    const [later] = await missingUsers(1);
    await db().query(`insert into private.repair_queue (user_id, source, reason, next_attempt_at)
                      values ($1, 'trigger', 'seeded', now() + interval '1 hour')`, [later]);
    expect(await reconcile()).toMatchObject({ queue: { due: 0 }, sweep: { missing: 0 } });
    expect(await count(`public.user_profiles where user_id = $1`, [later])).toBe(0);
  });

  it('pushes a user that still fails further back and counts its attempts', async () => {
    await resetOperations();
    const [stuck] = await missingUsers(1, { queued: true });
    await db().query(`alter table public.user_profiles add constraint hostile_reconcile check (user_id <> '${stuck}') not valid`);
    try {
      expect(await reconcile()).toMatchObject({ queue: { due: 1, repaired: 0, failed: 1 } });
      const entry = await db().one(
        // Backoff doubles per failure: the third attempt of an entry waits 2^2 seconds.
        `select attempts, resolved_at, sqlstate, next_attempt_at - last_failed_at = interval '4 seconds' as backed_off
           from private.repair_queue where user_id = $1`,
        [stuck],
      );
      expect(entry).toEqual({ attempts: 3, resolved_at: null, sqlstate: '23514', backed_off: true });
      expect(await reconcile()).toMatchObject({ queue: { due: 0 } });
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_reconcile');
    }
  });

  it('resolves the entry of a user that was deleted meanwhile', async () => {
    await resetOperations();
    const gone = randomUUID();
    await db().query(`insert into private.repair_queue (user_id, source, reason) values ($1, 'trigger', 'seeded')`, [gone]);
    expect(await reconcile()).toMatchObject({ queue: { due: 1, user_deleted: 1 } });
    expect((await db().one('select resolution from private.repair_queue where user_id = $1', [gone])).resolution).toBe('user_deleted');
  });

  it('lets one run at a time work: a second call while the lock is held says so and does nothing', async () => {
    await resetOperations();
    await missingUsers(2, { queued: true });
    await db().withTransaction(async (holder) => {
      await holder.query(`select pg_advisory_xact_lock(hashtext('public.reconcile_profiles')::bigint)`);
      expect(await reconcile()).toEqual({ ran: false, reason: 'another reconcile is running' });
    });
    expect(await reconcile()).toMatchObject({ ran: true, queue: { repaired: 2 } });
  });

  it('repairs every user once when several runs race', async () => {
    await resetOperations();
    const ids = [...(await missingUsers(30, { queued: true })), ...(await missingUsers(30))];
    const runs = await Promise.all(Array.from({ length: 4 }, () => reconcile(1000)));
    const ran = runs.filter((r) => r.ran);
    expect(ran.length).toBeGreaterThanOrEqual(1);
    const repaired = ran.reduce((n, r) => n + r.queue.repaired + r.sweep.created, 0);
    expect(repaired + (await count(`private.audit_logs where source = 'reconcile' and outcome = 'existed'`))).toBeGreaterThanOrEqual(60);
    expect(await count(`public.user_profiles where user_id = any($1)`, [ids])).toBe(60);
    expect(await count(`private.audit_logs where source = 'reconcile' and outcome = 'created' and user_id = any($1)`, [ids])).toBe(60);
  });

  it('rejects a batch size or window out of range with 22023', async () => {
    await expect(reconcile(0)).rejects.toMatchObject({ code: '22023' });
    await expect(reconcile(10, '-1 day')).rejects.toMatchObject({ code: '22023' });
  });
});

describe('evaluate_alerts', () => {
  const evaluate = async () => (await db().one('select public.evaluate_alerts() as r')).r;
  const deliveries = async () =>
    (await db().query('select alert, state, payload ->> $1 as message from private.alert_deliveries order by id', ['message'])).rows;

  it('fires once when a condition starts and clears once when it ends, however often it is checked', async () => {
    await resetOperations();
    expect((await evaluate()).transitions).toEqual([]);
    await db().query('update private.settings set trigger_enabled = false');
    expect((await evaluate()).transitions).toEqual([{ name: 'trigger_enabled', state: 'firing' }]);
    expect((await evaluate()).transitions).toEqual([]);
    expect((await evaluate()).transitions).toEqual([]);
    await db().query('update private.settings set trigger_enabled = true');
    expect((await evaluate()).transitions).toEqual([{ name: 'trigger_enabled', state: 'resolved' }]);
    expect((await evaluate()).transitions).toEqual([]);
    expect(await deliveries()).toEqual([
      { alert: 'trigger_enabled', state: 'firing', message: 'trigger_enabled started: value false, threshold none' },
      { alert: 'trigger_enabled', state: 'resolved', message: 'trigger_enabled cleared: value true, threshold none' },
    ]);
  });

  it('reports every alert with its state, and keeps since while a condition holds', async () => {
    await resetOperations();
    await missingUsers(2);
    const first = await evaluate();
    expect(first.status).toBe('down');
    const missing = first.alerts.find((a: { name: string }) => a.name === 'missing_profiles');
    expect(missing).toMatchObject({ firing: true, value: 2, threshold: 0 });
    expect(first.alerts.map((a: { name: string }) => a.name)).toEqual([
      'missing_profiles', 'repair_queue_age', 'success_rate', 'trigger_enabled', 'trigger_installed',
    ]);
    const again = await evaluate();
    expect(again.alerts.find((a: { name: string }) => a.name === 'missing_profiles').since).toBe(missing.since);
    await db().query(`select public.backfill_missing_profiles(10000, null, false)`);
    expect((await evaluate()).transitions).toEqual([{ name: 'missing_profiles', state: 'resolved' }]);
  });

  it('records a transition exactly once when evaluations race', async () => {
    await resetOperations();
    await db().query('update private.settings set trigger_enabled = false');
    try {
      await Promise.all(Array.from({ length: 8 }, () => evaluate()));
      expect(await count(`private.alert_deliveries where alert = 'trigger_enabled'`)).toBe(1);
    } finally {
      await db().query('update private.settings set trigger_enabled = true');
    }
  });
});

describe('alert deliveries', () => {
  const claim = async (limit = 20, lease = 30) => (await db().one('select public.alert_deliveries_claim($1, $2) as r', [limit, lease])).r;

  it('leases a delivery to one deliverer, retries a failure later, and stops after the attempt cap', async () => {
    await resetOperations();
    await db().query('update private.settings set trigger_enabled = false');
    await db().query('select public.evaluate_alerts()');
    await db().query('update private.settings set trigger_enabled = true');
    const [first] = await claim();
    expect(first).toMatchObject({ alert: 'trigger_enabled', state: 'firing', attempt: 1 });
    expect(await claim()).toEqual([]); // leased
    await db().query('select public.alert_delivery_result($1, false, $2)', [first.id, 'receiver answered 500']);
    expect(await db().one('select last_error, next_attempt_at > now() as later from private.alert_deliveries where id = $1', [first.id])).toEqual({
      last_error: 'receiver answered 500',
      later: true,
    });
    expect(await claim()).toEqual([]); // backing off
    await db().query('update private.alert_deliveries set next_attempt_at = now() - interval $$1 second$$ where id = $1', [first.id]);
    const [second] = await claim();
    expect(second.attempt).toBe(2);
    await db().query('select public.alert_delivery_result($1, true)', [second.id]);
    expect(await db().one('select delivered_at is not null as delivered, last_error from private.alert_deliveries where id = $1', [first.id])).toEqual({
      delivered: true,
      last_error: null,
    });

    await db().query('update private.alert_deliveries set delivered_at = null, attempts = 8, next_attempt_at = now() - interval $$1 second$$ where id = $1', [first.id]);
    expect(await claim()).toEqual([]);
  });
});

describe('profile_operations_stats', () => {
  it('buckets attempts over time, and shows alerts, the outbox and the last reconcile', async () => {
    await resetOperations();
    const stats = await db().withTransaction(async (c) => {
      await c.query('delete from private.audit_logs');
      await c.query(`insert into private.audit_logs (occurred_at, user_id, operation, source, outcome, sqlstate)
                     values (date_bin('5 minutes', now(), '2000-01-01') - interval '10 minutes' + interval '1 minute', null, 'ensure_profile', 'trigger', 'created', null),
                            (date_bin('5 minutes', now(), '2000-01-01') - interval '10 minutes' + interval '2 minutes', null, 'ensure_profile', 'trigger', 'failed', '23514'),
                            (date_bin('5 minutes', now(), '2000-01-01') - interval '5 minutes' + interval '1 minute', null, 'ensure_profile', 'register', 'existed', null),
                            (now() - interval '3 hours', null, 'ensure_profile', 'trigger', 'created', null)`);
      await c.query('update private.settings set trigger_enabled = false');
      await c.query('select public.evaluate_alerts()');
      await c.query('select public.reconcile_profiles()');
      return (await c.query(`select public.profile_operations_stats('1 hour') as r`)).rows[0].r;
    });
    expect(stats.bucket_seconds).toBe(60);
    expect(stats.series.map((b: Record<string, unknown>) => [b.created, b.existed, b.failed, b.success_rate])).toEqual([
      [1, 0, 0, 1],
      [0, 0, 1, 0],
      [0, 1, 0, 1],
    ]);
    expect(stats.alerts.find((a: { name: string }) => a.name === 'trigger_enabled')).toMatchObject({ firing: true, value: false });
    // The seeded failure also drops the success rate below 0.99: two alerts fire, two deliveries wait.
    expect(stats.alerts.filter((a: { firing: boolean }) => a.firing).map((a: { name: string }) => a.name)).toEqual(['success_rate', 'trigger_enabled']);
    expect(stats.alert_deliveries).toEqual({ pending: 2, undeliverable: 0, last_error: null, last_delivered_at: null });
    expect(stats.reconciler.last_run).toMatchObject({ ran: true });
  });

  it('widens buckets with the window so there are at most 60', async () => {
    const widths = [];
    for (const window of ['1 hour', '6 hours', '24 hours', '7 days', '30 days']) {
      widths.push((await db().one(`select (public.profile_operations_stats($1::interval) ->> 'bucket_seconds')::int as w`, [window])).w);
    }
    expect(widths).toEqual([60, 900, 1800, 10800, 86400]);
  });
});
