import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { bulkSignUpAsSupabaseAuth, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return (await db().one<{ n: number }>(`select count(*)::int as n from ${sql}`, params)).n;
}

const reconcile = async (batch = 200, scan: boolean | null = true) =>
  (await db().one(`select public.reconcile_profiles($1, $2) as r`, [batch, scan])).r;

/** Users signed up while the trigger is switched off (so known to be without a profile), optionally queued for repair and due. */
async function missingUsers(n: number, options: { queued?: boolean } = {}): Promise<string[]> {
  const ids = await withTriggerOff(
    db(),
    () => bulkSignUpAsSupabaseAuth(db(), n, { emailPrefix: `m-${randomUUID().slice(0, 6)}-` }),
  );
  if (options.queued) {
    await db().query(
      `insert into private.repair_queue (user_id, source, reason, attempts, next_attempt_at)
       select id, 'trigger', 'seeded', 2, now() - interval '1 second' from unnest($1::uuid[]) id`,
      [ids],
    );
  }
  return ids;
}

/** Open repair-queue entries that failed with `sqlstate`, waiting: due `dueIn[i]` from now. */
async function waitingEntries(ids: string[], sqlstate: string, dueIn: string[]): Promise<void> {
  await db().query(
    `insert into private.repair_queue (user_id, source, reason, sqlstate, attempts, next_attempt_at)
     select id, 'trigger', 'seeded', $2, 3, now() + due::interval from unnest($1::uuid[], $3::text[]) as e(id, due)`,
    [ids, sqlstate, dueIn],
  );
}

async function resetOperations() {
  await db().query(
    `delete from private.repair_queue; delete from private.alert_state; delete from private.alert_deliveries; delete from private.audit_logs;
                    delete from private.reconcile_runs;`,
  );
  await db().query(
    `update private.settings set trigger_enabled = true, alert_max_missing_profiles = 0`,
  );
  // Whatever earlier tests left without a profile is repaired, and a census pass prunes the set,
  // so each test starts clean.
  await db().query(`select public.backfill_missing_profiles(10000, null, false)`);
  await db().query(`select public.profile_census_step(null, true)`);
}

const authUsers = () => count('auth.users');
const noQueueWork = {
  due: 0,
  repaired: 0,
  failed: 0,
  user_deleted: 0,
  probed: 0,
  recovered: 0,
  made_due: 0,
};
const noSweep = { missing: 0, created: 0, failed: 0 };

describe('reconcile_profiles', () => {
  it('repairs due queue entries and the users known to be without a profile, records the run, and resolves the queue', async () => {
    await resetOperations();
    const queued = await missingUsers(4, { queued: true });
    const swept = await missingUsers(3);
    // Queued with its backoff still running: not missing (something is repairing it), and not tried.
    const [waiting] = await missingUsers(1);
    await waitingEntries([waiting!], '23514', ['1 hour']);
    // Counted the moment their signups committed, no grace period: the swept users are missing, the rest queued.
    expect(
      await count('private.missing_profiles where user_id = any($1) and found_by = $2', [[
        ...queued,
        ...swept,
        waiting,
      ], 'trigger_disabled']),
    ).toBe(8);
    expect((await db().one('select public.profile_system_health() as h')).h.checks.missing_profiles)
      .toMatchObject({ ok: false, value: 3, queued: 5 });
    const result = await reconcile();
    expect(result).toEqual({
      ran: true,
      census: {
        ran: true,
        pruned: 0,
        scanned: await authUsers(),
        found: 0,
        pass_completed: true,
        duration_ms: expect.any(Number),
      },
      queue: { ...noQueueWork, due: 4, repaired: 4 },
      sweep: { missing: 3, created: 3, failed: 0 },
      more: false,
      missing_profiles: 0,
      queued: 1,
      duration_ms: expect.any(Number),
    });
    expect(await count(`public.user_profiles where user_id = any($1)`, [[...queued, ...swept]]))
      .toBe(7);
    expect(await count(`public.user_profiles where user_id = $1`, [waiting])).toBe(0);
    expect(
      await count(`private.repair_queue where user_id = any($1) and resolution = 'reconcile'`, [
        queued,
      ]),
    ).toBe(4);
    expect(await count(`private.audit_logs where source = 'reconcile' and outcome = 'created'`))
      .toBe(7);
    expect(
      (await db().one(`select summary from private.reconcile_runs order by id desc limit 1`))
        .summary,
    ).toEqual(result);
  });

  it('waits for an entry whose backoff has not passed, and leaves the sweep to skip queued users', async () => {
    await resetOperations();
    const [later] = await missingUsers(1);
    await db().query(
      `insert into private.repair_queue (user_id, source, reason, next_attempt_at)
                      values ($1, 'trigger', 'seeded', now() + interval '1 hour')`,
      [later],
    );
    expect(await reconcile()).toMatchObject({
      queue: noQueueWork,
      sweep: noSweep,
      more: false,
      missing_profiles: 0,
      queued: 1,
    });
    expect(await count(`public.user_profiles where user_id = $1`, [later])).toBe(0);
  });

  it('pushes a user that still fails further back and counts its attempts', async () => {
    await resetOperations();
    const [stuck] = await missingUsers(1, { queued: true });
    await db().query(
      `alter table public.user_profiles add constraint hostile_reconcile check (user_id <> '${stuck}') not valid`,
    );
    try {
      expect(await reconcile()).toMatchObject({
        queue: { ...noQueueWork, due: 1, failed: 1 },
        sweep: noSweep,
        missing_profiles: 0,
        queued: 1,
      });
      const entry = await db().one(
        // Backoff doubles per failure: the third attempt of an entry waits 2^2 seconds.
        `select attempts, resolved_at, sqlstate, next_attempt_at - last_failed_at = interval '4 seconds' as backed_off
           from private.repair_queue where user_id = $1`,
        [stuck],
      );
      expect(entry).toEqual({
        attempts: 3,
        resolved_at: null,
        sqlstate: '23514',
        backed_off: true,
      });
      expect(await reconcile()).toMatchObject({ queue: noQueueWork, sweep: noSweep });
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_reconcile');
    }
  });

  it('opens a queue entry for a swept user that fails, so the next run retries it through the queue instead of the sweep', async () => {
    await resetOperations();
    const [stuck] = await missingUsers(1);
    await db().query(
      `alter table public.user_profiles add constraint hostile_sweep check (user_id <> '${stuck}') not valid`,
    );
    try {
      expect(await reconcile()).toMatchObject({
        queue: noQueueWork,
        sweep: { missing: 1, created: 0, failed: 1 },
        more: false,
        missing_profiles: 0,
        queued: 1,
      });
      expect(
        await db().one(
          `select attempts, sqlstate, resolved_at from private.repair_queue where user_id = $1`,
          [stuck],
        ),
      )
        .toEqual({ attempts: 1, sqlstate: '23514', resolved_at: null });
      expect(await reconcile()).toMatchObject({
        queue: { ...noQueueWork, due: 1, failed: 1 },
        sweep: noSweep,
        missing_profiles: 0,
        queued: 1,
      });
      expect(
        await db().one(`select attempts from private.repair_queue where user_id = $1`, [stuck]),
      ).toEqual({ attempts: 2 });
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_sweep');
    }
  });

  it('resolves the entry of a user that was deleted meanwhile', async () => {
    await resetOperations();
    const gone = randomUUID();
    await db().query(
      `insert into private.repair_queue (user_id, source, reason) values ($1, 'trigger', 'seeded')`,
      [gone],
    );
    expect(await reconcile()).toMatchObject({
      queue: { ...noQueueWork, due: 1, user_deleted: 1 },
      queued: 0,
    });
    expect(
      (await db().one('select resolution from private.repair_queue where user_id = $1', [gone]))
        .resolution,
    ).toBe('user_deleted');
  });

  it('says more is due when a batch was full, and the next calls repair the rest', async () => {
    await resetOperations();
    const ids = await missingUsers(5);
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await reconcile(2, false));
    expect(runs.map((r) => [r.sweep.missing, r.sweep.created, r.more, r.missing_profiles])).toEqual(
      [
        [2, 2, true, 3],
        [2, 2, true, 1],
        [1, 1, false, 0],
      ],
    );
    expect(await count(`public.user_profiles where user_id = any($1)`, [ids])).toBe(5);
  });

  it('creates the profile of a user whose profile was deleted while the user remained', async () => {
    await resetOperations();
    const kept = await signUpAsSupabaseAuth(db());
    await db().query('delete from public.user_profiles where user_id = $1', [kept]);
    expect(
      await db().one('select found_by from private.missing_profiles where user_id = $1', [kept]),
    ).toEqual({ found_by: 'profile_deleted' });
    expect(await reconcile(200, false)).toMatchObject({
      census: null,
      sweep: { missing: 1, created: 1, failed: 0 },
      missing_profiles: 0,
    });
    expect(await count(`public.user_profiles where user_id = $1`, [kept])).toBe(1);
  });

  it('finds a user the trigger never saw only with the census step, then creates its profile', async () => {
    await resetOperations();
    const unseen = await signUpAsSupabaseAuth(db());
    await db().query('delete from public.user_profiles where user_id = $1', [unseen]);
    await db().query('delete from private.missing_profiles where user_id = $1', [unseen]);
    // Without the scan the reconciler knows nothing of it.
    expect(await reconcile(200, false)).toMatchObject({
      census: null,
      sweep: noSweep,
      missing_profiles: 0,
    });
    expect(await reconcile(200, true)).toMatchObject({
      census: { ran: true, pruned: 0, scanned: await authUsers(), found: 1, pass_completed: true },
      sweep: { missing: 1, created: 1, failed: 0 },
      missing_profiles: 0,
    });
    expect(await count(`public.user_profiles where user_id = $1`, [unseen])).toBe(1);
    expect(await count(`private.missing_profiles where user_id = $1`, [unseen])).toBe(1);
    // The next census step prunes it: the user has a profile now.
    expect(await reconcile(200, true)).toMatchObject({
      census: { pruned: 1, found: 0 },
      sweep: noSweep,
    });
    expect(await count(`private.missing_profiles where user_id = $1`, [unseen])).toBe(0);
  });

  it('probes one waiting entry per shared SQLSTATE early and, when it succeeds, makes the others due at once', async () => {
    await resetOperations();
    const ids = await missingUsers(3);
    await waitingEntries(ids, '40P01', ['10 minutes', '20 minutes', '30 minutes']);
    const [lone] = await missingUsers(1);
    // A user failing alone keeps its backoff.
    await waitingEntries([lone!], '23514', ['10 minutes']);
    expect(await reconcile(200, false)).toMatchObject({
      queue: {
        due: 2,
        repaired: 3,
        failed: 0,
        user_deleted: 0,
        probed: 1,
        recovered: 1,
        made_due: 0,
      },
      sweep: noSweep,
      more: false,
      missing_profiles: 0,
      queued: 1,
    });
    expect(await count(`public.user_profiles where user_id = any($1)`, [ids])).toBe(3);
    expect(await count(`public.user_profiles where user_id = $1`, [lone])).toBe(0);
    // The probe was the entry due soonest, tried as its fourth attempt.
    expect(
      await db().one(
        `select user_id, attempt from private.audit_logs where source = 'reconcile' and outcome = 'created' order by id limit 1`,
      ),
    )
      .toEqual({ user_id: ids[0], attempt: 4 });
  });

  it('keeps the others waiting when the probe fails, and pushes the probed entry back', async () => {
    await resetOperations();
    const ids = await missingUsers(2);
    await waitingEntries(ids, '23514', ['10 minutes', '20 minutes']);
    await db().query(
      `alter table public.user_profiles add constraint hostile_probe check (user_id <> all(array['${
        ids[0]
      }', '${ids[1]}']::uuid[])) not valid`,
    );
    try {
      expect(await reconcile(200, false)).toMatchObject({
        queue: {
          due: 0,
          repaired: 0,
          failed: 1,
          user_deleted: 0,
          probed: 1,
          recovered: 0,
          made_due: 0,
        },
        more: false,
        queued: 2,
      });
      const entries = await db().query(
        `select user_id, attempts, next_attempt_at > now() + interval '15 minutes' as later from private.repair_queue where user_id = any($1) order by user_id`,
        [ids],
      );
      expect(entries.rows).toEqual(
        [{ user_id: ids[0], attempts: 4, later: false }, {
          user_id: ids[1],
          attempts: 3,
          later: true,
        }].sort((a, b) => a.user_id!.localeCompare(b.user_id!)),
      );
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_probe');
    }
  });

  it("makes the waiting entries of a repaired due entry's SQLSTATE due, and says more is due", async () => {
    await resetOperations();
    const [due, waiting] = await missingUsers(2);
    await db().query(
      `insert into private.repair_queue (user_id, source, reason, sqlstate, attempts, next_attempt_at)
       values ($1, 'trigger', 'seeded', '55P03', 2, now() - interval '1 second'), ($2, 'trigger', 'seeded', '55P03', 5, now() + interval '30 minutes')`,
      [due, waiting],
    );
    expect(await reconcile(200, false)).toMatchObject({
      queue: { ...noQueueWork, due: 1, repaired: 1, made_due: 1 },
      more: true,
      queued: 1,
    });
    expect(await reconcile(200, false)).toMatchObject({
      queue: { ...noQueueWork, due: 1, repaired: 1 },
      more: false,
      queued: 0,
    });
    expect(await count(`public.user_profiles where user_id = any($1)`, [[due, waiting]])).toBe(2);
  });

  it('lets one run at a time work: a second call while the lock is held says so and does nothing', async () => {
    await resetOperations();
    await missingUsers(2, { queued: true });
    await db().withTransaction(async (holder) => {
      await holder.query(
        `select pg_advisory_xact_lock(hashtext('public.reconcile_profiles')::bigint)`,
      );
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
    expect(
      repaired +
        (await count(`private.audit_logs where source = 'reconcile' and outcome = 'existed'`)),
    ).toBeGreaterThanOrEqual(60);
    expect(await count(`public.user_profiles where user_id = any($1)`, [ids])).toBe(60);
    expect(
      await count(
        `private.audit_logs where source = 'reconcile' and outcome = 'created' and user_id = any($1)`,
        [ids],
      ),
    ).toBe(60);
  });

  it('rejects a batch size out of range or a null p_scan with 22023', async () => {
    await expect(reconcile(0)).rejects.toMatchObject({ code: '22023' });
    await expect(reconcile(10001)).rejects.toMatchObject({ code: '22023' });
    await expect(reconcile(10, null)).rejects.toMatchObject({ code: '22023' });
  });
});

describe('evaluate_alerts', () => {
  const evaluate = async () => (await db().one('select public.evaluate_alerts() as r')).r;
  const deliveries = async () =>
    (await db().query(
      'select alert, state, payload ->> $1 as message from private.alert_deliveries order by id',
      ['message'],
    )).rows;

  it('fires once when a condition starts and clears once when it ends, however often it is checked', async () => {
    await resetOperations();
    expect((await evaluate()).transitions).toEqual([]);
    await db().query('update private.settings set trigger_enabled = false');
    expect((await evaluate()).transitions).toEqual([{ name: 'trigger_enabled', state: 'firing' }]);
    expect((await evaluate()).transitions).toEqual([]);
    expect((await evaluate()).transitions).toEqual([]);
    await db().query('update private.settings set trigger_enabled = true');
    expect((await evaluate()).transitions).toEqual([{
      name: 'trigger_enabled',
      state: 'resolved',
    }]);
    expect((await evaluate()).transitions).toEqual([]);
    expect(await deliveries()).toEqual([
      {
        alert: 'trigger_enabled',
        state: 'firing',
        message: 'trigger_enabled started: value false, threshold none',
      },
      {
        alert: 'trigger_enabled',
        state: 'resolved',
        message: 'trigger_enabled cleared: value true, threshold none',
      },
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
      'missing_profiles',
      'repair_queue_age',
      'success_rate',
      'trigger_enabled',
      'trigger_installed',
    ]);
    const again = await evaluate();
    expect(again.alerts.find((a: { name: string }) => a.name === 'missing_profiles').since).toBe(
      missing.since,
    );
    await db().query(`select public.backfill_missing_profiles(10000, null, false)`);
    expect((await evaluate()).transitions).toEqual([{
      name: 'missing_profiles',
      state: 'resolved',
    }]);
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
  const claim = async (limit = 20, lease = 30) =>
    (await db().one('select public.alert_deliveries_claim($1, $2) as r', [limit, lease])).r;

  it('leases a delivery to one deliverer, retries a failure later, and stops after the attempt cap', async () => {
    await resetOperations();
    await db().query('update private.settings set trigger_enabled = false');
    await db().query('select public.evaluate_alerts()');
    await db().query('update private.settings set trigger_enabled = true');
    const [first] = await claim();
    expect(first).toMatchObject({ alert: 'trigger_enabled', state: 'firing', attempt: 1 });
    expect(await claim()).toEqual([]); // leased
    await db().query('select public.alert_delivery_result($1, false, $2)', [
      first.id,
      'receiver answered 500',
    ]);
    expect(
      await db().one(
        'select last_error, next_attempt_at > now() as later from private.alert_deliveries where id = $1',
        [first.id],
      ),
    ).toEqual({
      last_error: 'receiver answered 500',
      later: true,
    });
    expect(await claim()).toEqual([]); // backing off
    await db().query(
      'update private.alert_deliveries set next_attempt_at = now() - interval $$1 second$$ where id = $1',
      [first.id],
    );
    const [second] = await claim();
    expect(second.attempt).toBe(2);
    await db().query('select public.alert_delivery_result($1, true)', [second.id]);
    expect(
      await db().one(
        'select delivered_at is not null as delivered, last_error from private.alert_deliveries where id = $1',
        [first.id],
      ),
    ).toEqual({
      delivered: true,
      last_error: null,
    });

    await db().query(
      'update private.alert_deliveries set delivered_at = null, attempts = 8, next_attempt_at = now() - interval $$1 second$$ where id = $1',
      [first.id],
    );
    expect(await claim()).toEqual([]);
  });
});

describe('profile_operations_stats', () => {
  it('buckets attempts over time, and shows alerts, the outbox and the last reconcile', async () => {
    await resetOperations();
    const stats = await db().withTransaction(async (c) => {
      await c.query('delete from private.audit_logs');
      await c.query(
        `insert into private.audit_logs (occurred_at, user_id, operation, source, outcome, sqlstate)
                     values (date_bin('5 minutes', now(), '2000-01-01') - interval '10 minutes' + interval '1 minute', null, 'ensure_profile', 'trigger', 'created', null),
                            (date_bin('5 minutes', now(), '2000-01-01') - interval '10 minutes' + interval '2 minutes', null, 'ensure_profile', 'trigger', 'failed', '23514'),
                            (date_bin('5 minutes', now(), '2000-01-01') - interval '5 minutes' + interval '1 minute', null, 'ensure_profile', 'register', 'existed', null),
                            (now() - interval '3 hours', null, 'ensure_profile', 'trigger', 'created', null)`,
      );
      await c.query('update private.settings set trigger_enabled = false');
      await c.query('select public.evaluate_alerts()');
      await c.query('select public.reconcile_profiles()');
      return (await c.query(`select public.profile_operations_stats('1 hour') as r`)).rows[0].r;
    });
    expect(stats.bucket_seconds).toBe(60);
    expect(
      stats.series.map((
        b: Record<string, unknown>,
      ) => [b.created, b.existed, b.failed, b.success_rate]),
    ).toEqual([
      [1, 0, 0, 1],
      [0, 0, 1, 0],
      [0, 1, 0, 1],
    ]);
    expect(stats.alerts.find((a: { name: string }) => a.name === 'trigger_enabled')).toMatchObject({
      firing: true,
      value: false,
    });
    // The seeded failure also drops the success rate below 0.99: two alerts fire, two deliveries wait.
    expect(
      stats.alerts.filter((a: { firing: boolean }) => a.firing).map((a: { name: string }) =>
        a.name
      ),
    ).toEqual(['success_rate', 'trigger_enabled']);
    expect(stats.alert_deliveries).toEqual({
      pending: 2,
      undeliverable: 0,
      last_error: null,
      last_delivered_at: null,
    });
    expect(stats.reconciler.last_run).toMatchObject({ ran: true });
  });

  it('widens buckets with the window so there are at most 60', async () => {
    const widths = [];
    for (const window of ['1 hour', '6 hours', '24 hours', '7 days', '30 days']) {
      widths.push(
        (await db().one(
          `select (public.profile_operations_stats($1::interval) ->> 'bucket_seconds')::int as w`,
          [window],
        )).w,
      );
    }
    expect(widths).toEqual([60, 900, 1800, 10800, 86400]);
  });
});
