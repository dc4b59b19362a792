// The proof that repair and alerting run by themselves: the local stand-in for pg_cron runs
// public.run_self_repair() at a short period, and this test calls nothing of ours: it signs
// users up through Auth (the real supabase-js), breaks and mends the database behind the
// product's back, and watches the tables and a webhook receiver.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSupabaseClient } from '../../shared/supabase-client.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

const PERIOD_SECONDS = 2;

interface Delivered {
  alert: { alert: string; state: 'firing' | 'resolved' };
  text: string;
}

const received: Delivered[] = [];
let receiver: Server;
let receiverUrl = '';
const db = useTestDatabase();
beforeAll(async () => {
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk));
    request.on('end', () => {
      received.push(JSON.parse(body) as Delivered);
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`;
  // Before the stack starts, so its first tick already sees them: a short period, and a health
  // window short enough that a success-rate alert clears within the test.
  await db().query(
    `update private.settings set self_repair_period = interval '${PERIOD_SECONDS} seconds',
                                               health_window = interval '3 seconds'`,
  );
});
afterAll(async () => {
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});
const api = useLocalApi(db, {
  selfRepair: true,
  get functionEnv() {
    return { ALERT_WEBHOOK_URL: receiverUrl };
  },
});

async function signUp(count: number, prefix: string): Promise<string[]> {
  const anon = createSupabaseClient(api().stack.apiUrl, api().stack.keys.anonKey);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { data, error } = await anon.auth.signUp({
      email: `${prefix}-${i}@example.test`,
      password: 'correct-horse-battery',
    });
    expect(error).toBeNull();
    ids.push(data.user!.id);
  }
  return ids;
}

async function profilesOf(ids: string[]): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from public.user_profiles where user_id = any($1)',
    [ids],
  )).n;
}

/** Milliseconds until `done` holds, polling the database; fails after `limitMs`. */
async function timeUntil(done: () => Promise<boolean>, limitMs: number): Promise<number> {
  const started = Date.now();
  while (!(await done())) {
    if (Date.now() - started > limitMs) throw new Error(`not done within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

describe('scheduled self-repair (the local stand-in for pg_cron, nobody calling anything)', () => {
  it('runs on the schedule the settings give', () => {
    expect(api().stack.selfRepair()).toEqual({
      enabled: true,
      period_seconds: PERIOD_SECONDS,
      schedule: `${PERIOD_SECONDS} seconds`,
      scheduler: null,
      job: null,
    });
  });

  it('repairs profiles that failed within two periods of the fault being removed, and delivers the alert once and its clearing once', async () => {
    // The fault: every profile insert fails, as a broken constraint or a full disk would make it.
    await db().query(`create function public.test_fault() returns trigger language plpgsql as $$
                      begin raise exception 'injected fault' using errcode = '53100'; end $$`);
    await db().query(
      'create trigger test_fault before insert on public.user_profiles for each row execute function public.test_fault()',
    );
    let ids: string[];
    try {
      ids = await signUp(3, 'faulted');
      // The signups went through; their profiles failed and wait in the repair queue.
      expect(await profilesOf(ids)).toBe(0);
      expect(
        (await db().query(
          `select count(*)::int as n from private.repair_queue where user_id = any($1) and resolved_at is null and sqlstate = '53100'`,
          [ids],
        )).rows,
      )
        .toEqual([{ n: 3 }]);
      // The alert is delivered by the schedule alone.
      await timeUntil(
        async () =>
          received.some((d) => d.alert.alert === 'success_rate' && d.alert.state === 'firing'),
        4 * PERIOD_SECONDS * 1000,
      );
      // Several periods of failing retries, so the entries' backoff has grown past a period.
      await new Promise((r) => setTimeout(r, 3 * PERIOD_SECONDS * 1000));
      expect(await profilesOf(ids)).toBe(0);
    } finally {
      await db().query('drop trigger if exists test_fault on public.user_profiles');
      await db().query('drop function if exists public.test_fault()');
    }
    const ms = await timeUntil(
      async () => (await profilesOf(ids)) === 3,
      4 * PERIOD_SECONDS * 1000,
    );
    expect(ms).toBeLessThanOrEqual(2 * PERIOD_SECONDS * 1000);
    expect(
      (await db().query(
        'select count(*)::int as n from private.repair_queue where user_id = any($1) and resolved_at is null',
        [ids],
      )).rows,
    )
      .toEqual([{ n: 0 }]);

    // The failures leave the 3-second health window; the clearing is delivered, once.
    await timeUntil(
      async () =>
        received.some((d) => d.alert.alert === 'success_rate' && d.alert.state === 'resolved'),
      6 * PERIOD_SECONDS * 1000,
    );
    await new Promise((r) => setTimeout(r, 2 * PERIOD_SECONDS * 1000));
    expect(received.map((d) => [d.alert.alert, d.alert.state])).toEqual([
      ['success_rate', 'firing'],
      ['success_rate', 'resolved'],
    ]);
    expect(received[0]!.text).toBe(
      ':rotating_light: Profile system alert *success_rate* started (status degraded): value 0, threshold 0.99',
    );
    expect(
      (await db().query(
        `select count(*)::int as n from private.alert_deliveries where delivered_at is null`,
      )).rows,
    ).toEqual([{ n: 0 }]);
  });

  it('gives a user who signed up with the trigger switched off a profile within two periods', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    let ids: string[];
    try {
      ids = await signUp(1, 'switched-off');
    } finally {
      await db().query('update private.settings set trigger_enabled = true');
    }
    expect(await profilesOf(ids)).toBe(0);
    const ms = await timeUntil(
      async () => (await profilesOf(ids)) === 1,
      4 * PERIOD_SECONDS * 1000,
    );
    expect(ms).toBeLessThanOrEqual(2 * PERIOD_SECONDS * 1000);
    expect(
      (await db().query(`select created_via from public.user_profiles where user_id = $1`, [
        ids[0],
      ])).rows,
    )
      .toEqual([{ created_via: 'backfill' }]);
  });
});
