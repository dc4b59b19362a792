// profile-health as the operator dashboard's backend, in-process against the local API: the
// static HTML shell (?format=html), the operations figures the page draws (?include=operations),
// and alert evaluation and delivery driven by privileged health calls.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ALERT_BUDGET_MS,
  createProfileHealthHandler,
} from '../../shared/profile-health-handler.ts';
import type { FullHealth, HealthWithOperations } from '../helpers/bodies.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

const URL_ = 'http://127.0.0.1/functions/v1/profile-health';
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const NONCE = /^[A-Za-z0-9+/]{22}==$/;

const healthToken = () => api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!;
const withToken = () => ({ 'x-health-token': healthToken() });

function handler(overrides: Record<string, string> = {}): (request: Request) => Promise<Response> {
  return createProfileHealthHandler({ config: api().config(overrides) });
}

function get(query: string, headers: Record<string, string> = {}, method = 'GET'): Request {
  return new Request(`${URL_}${query}`, { method, headers });
}

/** The status and the parsed body (null when empty), typed B: what the test reads of it. */
async function call<B = unknown>(
  request: Request,
  overrides: Record<string, string> = {},
): Promise<{ status: number; body: B }> {
  const response = await handler(overrides)(request);
  const text = await response.text();
  return { status: response.status, body: (text === '' ? null : JSON.parse(text)) as B };
}

async function html(
  headers: Record<string, string> = {},
): Promise<{ response: Response; text: string }> {
  const response = await handler()(get('?format=html', headers));
  return { response, text: await response.text() };
}

/** A clean slate: no history, no alerts, no outbox, no queue, and the trigger on. */
async function reset(): Promise<void> {
  await db().query(
    `delete from private.audit_logs; delete from private.alert_state; delete from private.alert_deliveries;
                    delete from private.repair_queue; delete from private.reconcile_runs`,
  );
  await db().query('update private.settings set trigger_enabled = true');
}

interface AuditSeed {
  at: Date;
  source: string;
  outcome: 'created' | 'existed' | 'failed' | 'skipped';
  n: number;
  sqlstate?: string;
  message?: string;
}

async function seedAudit(rows: AuditSeed[]): Promise<void> {
  for (const row of rows) {
    await db().query(
      `insert into private.audit_logs (occurred_at, user_id, operation, source, outcome, sqlstate, message, duration_ms)
       select $1, gen_random_uuid(), 'ensure_profile', $2, $3, $4, $5, 1.5 from generate_series(1, $6::int)`,
      [row.at, row.source, row.outcome, row.sqlstate ?? null, row.message ?? null, row.n],
    );
  }
}

async function databaseNow(): Promise<number> {
  return (await db().one<{ now: Date }>('select now() as now')).now.getTime();
}

async function deliveries(): Promise<Array<Record<string, unknown>>> {
  return (await db().query(
    `select alert, state, attempts, delivered_at is not null as delivered, last_error from private.alert_deliveries order by id`,
  )).rows;
}

/** A local receiver for alert webhooks: answers each POST with `answer`, or never when hang. */
async function webhookReceiver(
  options: { hang?: boolean } = {},
): Promise<{ url: string; bodies: unknown[]; server: Server; close(): Promise<void> }> {
  const bodies: unknown[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let data = '';
    request.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
    request.on('end', () => {
      bodies.push(JSON.parse(data));
      if (!options.hang) response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    bodies,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('profile-health ?format=html, the dashboard shell', () => {
  it('is served without a token as text/html with a strict nonce-based CSP, no-store and DENY framing', async () => {
    const { response, text } = await html();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    const csp = response.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toMatch(NONCE);
    expect(csp).toBe(
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; ` +
        `base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    expect(text.startsWith('<!doctype html>')).toBe(true);
    expect(text.match(/<script\b[^>]*>/g)).toEqual([`<script nonce="${nonce}">`]);
    expect(text.match(/<style\b[^>]*>/g)).toEqual([`<style nonce="${nonce}">`]);
  });

  it('makes no external request: no http(s) source, no stylesheet link, no import and no url()', async () => {
    const { text } = await html();
    expect(text).not.toMatch(/\b(src|href|action)\s*=\s*["']?(https?:)?\/\//i);
    expect(text).not.toMatch(/<link\b[^>]*rel=["']?stylesheet/i);
    expect(text).not.toMatch(/@import|\burl\(/);
    expect(text.match(/<link\b[^>]*>/g)).toEqual(['<link rel="icon" href="data:,">']);
    expect(text.match(/https?:\/\/[^\s'"]+/g)).toEqual(['http://www.w3.org/2000/svg']);
  });

  it('never hands data to an HTML parser: the script has no innerHTML, outerHTML, insertAdjacentHTML or document.write', async () => {
    const { text } = await html();
    expect(text).not.toMatch(
      /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/,
    );
    expect(text).toContain('textContent');
  });

  it('uses a fresh nonce on every response', async () => {
    const nonces = await Promise.all(
      [1, 2, 3].map(async () =>
        /'nonce-([^']+)'/.exec((await html()).response.headers.get('content-security-policy')!)?.[1]
      ),
    );
    expect(new Set(nonces).size).toBe(3);
  });

  it('carries no data from the database, with or without a token, while the JSON has the seeded failure', async () => {
    await reset();
    const marker = `MARKER-${randomUUID()}`;
    await seedAudit([{
      at: new Date(await databaseNow()),
      source: 'register',
      outcome: 'failed',
      n: 1,
      sqlstate: '23514',
      message: `${marker} <b>bold</b>`,
    }]);

    const json = await call<FullHealth>(get('?format=json', withToken()));
    expect(json.body.stats.failures_by_sqlstate).toEqual([
      {
        sqlstate: '23514',
        count: 1,
        example: `${marker} <b>bold</b>`,
        last_at: expect.stringMatching(TIMESTAMP),
      },
    ]);

    // The shell evaluates no alert either: it never talks to the database.
    await db().query('delete from private.alert_state; delete from private.alert_deliveries');
    const anonymous = await html();
    const privileged = await html(withToken());
    const wrong = await html({ authorization: 'Bearer not-the-health-token-at-all' });
    for (const page of [anonymous, privileged, wrong]) {
      expect(page.response.status).toBe(200);
      expect(page.text).not.toContain(marker);
      expect(page.text).not.toContain('23514');
      expect(page.text).not.toContain(healthToken());
    }
    const normalise = (text: string) => text.replace(/nonce="[^"]+"/g, 'nonce=""');
    expect(normalise(privileged.text)).toBe(normalise(anonymous.text));
    expect(normalise(wrong.text)).toBe(normalise(anonymous.text));
    expect(await db().one('select count(*)::int as n from private.alert_state')).toEqual({ n: 0 });
  });

  it('answers HEAD with the HTML headers and no body', async () => {
    const response = await handler()(get('?format=html', {}, 'HEAD'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await response.text()).toBe('');
  });
});

describe('profile-health ?include=operations, the figures the dashboard draws', () => {
  it('adds profile_operations_stats for the window next to stats: one bucket per minute for 1h, with counts and success rates', async () => {
    await reset();
    const now = await databaseNow();
    const ago = (minutes: number) => new Date(now - minutes * 60_000);
    await seedAudit([
      { at: ago(50), source: 'trigger', outcome: 'created', n: 3 },
      {
        at: ago(50),
        source: 'register',
        outcome: 'failed',
        n: 1,
        sqlstate: '23505',
        message: 'duplicate key value violates unique constraint "user_profiles_username_key"',
      },
      { at: ago(30), source: 'ensure', outcome: 'existed', n: 2 },
      {
        at: ago(10),
        source: 'webhook',
        outcome: 'failed',
        n: 1,
        sqlstate: '23514',
        message: 'new row violates check constraint "hostile"',
      },
      { at: ago(10), source: 'trigger', outcome: 'skipped', n: 1 },
      { at: ago(120), source: 'trigger', outcome: 'created', n: 5 }, // before the window
    ]);

    const result = await call<HealthWithOperations>(
      get('?format=json&window=1h&include=operations', withToken()),
    );
    // The last 15 minutes (the health window) hold one failure and no success: degraded.
    expect(result.status).toBe(503);
    expect(Object.keys(result.body).sort()).toEqual([
      'checked_at',
      'checks',
      'operations',
      'stats',
      'status',
    ]);
    expect(result.body.status).toBe('degraded');
    const operations = result.body.operations;
    expect(Object.keys(operations).sort()).toEqual([
      'alert_deliveries',
      'alerts',
      'bucket_seconds',
      'reconciler',
      'series',
    ]);
    expect(operations.bucket_seconds).toBe(60);
    const minute = (date: Date) => Math.floor(date.getTime() / 60_000) * 60_000;
    expect(
      operations.series.map((point: { at: string }) => ({ ...point, at: Date.parse(point.at) })),
    ).toEqual([
      { at: minute(ago(50)), created: 3, existed: 0, failed: 1, skipped: 0, success_rate: 0.75 },
      { at: minute(ago(30)), created: 0, existed: 2, failed: 0, skipped: 0, success_rate: 1 },
      { at: minute(ago(10)), created: 0, existed: 0, failed: 1, skipped: 1, success_rate: 0 },
    ]);
    expect(result.body.stats.attempts).toEqual({
      total: 8,
      by_outcome: { created: 3, existed: 2, failed: 2, skipped: 1 },
      by_source: {
        ensure: { existed: 2 },
        register: { failed: 1 },
        trigger: { created: 3, skipped: 1 },
        webhook: { failed: 1 },
      },
    });
    expect(result.body.stats.success_rate).toBe(0.7143);
    expect(
      result.body.stats.failures_by_sqlstate.map((
        f: { sqlstate: string; count: number; example: string | null },
      ) => [f.sqlstate, f.count, f.example]),
    ).toEqual([
      ['23505', 1, 'duplicate key value violates unique constraint "user_profiles_username_key"'],
      ['23514', 1, 'new row violates check constraint "hostile"'],
    ]);

    // The same call evaluated the alerts first: the success-rate alert fired and waits in the
    // outbox (no webhook is configured), and the figures already show both.
    expect(operations.alerts.map((a: { name: string; firing: boolean }) => [a.name, a.firing]))
      .toEqual([
        ['missing_profiles', false],
        ['repair_queue_age', false],
        ['success_rate', true],
        ['trigger_enabled', false],
        ['trigger_installed', false],
      ]);
    expect(operations.alerts.find((a: { name: string }) => a.name === 'success_rate')).toEqual({
      name: 'success_rate',
      firing: true,
      since: expect.stringMatching(TIMESTAMP),
      value: 0,
      threshold: 0.99,
      evaluated_at: expect.stringMatching(TIMESTAMP),
    });
    expect(operations.alert_deliveries).toEqual({
      pending: 1,
      undeliverable: 0,
      last_error: null,
      last_delivered_at: null,
    });
    expect(await deliveries()).toEqual([{
      alert: 'success_rate',
      state: 'firing',
      attempts: 0,
      delivered: false,
      last_error: null,
    }]);
    expect(operations.reconciler).toBeNull();
  });

  it("shows the reconciler's last run", async () => {
    await reset();
    const run = (await db().one('select public.reconcile_profiles(10, true) as r')).r;
    expect(run).toMatchObject({
      ran: true,
      census: { ran: true, pass_completed: true },
      queue: {
        due: 0,
        repaired: 0,
        failed: 0,
        user_deleted: 0,
        probed: 0,
        recovered: 0,
        made_due: 0,
      },
      sweep: { missing: 0, created: 0, failed: 0 },
      more: false,
      missing_profiles: 0,
      queued: 0,
    });
    const result = await call<HealthWithOperations>(get('?include=operations', withToken()));
    expect(result.status).toBe(200);
    expect(result.body.operations.reconciler).toEqual({
      last_run_at: expect.stringMatching(TIMESTAMP),
      last_run: run,
    });
    expect(result.body.operations.bucket_seconds).toBe(1800);
  });

  it('leaves operations out of the full body unless asked, and ignores include for callers without a token', async () => {
    await reset();
    const full = await call<FullHealth>(get('?format=json', withToken()));
    expect(Object.keys(full.body).sort()).toEqual(['checked_at', 'checks', 'stats', 'status']);
    const anonymous = await call(get('?include=operations'));
    expect(anonymous).toEqual({
      status: 200,
      body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) },
    });
  });

  it('answers 400 naming include for anything but operations', async () => {
    expect(await call(get('?include=everything', withToken()))).toEqual({
      status: 400,
      body: {
        error: {
          code: 'validation_failed',
          message: 'include must be operations',
          fields: { include: 'must be operations' },
        },
      },
    });
  });

  it('answers the verdict with operations null, never an error, when profile_operations_stats fails', async () => {
    await reset();
    await db().query(
      'revoke execute on function public.profile_operations_stats(interval) from service_role',
    );
    let result: { status: number; body: unknown };
    try {
      result = await call(get('?include=operations', withToken()));
    } finally {
      await db().query(
        'grant execute on function public.profile_operations_stats(interval) to service_role',
      );
    }
    expect(result.status).toBe(200);
    expect(result.body).toEqual({
      status: 'ok',
      checked_at: expect.stringMatching(TIMESTAMP),
      checks: expect.any(Object),
      stats: expect.any(Object),
      operations: null,
    });
  });
});

describe('alerting driven by privileged health calls', () => {
  beforeEach(reset);

  it('evaluates the alerts on a call with the token: a transition row appears in private.alert_deliveries, once', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    expect((await call(get('', withToken()))).status).toBe(503);
    expect(await deliveries()).toEqual([{
      alert: 'trigger_enabled',
      state: 'firing',
      attempts: 0,
      delivered: false,
      last_error: null,
    }]);
    expect((await handler()(get('?format=prometheus', withToken()))).status).toBe(200);
    expect(await deliveries()).toHaveLength(1);
    await db().query('update private.settings set trigger_enabled = true');
    expect((await call(get('', withToken()))).status).toBe(200);
    expect((await deliveries()).map((d) => [d.alert, d.state])).toEqual([
      ['trigger_enabled', 'firing'],
      ['trigger_enabled', 'resolved'],
    ]);
  });

  it('evaluates nothing on a call without a token', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    expect((await call(get(''))).status).toBe(503);
    expect(
      await db().one(
        'select (select count(*) from private.alert_state)::int as states, (select count(*) from private.alert_deliveries)::int as deliveries',
      ),
    ).toEqual({
      states: 0,
      deliveries: 0,
    });
  });

  it('posts each transition once to an alert webhook that answers, and marks it delivered', async () => {
    const receiver = await webhookReceiver();
    try {
      await db().query('update private.settings set trigger_enabled = false');
      const overrides = { ALERT_WEBHOOK_URL: receiver.url };
      expect((await call(get('', withToken()), overrides)).status).toBe(503);
      const second = await call<HealthWithOperations>(
        get('?include=operations', withToken()),
        overrides,
      );
      expect(second.status).toBe(503);
      expect(receiver.bodies).toEqual([
        expect.objectContaining({
          text: expect.stringContaining('*trigger_enabled* started'),
          alert: expect.objectContaining({
            alert: 'trigger_enabled',
            state: 'firing',
            status: 'degraded',
            value: false,
          }),
        }),
      ]);
      expect(await deliveries()).toEqual([{
        alert: 'trigger_enabled',
        state: 'firing',
        attempts: 1,
        delivered: true,
        last_error: null,
      }]);
      expect(second.body.operations.alert_deliveries).toEqual({
        pending: 0,
        undeliverable: 0,
        last_error: null,
        last_delivered_at: expect.stringMatching(TIMESTAMP),
      });
    } finally {
      await receiver.close();
    }
  });

  it('answers the same status codes with an unreachable alert webhook, and keeps the failure in the outbox', async () => {
    const unreachable = { ALERT_WEBHOOK_URL: 'http://127.0.0.1:1/alerts' };
    await db().query('update private.settings set trigger_enabled = false');
    const degraded = await call<HealthWithOperations>(
      get('?include=operations', withToken()),
      unreachable,
    );
    expect(degraded.status).toBe(503);
    expect(degraded.body.status).toBe('degraded');
    const [row] = await deliveries();
    expect(row).toEqual({
      alert: 'trigger_enabled',
      state: 'firing',
      attempts: 1,
      delivered: false,
      last_error: expect.stringMatching(/fetch failed|ECONNREFUSED/),
    });
    expect(degraded.body.operations.alert_deliveries).toEqual({
      pending: 1,
      undeliverable: 0,
      last_error: row!.last_error,
      last_delivered_at: null,
    });

    await db().query('update private.settings set trigger_enabled = true');
    const ok = await call<FullHealth>(get('', withToken()), unreachable);
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('ok');
    expect((await deliveries()).map((d) => [d.state, d.attempts, d.delivered])).toEqual([
      ['firing', 1, false],
      ['resolved', 1, false],
    ]);
  });

  it('answers after the alert budget, not after every delivery, while the alert webhook hangs; the outbox records the timeouts', async () => {
    const receiver = await webhookReceiver({ hang: true });
    try {
      // An older transition still due, so two posts of 2 s each would outlast the budget.
      await db().query(`insert into private.alert_deliveries (alert, state, payload)
                        values ('missing_profiles', 'resolved', '{"alert": "missing_profiles", "state": "resolved", "status": "ok"}')`);
      await db().query('update private.settings set trigger_enabled = false');
      const started = Date.now();
      const result = await call<FullHealth>(get('', withToken()), {
        ALERT_WEBHOOK_URL: receiver.url,
      });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(ALERT_BUDGET_MS - 50);
      expect(elapsed).toBeLessThan(ALERT_BUDGET_MS + 1_000);
      expect(result.status).toBe(503);
      expect(result.body.status).toBe('degraded');
      // Delivery goes on after the answer and records each timeout in the outbox.
      const rows = await eventually(
        deliveries,
        (r) => r.every((d) => d.last_error !== null),
        10_000,
      );
      expect(rows).toEqual([
        {
          alert: 'missing_profiles',
          state: 'resolved',
          attempts: 1,
          delivered: false,
          last_error: expect.stringMatching(/timeout|aborted/i),
        },
        {
          alert: 'trigger_enabled',
          state: 'firing',
          attempts: 1,
          delivered: false,
          last_error: expect.stringMatching(/timeout|aborted/i),
        },
      ]);
      expect(receiver.bodies).toHaveLength(2);
    } finally {
      await receiver.close();
    }
  });

  it('answers the full body, never a 500, when alert evaluation itself fails', async () => {
    await db().query('revoke execute on function public.evaluate_alerts() from service_role');
    let result: { status: number; body: FullHealth };
    try {
      result = await call(get('', withToken()), { ALERT_WEBHOOK_URL: 'http://127.0.0.1:1/alerts' });
    } finally {
      await db().query('grant execute on function public.evaluate_alerts() to service_role');
    }
    expect(result.status).toBe(200);
    expect(Object.keys(result.body).sort()).toEqual(['checked_at', 'checks', 'stats', 'status']);
    expect(await deliveries()).toEqual([]);
  });
});
