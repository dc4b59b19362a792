import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { bulkSignUpAsSupabaseAuth, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';
import { type CliRun, jsonSummary, runCli, waitUntil } from './run-cli.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

const env = () => ({
  SUPABASE_URL: api().stack.apiUrl,
  SUPABASE_SERVICE_ROLE_KEY: api().stack.keys.serviceRoleKey,
});
const reconcile = (args: string[], extra: Record<string, string> = {}) =>
  runCli('reconcile', args, { ...env(), ...extra });

interface ReconcileOutput {
  reconcile:
    | {
      ran: true;
      batches: number;
      queue: {
        due: number;
        repaired: number;
        failed: number;
        user_deleted: number;
        probed: number;
        recovered: number;
        made_due: number;
      };
      sweep: { missing: number; created: number; failed: number };
      more: boolean;
      missing_profiles: number;
      queued: number;
      scanned: number | null;
      duration_ms: number;
    }
    | { ran: false; reason: string };
  alerts: {
    status: string | null;
    transitions: Array<{ name: string; state: string }>;
    delivered: number;
    failed: number;
    undelivered: boolean;
  };
}

/** A webhook receiver on 127.0.0.1 that records every POST body and answers `status`. */
interface Receiver {
  url: string;
  bodies: Array<{ alert: { alert: string; state: string }; text: string }>;
  status: number;
}
let receiver: Receiver;
let server: Server;
beforeAll(async () => {
  const state: Receiver = { url: '', bodies: [], status: 200 };
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk));
    request.on('end', () => {
      if (request.method === 'POST') {
        state.bodies.push(JSON.parse(body) as Receiver['bodies'][number]);
      }
      response.writeHead(state.status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
  receiver = state;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Auth users created while the trigger is off: without profiles, and known to be (private.missing_profiles). */
async function usersWithoutProfiles(count: number, emailPrefix: string): Promise<string[]> {
  await db().query('update private.settings set trigger_enabled = false');
  try {
    return await bulkSignUpAsSupabaseAuth(db(), count, { emailPrefix });
  } finally {
    await db().query('update private.settings set trigger_enabled = true');
  }
}

/** Open repair-queue entries for users, due a minute ago. */
async function queue(userIds: string[], attempts = 1): Promise<void> {
  await db().query(
    `insert into private.repair_queue (user_id, source, reason, sqlstate, attempts, next_attempt_at)
     select id, 'trigger', 'seeded by the test', 'XX000', $2, now() - interval '1 minute' from unnest($1::uuid[]) id`,
    [userIds, attempts],
  );
}

async function profilesOf(userIds: string[]): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from public.user_profiles where user_id = any($1)',
    [userIds],
  )).n;
}

/** Users without a profile that nothing is repairing, as health counts them. */
async function missingNow(): Promise<number> {
  return (await db().one<{ n: number }>(
    `select (public.profile_system_health() #>> '{checks,missing_profiles,value}')::int as n`,
  )).n;
}

const noQueueWork = {
  due: 0,
  repaired: 0,
  failed: 0,
  user_deleted: 0,
  probed: 0,
  recovered: 0,
  made_due: 0,
};

function expectNoKey(run: CliRun): void {
  expect(run.output()).not.toContain(api().stack.keys.serviceRoleKey);
}

const LOCK = `select pg_advisory_xact_lock(hashtext('public.reconcile_profiles')::bigint)`;

describe('npm run reconcile', () => {
  it('refuses an unknown flag or a bad value with the usage and exit 2, before calling anything', async () => {
    const cases: Array<[string[], string]> = [
      [['--bogus'], "Unknown option '--bogus'"],
      [['--batch-size', '0'], '--batch-size must be a whole number from 1 to 10000, got "0"'],
      [
        ['--batch-size', '20000'],
        '--batch-size must be a whole number from 1 to 10000, got "20000"',
      ],
      // The sweep window is gone: the sweep repairs the users known to be without a profile.
      [['--sweep-window', '1d'], "Unknown option '--sweep-window'"],
      [['--max-batches', '0'], '--max-batches must be a whole number from 1 to 1000000, got "0"'],
      [
        ['--max-batches', 'all'],
        '--max-batches must be a whole number from 1 to 1000000, got "all"',
      ],
      [['--full-scan=yes'], "Option '--full-scan' does not take an argument"],
      [['--loop=0'], '--loop must be a number greater than 0, got "0"'],
      [['--json', 'extra'], "Unexpected argument 'extra'"],
    ];
    const runs = cases.map(([args]) => reconcile(args));
    for (const [i, run] of runs.entries()) {
      expect(await run.exit).toBe(2);
      expect(run.stderr()).toContain(cases[i]![1]);
      expect(run.stderr()).toContain('usage: npm run reconcile --');
      expect(run.stdout()).toBe('');
    }
    expect(
      (await db().one<{ n: number }>('select count(*)::int as n from private.reconcile_runs')).n,
    ).toBe(0);
  });

  it('repairs due queue entries and sweeps the users signed up with the trigger off at once, with exact counts', async () => {
    const queued = await usersWithoutProfiles(30, 'queued-');
    await queue(queued);
    // No grace period: the swept users count as missing the moment their signups commit.
    const swept = await usersWithoutProfiles(20, 'swept-');
    expect(await missingNow()).toBe(20);
    const run = reconcile(['--json']);
    expect(await run.exit).toBe(0);
    const out = jsonSummary<ReconcileOutput>(run);
    expect(out.reconcile).toEqual({
      ran: true,
      batches: 1,
      queue: { ...noQueueWork, due: 30, repaired: 30 },
      sweep: { missing: 20, created: 20, failed: 0 },
      more: false,
      missing_profiles: 0,
      queued: 0,
      scanned: null,
      duration_ms: expect.any(Number),
    });
    expect(out.alerts.undelivered).toBe(true);
    expect(run.stderr()).toContain('reconcile ran 1 batch(es) in ');
    expect(run.stderr()).toContain(
      ': repair queue 30 due, 30 repaired, 0 failed, 0 user(s) deleted; sweep 20 missing, 20 created, 0 failed; ' +
        '0 user(s) still without a profile (0 in the repair queue, 0 not)\n',
    );
    expect(run.stderr()).not.toContain('more is due');
    expect(run.stderr()).toContain(
      `no ALERT_WEBHOOK_URL: ${out.alerts.transitions.length} transitions kept in the outbox`,
    );
    expectNoKey(run);
    expect(await profilesOf([...queued, ...swept])).toBe(50);
    const open = await db().one<{ n: number }>(
      `select count(*)::int as n from private.repair_queue where user_id = any($1) and (resolved_at is null or resolution <> 'reconcile')`,
      [queued],
    );
    expect(open.n).toBe(0);

    // Nothing left: a second run finds no work and says so in plain words.
    const again = reconcile([]);
    expect(await again.exit).toBe(0);
    expect(again.stdout()).toContain(
      ': repair queue 0 due, 0 repaired, 0 failed, 0 user(s) deleted; sweep 0 missing, 0 created, 0 failed; ' +
        '0 user(s) still without a profile (0 in the repair queue, 0 not)\n',
    );
  });

  it('repairs batch after batch until nothing is due: --batch-size 2 with 5 missing users runs 3 batches and repairs all 5', async () => {
    const ids = await usersWithoutProfiles(5, 'batched-');
    expect(await missingNow()).toBe(5);
    const run = reconcile(['--json', '--batch-size', '2']);
    expect(await run.exit).toBe(0);
    expect(jsonSummary<ReconcileOutput>(run).reconcile).toEqual({
      ran: true,
      batches: 3,
      queue: noQueueWork,
      sweep: { missing: 5, created: 5, failed: 0 },
      more: false,
      missing_profiles: 0,
      queued: 0,
      scanned: null,
      duration_ms: expect.any(Number),
    });
    expect(run.stderr()).toContain('reconcile ran 3 batch(es) in ');
    expect(run.stderr()).not.toContain('more is due');
    expect(await profilesOf(ids)).toBe(5);
  });

  it('stops after --max-batches even though more is due, says so, and leaves the rest for the next run', async () => {
    const ids = await usersWithoutProfiles(5, 'capped-');
    expect(await missingNow()).toBe(5);
    const run = reconcile(['--json', '--batch-size', '2', '--max-batches', '2']);
    expect(await run.exit).toBe(0);
    expect(jsonSummary<ReconcileOutput>(run).reconcile).toEqual({
      ran: true,
      batches: 2,
      queue: noQueueWork,
      sweep: { missing: 4, created: 4, failed: 0 },
      more: true,
      missing_profiles: 1,
      queued: 0,
      scanned: null,
      duration_ms: expect.any(Number),
    });
    expect(run.stderr()).toContain('reconcile ran 2 batch(es) in ');
    expect(run.stderr()).toContain(
      ': repair queue 0 due, 0 repaired, 0 failed, 0 user(s) deleted; sweep 4 missing, 4 created, 0 failed; ' +
        '1 user(s) still without a profile (0 in the repair queue, 1 not)\n' +
        '  more is due: stopped by --max-batches, or another run took over; run again to finish\n',
    );
    expect(await profilesOf(ids)).toBe(4);

    const rest = reconcile(['--batch-size', '2']);
    expect(await rest.exit).toBe(0);
    expect(rest.stdout()).toContain('reconcile ran 1 batch(es) in ');
    expect(rest.stdout()).toContain(
      '; sweep 1 missing, 1 created, 0 failed; 0 user(s) still without a profile (0 in the repair queue, 0 not)\n',
    );
    expect(rest.stdout()).not.toContain('more is due');
    expect(await profilesOf(ids)).toBe(5);
  });

  it('with --full-scan finds and repairs a user the trigger never saw, which a run resuming the scan past it misses', async () => {
    const unseen = await signUpAsSupabaseAuth(db());
    await db().query('delete from public.user_profiles where user_id = $1', [unseen]);
    await db().query('delete from private.missing_profiles where user_id = $1', [unseen]);
    // The scheduled scan's slices have already passed this user in the current pass.
    await db().query('update private.profile_census set scan_cursor = $1', [unseen]);
    const missed = reconcile(['--json']);
    expect(await missed.exit).toBe(0);
    expect(jsonSummary<ReconcileOutput>(missed).reconcile).toMatchObject({
      ran: true,
      sweep: { missing: 0, created: 0, failed: 0 },
      missing_profiles: 0,
      scanned: null,
    });
    expect(await profilesOf([unseen])).toBe(0);

    const users = (await db().one<{ n: number }>('select count(*)::int as n from auth.users')).n;
    const run = reconcile(['--json', '--full-scan']);
    expect(await run.exit).toBe(0);
    expect(jsonSummary<ReconcileOutput>(run).reconcile).toEqual({
      ran: true,
      batches: 1,
      queue: noQueueWork,
      sweep: { missing: 1, created: 1, failed: 0 },
      more: false,
      missing_profiles: 0,
      queued: 0,
      scanned: users,
      duration_ms: expect.any(Number),
    });
    expect(run.stderr()).toContain(
      `full scan: checked ${users} auth user(s) for a missing profile\n`,
    );
    expect(await profilesOf([unseen])).toBe(1);
    expect(await db().one('select scan_cursor, last_pass_scanned::int from private.profile_census'))
      .toEqual({ scan_cursor: null, last_pass_scanned: users });
  });

  it('exits 1 when a swept user fails, and the failure opens its repair-queue entry', async () => {
    const [hostile] = await usersWithoutProfiles(1, 'hostile-sweep-');
    await db().query(
      `alter table public.user_profiles add constraint user_profiles_hostile_sweep_check check (email not like 'hostile-sweep-%') not valid`,
    );
    try {
      const run = reconcile(['--json']);
      expect(await run.exit).toBe(1);
      expect(jsonSummary<ReconcileOutput>(run).reconcile).toEqual({
        ran: true,
        batches: 1,
        queue: noQueueWork,
        sweep: { missing: 1, created: 0, failed: 1 },
        more: false,
        missing_profiles: 0,
        queued: 1,
        scanned: null,
        duration_ms: expect.any(Number),
      });
      expect(run.stderr()).toContain(
        '; sweep 1 missing, 0 created, 1 failed; 1 user(s) still without a profile (1 in the repair queue, 0 not)\n' +
          '  1 user(s) still failing: their queue entries were pushed back and are retried when due',
      );
      expect(
        await db().one(
          'select source, attempts, sqlstate, resolved_at from private.repair_queue where user_id = $1',
          [hostile],
        ),
      )
        .toEqual({ source: 'reconcile', attempts: 1, sqlstate: '23514', resolved_at: null });
      expect(await profilesOf([hostile!])).toBe(0);
    } finally {
      await db().query(
        'alter table public.user_profiles drop constraint user_profiles_hostile_sweep_check',
      );
      await db().query('delete from private.repair_queue where user_id = $1', [hostile]);
      await db().query('delete from auth.users where id = $1', [hostile]);
    }
  });

  it('exits 1 for a user that still fails, and pushes its queue entry back', async () => {
    const [hostile] = await usersWithoutProfiles(1, 'hostile-');
    await queue([hostile!], 3);
    await db().query(
      `alter table public.user_profiles add constraint user_profiles_hostile_check check (email not like 'hostile-%') not valid`,
    );
    try {
      const started = await db().one<{ now: Date }>('select clock_timestamp() as now');
      const run = reconcile(['--json']);
      expect(await run.exit).toBe(1);
      const out = jsonSummary<ReconcileOutput>(run);
      expect(out.reconcile).toEqual({
        ran: true,
        batches: 1,
        queue: { ...noQueueWork, due: 1, failed: 1 },
        sweep: { missing: 0, created: 0, failed: 0 },
        more: false,
        missing_profiles: 0,
        queued: 1,
        scanned: null,
        duration_ms: expect.any(Number),
      });
      expect(run.stderr()).toContain(
        '; 1 user(s) still without a profile (1 in the repair queue, 0 not)\n',
      );
      expect(run.stderr()).toContain(
        '  1 user(s) still failing: their queue entries were pushed back and are retried when due',
      );
      const entry = await db().one(
        `select attempts, sqlstate, resolved_at, next_attempt_at > $2 as in_future,
                (next_attempt_at - last_failed_at)::text as backoff
         from private.repair_queue where user_id = $1`,
        [hostile, started.now],
      );
      expect(entry).toEqual({
        attempts: 4,
        sqlstate: '23514',
        resolved_at: null,
        in_future: true,
        backoff: '00:00:08',
      });
      const audit = await db().one(
        `select source, outcome, attempt, sqlstate from private.audit_logs where user_id = $1 and outcome = 'failed'`,
        [hostile],
      );
      expect(audit).toEqual({
        source: 'reconcile',
        outcome: 'failed',
        attempt: 4,
        sqlstate: '23514',
      });
      expect(await profilesOf([hostile!])).toBe(0);
    } finally {
      await db().query(
        'alter table public.user_profiles drop constraint user_profiles_hostile_check',
      );
      await db().query('delete from private.repair_queue where user_id = $1', [hostile]);
      await db().query('delete from auth.users where id = $1', [hostile]);
    }
  });

  it('releases up to --batch-size usernames of users who never confirmed and are past the ttl, and says how many', async () => {
    const holders: string[] = [];
    for (const name of ['lapsed_a', 'lapsed_b', 'lapsed_c']) {
      holders.push(
        await signUpAsSupabaseAuth(db(), {
          userMetadata: { username: name },
          createdAt: new Date(Date.now() - 48 * 3_600_000),
        }),
      );
    }
    const first = reconcile(['--json', '--batch-size', '2']);
    expect(await first.exit).toBe(0);
    expect(jsonSummary<{ usernames_released: number }>(first).usernames_released).toBe(2);
    expect(first.stderr()).toContain('\nlapsed usernames of unconfirmed users: 2 released\n');
    const second = reconcile(['--batch-size', '2']);
    expect(await second.exit).toBe(0);
    expect(second.stdout()).toContain('\nlapsed usernames of unconfirmed users: 1 released\n');
    const { rows } = await db().query(
      'select count(*)::int as n from public.user_profiles where user_id = any($1) and username is not null',
      [holders],
    );
    expect(rows).toEqual([{ n: 0 }]);
  });

  it('brings drifted profile emails in line with auth.users: --full-scan checks every profile and says how many it fixed', async () => {
    const users = await Promise.all([1, 2].map(() => signUpAsSupabaseAuth(db())));
    await db().query(
      `update public.user_profiles set email = 'stale-' || email where user_id = any($1)`,
      [users],
    );
    // The scheduled slices have already passed these profiles in the current pass.
    await db().query('update private.profile_census set email_cursor = $1', [
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
    ]);
    const profiles =
      (await db().one<{ n: number }>('select count(*)::int as n from public.user_profiles')).n;
    const run = reconcile(['--json', '--full-scan']);
    expect(await run.exit).toBe(0);
    expect(jsonSummary<{ emails: unknown }>(run).emails).toEqual({ checked: profiles, fixed: 2 });
    expect(run.stderr()).toContain(
      `\nprofile emails: 2 brought in line with auth.users (${profiles} profile(s) checked)\n`,
    );
    const { rows } = await db().query(
      'select count(*)::int as n from public.user_profiles p join auth.users u on u.id = p.user_id where p.user_id = any($1) and p.email = u.email',
      [users],
    );
    expect(rows).toEqual([{ n: 2 }]);
  });

  it('says another run held the lock and exits 0 when a reconcile is already running', async () => {
    await db().withTransaction(async (client) => {
      await client.query(LOCK);
      const held = reconcile(['--json']);
      expect(await held.exit).toBe(0);
      expect(jsonSummary<ReconcileOutput>(held).reconcile).toEqual({
        ran: false,
        reason: 'another reconcile is running',
      });
      expect(held.stderr()).toContain(
        'reconcile did not run: another reconcile is running (another run held the lock); nothing to do here\n',
      );
    });
    const free = reconcile([]);
    expect(await free.exit).toBe(0);
    expect(free.stdout()).toContain('reconcile ran 1 batch(es) in ');
  });

  it('shares the work of two concurrent reconciles without doing anything twice', async () => {
    const queued = await usersWithoutProfiles(100, 'pair-queued-');
    await queue(queued);
    const swept = await usersWithoutProfiles(200, 'pair-swept-');
    const runs = [
      reconcile(['--json', '--batch-size', '1000']),
      reconcile(['--json', '--batch-size', '1000']),
    ];
    const codes = await Promise.all(runs.map((r) => r.exit));
    expect(codes).toEqual([0, 0]);
    const results = runs.map((r) => jsonSummary<ReconcileOutput>(r).reconcile);
    const ran = results.filter((r) => r.ran);
    expect(ran.length).toBeGreaterThanOrEqual(1);
    for (const r of results) {
      if (!r.ran) expect(r).toEqual({ ran: false, reason: 'another reconcile is running' });
    }
    const work = ran.reduce((sum, r) => sum + (r.ran ? r.queue.repaired + r.sweep.created : 0), 0);
    expect(work).toBe(300);
    expect(await profilesOf([...queued, ...swept])).toBe(300);
    const twice = await db().query(
      `select user_id from private.audit_logs where outcome = 'created' and user_id = any($1) group by user_id having count(*) > 1`,
      [[...queued, ...swept]],
    );
    expect(twice.rows).toEqual([]);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'repeats with --loop until %s, which lets the current run finish, and exits 0',
    async (signal) => {
      const run = reconcile(['--loop', '0.2', '--json']);
      await waitUntil(run, () => run.stdout().split('\n').filter(Boolean).length >= 2, 'two runs');
      run.child.kill(signal);
      expect(await run.exit).toBe(0);
      const lines = run.stdout().split('\n').filter(Boolean).map((line) =>
        JSON.parse(line) as ReconcileOutput
      );
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const line of lines) {
        expect(line.reconcile).toMatchObject({
          ran: true,
          queue: { due: 0 },
          sweep: { missing: 0 },
        });
      }
      expect(run.stderr()).toContain('Interrupted: stopping after the current run');
      expect(run.stderr()).toContain(`stopped after ${lines.length} run(s)\n`);
    },
  );

  it('delivers an alert once when it fires and once when it clears, however often it runs', async () => {
    // Start from a settled state: conditions evaluated, and earlier transitions out of the outbox.
    expect(await reconcile([]).exit).toBe(0);
    await db().query(
      'update private.alert_deliveries set delivered_at = now() where delivered_at is null',
    );
    receiver.bodies.length = 0;
    receiver.status = 200;
    const withWebhook = { ALERT_WEBHOOK_URL: receiver.url };
    const trigger = () =>
      receiver.bodies.filter((b) => b.alert.alert === 'trigger_enabled').map((b) => b.alert.state);

    await db().query('update private.settings set trigger_enabled = false');
    try {
      const firing: CliRun[] = [];
      for (let i = 0; i < 3; i++) {
        const run = reconcile([], withWebhook);
        firing.push(run);
        expect(await run.exit).toBe(0);
      }
      expect(trigger()).toEqual(['firing']);
      expect(firing[0]!.stdout()).toContain(
        'alerts: status degraded; 1 transition(s) (trigger_enabled firing); 1 delivered, 0 delivery failure(s)',
      );
      expect(firing[1]!.stdout()).toContain(
        'alerts: status degraded; 0 transition(s); 0 delivered, 0 delivery failure(s)',
      );
      expect(receiver.bodies[0]!.text).toContain('Profile system alert *trigger_enabled* started');
    } finally {
      await db().query('update private.settings set trigger_enabled = true');
    }
    for (let i = 0; i < 2; i++) expect(await reconcile([], withWebhook).exit).toBe(0);
    expect(trigger()).toEqual(['firing', 'resolved']);
  });

  it('keeps a failed delivery visible in the outbox and delivers it once the receiver recovers', async () => {
    await db().query(
      'update private.alert_deliveries set delivered_at = now() where delivered_at is null',
    );
    receiver.bodies.length = 0;
    receiver.status = 500;
    const withWebhook = { ALERT_WEBHOOK_URL: receiver.url };
    await db().query('update private.settings set trigger_enabled = false');
    try {
      const failing = reconcile(['--json'], withWebhook);
      expect(await failing.exit).toBe(0);
      expect(jsonSummary<ReconcileOutput>(failing).alerts).toMatchObject({
        transitions: [{ name: 'trigger_enabled', state: 'firing' }],
        delivered: 0,
        failed: 1,
      });
      expect(receiver.bodies.map((b) => b.alert.alert)).toEqual(['trigger_enabled']);
      const logged = failing.stderr().split('\n').filter((line) =>
        line.includes('"msg":"alert delivery failed"')
      );
      expect(logged).toHaveLength(1);
      expect(JSON.parse(logged[0]!)).toMatchObject({
        level: 'error',
        alert: 'trigger_enabled',
        state: 'firing',
        err: 'alert webhook answered 500',
      });
      expect(failing.stderr()).toContain(
        'failed deliveries stay in the outbox with their error and are retried later',
      );
      expectNoKey(failing);
      const kept = await db().one(
        `select state, attempts, delivered_at, last_error, next_attempt_at > now() as backing_off
         from private.alert_deliveries where alert = 'trigger_enabled' and delivered_at is null`,
      );
      expect(kept).toEqual({
        state: 'firing',
        attempts: 1,
        delivered_at: null,
        last_error: 'alert webhook answered 500',
        backing_off: true,
      });

      // The receiver recovers and the backoff elapses (moved, rather than waited for).
      receiver.status = 200;
      await db().query(
        `update private.alert_deliveries set next_attempt_at = now() where delivered_at is null`,
      );
      const recovered = reconcile([], withWebhook);
      expect(await recovered.exit).toBe(0);
      expect(recovered.stdout()).toContain('0 transition(s); 1 delivered, 0 delivery failure(s)');
      expect(receiver.bodies.map((b) => `${b.alert.alert} ${b.alert.state}`)).toEqual([
        'trigger_enabled firing',
        'trigger_enabled firing',
      ]);
      const delivered = await db().one(
        `select attempts, delivered_at is not null as delivered, last_error from private.alert_deliveries
         where alert = 'trigger_enabled' and state = 'firing' order by id desc limit 1`,
      );
      expect(delivered).toEqual({ attempts: 2, delivered: true, last_error: null });
    } finally {
      await db().query('update private.settings set trigger_enabled = true');
    }
  });
});
