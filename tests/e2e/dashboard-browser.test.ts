// The operator dashboard in a real browser: Debian's Chromium driven by playwright-core opens
// profile-health?format=html on the local stack (the function runs under real Deno behind the
// gateway), and every figure it shows is compared with what the database says.
// No skipping: without /usr/bin/chromium every test here fails and says how to install it
// (.ci/run installs it with apt-get before the tests).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SystemStats } from '../../shared/profile-contract.ts';
import type { OperationsStats } from '../../shared/dashboard-html.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.join(ROOT, '.data', 'screenshots', 'dashboard.png');
const XSS = '<img src=x onerror="window.__pwned = true">';

const db = useTestDatabase();
// An alert receiver that is down (it answers 503): the page's own health calls try to deliver
// and the outbox keeps the failures, which the page then shows. It starts before the stack, so
// the function workers get its address.
const functionEnv: Record<string, string> = {};
const receiver: { server?: Server; posts: unknown[] } = { posts: [] };
beforeAll(async () => {
  receiver.server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      receiver.posts.push(JSON.parse(body));
      response.writeHead(503, { 'content-type': 'text/plain' }).end('receiver down');
    });
  });
  await new Promise<void>((resolve) => receiver.server!.listen(0, '127.0.0.1', resolve));
  functionEnv.ALERT_WEBHOOK_URL = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/alerts`;
});
afterAll(async () => {
  receiver.server?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver.server ? receiver.server.close(() => resolve()) : resolve()));
});
const api = useLocalApi(db, { functions: true, functionEnv });

let browser: Browser | undefined;
const seeded: { oldestFailedAt?: Date; missing: string[]; reconcile?: Record<string, unknown> } = { missing: [] };

const NO_CHROMIUM =
  `Chromium is not installed at ${CHROMIUM}, so the dashboard cannot be tested in a browser. ` +
  'Install it with `apt-get update && apt-get install -y chromium` (.ci/run does this before the tests when it runs as root). ' +
  'This test fails rather than skips.';

let launchError: unknown;

/** The browser, or a loud failure naming what is missing or why it did not start. */
function requireBrowser(): Browser {
  if (browser) return browser;
  if (!existsSync(CHROMIUM)) throw new Error(NO_CHROMIUM);
  throw new Error(`Chromium at ${CHROMIUM} did not start: ${launchError instanceof Error ? launchError.message : String(launchError)}`);
}

beforeAll(async () => {
  await seed();
  if (!existsSync(CHROMIUM)) return; // every test fails with NO_CHROMIUM
  // Playwright gives each launch a fresh, empty --user-data-dir of its own and removes it on close.
  // A launch failure is kept for each test to report, so the tests fail rather than skip.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  }).catch((error: unknown) => {
    launchError = error;
    return undefined;
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

const healthToken = () => api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!;
const dashboardUrl = () => `${api().stack.apiUrl}/functions/v1/profile-health?format=html`;

/**
 * A known day: attempts across the 24 hours with failures of two SQLSTATEs (the newest 23505
 * message is hostile markup), two users without a profile older than the grace period, three
 * open repair-queue entries (the oldest 20 minutes old) and one resolved, a reconciler run
 * (before the users went missing), and alerts evaluated so missing_profiles and
 * repair_queue_age fire.
 */
async function seed(): Promise<void> {
  await db().query(`delete from private.audit_logs; delete from private.alert_state; delete from private.alert_deliveries;
                    delete from private.repair_queue; delete from private.reconcile_runs`);
  const now = (await db().one<{ now: Date }>('select now() as now')).now.getTime();
  const ago = (minutes: number) => new Date(now - minutes * 60_000);
  const rows: Array<[Date, string, string, number, string | null, string | null]> = [
    [ago(22 * 60), 'trigger', 'created', 4, null, null],
    [ago(16 * 60), 'trigger', 'created', 3, null, null],
    [ago(16 * 60), 'register', 'failed', 1, '23505', 'duplicate key value violates unique constraint "user_profiles_username_key"'],
    [ago(9 * 60), 'ensure', 'existed', 2, null, null],
    [ago(9 * 60), 'webhook', 'failed', 1, '23514', 'new row for relation "user_profiles" violates check constraint "user_profiles_username_check"'],
    [ago(3 * 60), 'register', 'created', 5, null, null],
    [ago(3 * 60), 'register', 'failed', 2, '23505', XSS],
    [ago(20), 'webhook', 'created', 2, null, null],
  ];
  for (const [at, source, outcome, n, sqlstate, message] of rows) {
    await db().query(
      `insert into private.audit_logs (occurred_at, user_id, operation, source, outcome, sqlstate, message, duration_ms)
       select $1, gen_random_uuid(), 'ensure_profile', $2, $3, $4, $5, 2.5 from generate_series(1, $6::int)`,
      [at, source, outcome, sqlstate, message, n],
    );
  }

  seeded.reconcile = (await db().one('select public.reconcile_profiles(10, $1::interval) as r', ['1 day'])).r;
  await db().query('update private.settings set trigger_enabled = false');
  try {
    for (let i = 0; i < 2; i++) seeded.missing.push(await signUpAsSupabaseAuth(db(), { createdAt: ago(10) }));
  } finally {
    await db().query('update private.settings set trigger_enabled = true');
  }
  // The reconcile run's census predates them; make it as old as they are, so the next check counts.
  await db().query(`update private.missing_profile_census set counted_at = now() - interval '10 minutes'`);
  seeded.oldestFailedAt = ago(20);
  await db().query(
    `insert into private.repair_queue (user_id, source, reason, sqlstate, attempts, first_failed_at, last_failed_at, resolved_at, resolution)
     values ($1, 'trigger', 'seeded', '23505', 3, $3, $3, null, null),
            ($2, 'trigger', 'seeded', '23505', 1, $4, $4, null, null),
            (gen_random_uuid(), 'register', 'seeded', '23514', 2, $4, $4, null, null),
            (gen_random_uuid(), 'register', 'seeded', '23514', 1, $5, $5, $4, 'reconcile')`,
    [seeded.missing[0], seeded.missing[1], seeded.oldestFailedAt, ago(5), ago(60)],
  );
  await db().query('select public.evaluate_alerts()');
}

async function databaseStats(window: string): Promise<SystemStats> {
  return (await db().one<{ s: SystemStats }>('select public.profile_system_stats($1::interval) as s', [window])).s;
}

async function databaseOperations(window: string): Promise<OperationsStats> {
  return (await db().one<{ s: OperationsStats }>('select public.profile_operations_stats($1::interval) as s', [window])).s;
}

function percent(rate: number | null): string {
  return rate === null ? '—' : `${(rate * 100).toFixed(2)}%`;
}

/** "20m 03s", "1h 02m 03s", "45s" → seconds. */
function parseAge(text: string): number {
  const match = /^(?:(\d+)h )?(?:(\d+)m )?(\d+)s$/.exec(text.trim());
  if (!match) throw new Error(`not an age: ${text}`);
  return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3]);
}

interface Session {
  page: Page;
  /** Console errors and uncaught exceptions, except the browser's note that the health JSON answered 503. */
  problems: string[];
  /** The browser's notes about the health JSON's status, which is 503 whenever the system is not ok. */
  healthStatusNotes: string[];
}

async function openPage(url: string): Promise<Session> {
  const page = await requireBrowser().newPage({ viewport: { width: 1440, height: 900 } });
  const session: Session = { page, problems: [], healthStatusNotes: [] };
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() !== 'error') return;
    const note = /^Failed to load resource: the server responded with a status of (\d{3})/.exec(message.text());
    if (note && message.location().url.includes('format=json')) session.healthStatusNotes.push(note[1]!);
    else session.problems.push(message.text());
  });
  page.on('pageerror', (error) => session.problems.push(`uncaught: ${error.message}`));
  page.on('request', (request) => {
    if (!request.url().startsWith(api().stack.apiUrl) && !request.url().startsWith('data:')) {
      session.problems.push(`external request: ${request.url()}`);
    }
  });
  await page.goto(url);
  return session;
}

async function ready(page: Page, window = '24h'): Promise<void> {
  await page.waitForSelector(`body[data-state="ready"][data-window="${window}"]`, { timeout: 30_000 });
}

const textOf = async (page: Page, testid: string) => ((await page.getByTestId(testid).first().textContent()) ?? '').trim();

describe('the operator dashboard in Chromium', () => {
  it('shows exactly what the database holds: verdict, success rate, outcomes, SQLSTATEs, missing profiles, queue and alerts', async () => {
    const session = await openPage(`${dashboardUrl()}#token=${encodeURIComponent(healthToken())}`);
    const { page } = session;
    try {
      await ready(page);
      const stats = await databaseStats('24 hours');
      const operations = await databaseOperations('24 hours');
      const health = (await db().one<{ h: { status: string } }>('select public.profile_system_health() as h')).h;

      // The token left the address bar as soon as the page read it.
      expect(new URL(page.url()).hash).toBe('');
      expect(await page.evaluate(`sessionStorage.getItem('profile-health-token')`)).toBe(healthToken());

      expect(await textOf(page, 'verdict')).toBe('down');
      expect(health.status).toBe('down');

      // 14 created + 2 existed out of 14 + 2 + 4 failed.
      expect(stats.success_rate).toBe(0.8);
      expect(await textOf(page, 'success-rate')).toBe('80.00%');
      expect(await textOf(page, 'attempts-total')).toBe(String(stats.attempts.total));
      for (const outcome of ['created', 'existed', 'failed', 'skipped'] as const) {
        expect(await textOf(page, `outcome-${outcome}-count`)).toBe(String(stats.attempts.by_outcome[outcome]));
      }
      expect(stats.attempts.by_outcome).toMatchObject({ created: 14, existed: 2, failed: 4 });
      for (const [source, outcomes] of Object.entries(stats.attempts.by_source)) {
        for (const outcome of ['created', 'existed', 'failed', 'skipped'] as const) {
          expect(await textOf(page, `source-${source}-${outcome}`)).toBe(String(outcomes[outcome] ?? 0));
        }
      }

      const failures = await page.getByTestId('failures').locator('tbody tr').evaluateAll((trs) =>
        trs.map((tr) => ['failure-sqlstate', 'failure-count', 'failure-example'].map((id) => tr.querySelector(`[data-testid="${id}"]`)?.textContent ?? null)),
      );
      expect(failures).toEqual(stats.failures_by_sqlstate.map((f) => [f.sqlstate, String(f.count), f.example]));
      expect(failures).toEqual([
        ['23505', '3', XSS],
        ['23514', '1', 'new row for relation "user_profiles" violates check constraint "user_profiles_username_check"'],
      ]);
      // The hostile message is text on the page, not an element, and its handler never ran.
      expect(await page.locator('main img').count()).toBe(0);
      expect(await page.evaluate('window.__pwned')).toBeUndefined();

      expect(stats.missing_profiles).toBe(2);
      expect(await textOf(page, 'missing-profiles')).toBe('2');
      expect(stats.repair_queue.open).toBe(3);
      expect(await textOf(page, 'queue-open')).toBe('3');
      const checkedAt = Date.parse((await page.getByTestId('checked-at').getAttribute('datetime'))!);
      const shownAge = parseAge(await textOf(page, 'queue-oldest-age'));
      const expectedAge = (checkedAt - seeded.oldestFailedAt!.getTime()) / 1000;
      expect(Math.abs(shownAge - expectedAge)).toBeLessThanOrEqual(1);
      expect(shownAge).toBeGreaterThanOrEqual(20 * 60);

      const firing = operations.alerts.filter((a) => a.firing).map((a) => a.name);
      expect(firing).toEqual(['missing_profiles', 'repair_queue_age']);
      const shownFiring = await page.locator('[data-testid="alerts"] tr[data-firing="true"] [data-testid="alert-name"]').allTextContents();
      expect(shownFiring).toEqual(firing);
      const shownQuiet = await page.locator('[data-testid="alerts"] tr[data-firing="false"] [data-testid="alert-name"]').allTextContents();
      expect(shownQuiet).toEqual(operations.alerts.filter((a) => !a.firing).map((a) => a.name));
      expect(await page.locator('[data-testid="alerts"] tr.firing').count()).toBe(2);

      // The page's health call posted both transitions to the receiver, which is down: both
      // stay in the outbox with its answer as the error.
      expect(receiver.posts.map((p) => (p as { alert: { alert: string; state: string } }).alert).map((a) => [a.alert, a.state])).toEqual([
        ['missing_profiles', 'firing'],
        ['repair_queue_age', 'firing'],
      ]);
      const outbox = (await db().query(`select attempts, delivered_at, last_error from private.alert_deliveries order by id`)).rows;
      expect(outbox.map((d) => [d.attempts, d.delivered_at])).toEqual([[1, null], [1, null]]);
      expect(operations.alert_deliveries).toEqual({ pending: 2, undeliverable: 0, last_error: outbox[1]!.last_error, last_delivered_at: null });
      expect(await textOf(page, 'outbox-pending')).toBe('2');
      expect(await textOf(page, 'outbox-undeliverable')).toBe('0');
      expect(await textOf(page, 'outbox-last-error')).toBe(outbox[1]!.last_error);
      expect(outbox[1]!.last_error).toBe('alert webhook answered 503');
      expect(await textOf(page, 'outbox-last-delivered')).toBe('never');

      const lastRun = operations.reconciler!;
      expect(lastRun.last_run).toEqual(seeded.reconcile);
      expect(await page.getByTestId('reconciler-last-run-at').textContent()).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
      expect(Date.parse((await textOf(page, 'reconciler-last-run-at')).replace(' UTC', 'Z').replace(' ', 'T'))).toBe(
        Math.floor(Date.parse(lastRun.last_run_at) / 1000) * 1000,
      );
      expect(await textOf(page, 'reconciler-queue-due')).toBe('0');
      expect(await textOf(page, 'reconciler-sweep-missing')).toBe('0');

      // One mark per series bucket, at the bucket's time: 30-minute buckets over 24 hours.
      expect(operations.bucket_seconds).toBe(1800);
      const marks = await page.locator('[data-testid="success-chart"] [data-testid="chart-mark"]').evaluateAll((rects) =>
        rects.map((rect) => [rect.getAttribute('data-at'), rect.getAttribute('data-rate')]),
      );
      expect(marks.map(([at, rate]) => [Date.parse(at!), rate])).toEqual(
        operations.series.map((p) => [Date.parse(p.at), p.success_rate === null ? 'none' : String(p.success_rate)]),
      );
      expect(marks.length).toBeGreaterThanOrEqual(5);

      await mkdir(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      console.log(`dashboard screenshot: ${SCREENSHOT}`);

      expect(session.problems).toEqual([]);
      expect(session.healthStatusNotes.every((status) => status === '503')).toBe(true);
    } finally {
      await page.close();
    }
  });

  it('switches to the 1h window and redraws outcomes and the chart from that window', async () => {
    const session = await openPage(`${dashboardUrl()}#token=${encodeURIComponent(healthToken())}`);
    const { page } = session;
    try {
      await ready(page);
      await page.getByTestId('window-1h').click();
      await ready(page, '1h');
      const stats = await databaseStats('1 hour');
      const operations = await databaseOperations('1 hour');
      expect(await page.getByTestId('window-1h').getAttribute('aria-pressed')).toBe('true');
      expect(await textOf(page, 'success-rate')).toBe(percent(stats.success_rate));
      expect(await textOf(page, 'success-rate')).toBe('100.00%');
      expect(await textOf(page, 'outcome-created-count')).toBe(String(stats.attempts.by_outcome.created));
      expect(stats.attempts.by_outcome.created).toBe(2);
      expect(await textOf(page, 'outcome-failed-count')).toBe('0');
      expect(await page.getByTestId('failures').locator('tbody tr').allTextContents()).toEqual(['No failures in this window.']);
      expect(operations.bucket_seconds).toBe(60);
      expect(await page.locator('[data-testid="chart-mark"]').count()).toBe(operations.series.length);
      expect(session.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('asks for the token when the URL has none, refuses a wrong one, and opens with the right one', async () => {
    const session = await openPage(dashboardUrl());
    const { page } = session;
    try {
      await page.waitForSelector('body[data-state="need-token"]');
      expect(await page.getByTestId('token-form').isVisible()).toBe(true);
      expect(await page.getByTestId('dashboard').isVisible()).toBe(false);

      await page.getByTestId('token-input').fill('not-the-health-token-at-all');
      await page.getByTestId('token-input').press('Enter');
      await page.waitForSelector('[data-testid="token-error"]:not([hidden])');
      expect(await textOf(page, 'token-error')).toBe('That token was not accepted (HTTP 401).');

      await page.getByTestId('token-input').fill(healthToken());
      await page.getByTestId('token-input').press('Enter');
      await ready(page);
      expect(await textOf(page, 'verdict')).toBe('down');
      expect(await page.getByTestId('token-form').isVisible()).toBe(false);
      expect(session.problems).toEqual([]);
      expect(session.healthStatusNotes).toEqual(['401', '503']);
    } finally {
      await page.close();
    }
  });
});
