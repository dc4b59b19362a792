// The operator dashboard in a real browser: Chromium driven by playwright-core (Debian's, or the
// one inside npm @sparticuz/chromium: tests/helpers/browser.ts) opens profile-health?format=html
// on the local stack (the function runs under real Deno behind the gateway), and every figure it
// shows is compared with what the database says. No skipping: a browser that cannot start fails
// every test here with the reason.
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useBrowser } from '../helpers/browser.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import {
  headline,
  openDashboard,
  parseAge,
  percent,
  ready,
  shownFailures,
  textOf,
} from './dashboard-page.ts';
import {
  databaseOperations,
  databaseStats,
  databaseVerdict,
  type SeededDay,
  seedKnownDay,
  XSS,
} from './dashboard-seed.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCREENSHOT = path.join(ROOT, '.data', 'screenshots', 'dashboard.png');

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
  functionEnv.ALERT_WEBHOOK_URL = `http://127.0.0.1:${
    (receiver.server.address() as AddressInfo).port
  }/alerts`;
});
afterAll(async () => {
  receiver.server?.closeAllConnections();
  await new Promise<void>((
    resolve,
  ) => (receiver.server ? receiver.server.close(() => resolve()) : resolve()));
});
const api = useLocalApi(db, { functions: true, functionEnv });
const browser = useBrowser();

let seeded: SeededDay;
beforeAll(async () => {
  seeded = await seedKnownDay(db());
}, 120_000);

const healthToken = () => api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!;
const dashboardUrl = () => `${api().stack.apiUrl}/functions/v1/profile-health?format=html`;
const openPage = (url: string) => openDashboard(browser(), url);

describe('the operator dashboard in Chromium', () => {
  it('shows exactly what the database holds: verdict, success rate, outcomes, SQLSTATEs, missing profiles, queue and alerts', async () => {
    const session = await openPage(`${dashboardUrl()}#token=${encodeURIComponent(healthToken())}`);
    const { page } = session;
    try {
      await ready(page);
      const stats = await databaseStats(db(), '24 hours');
      const operations = await databaseOperations(db(), '24 hours');

      // The token left the address bar as soon as the page read it.
      expect(new URL(page.url()).hash).toBe('');
      expect(await page.evaluate(`sessionStorage.getItem('profile-health-token')`)).toBe(
        healthToken(),
      );

      expect(await textOf(page, 'verdict')).toBe('down');
      expect(await databaseVerdict(db())).toBe('down');

      // 14 created + 2 existed out of 14 + 2 + 4 failed.
      expect(stats.success_rate).toBe(0.8);
      const { shown, expected } = await headline(page, stats);
      expect(shown).toEqual(expected);
      expect(await textOf(page, 'success-rate')).toBe('80.00%');
      expect(stats.attempts.by_outcome).toMatchObject({ created: 14, existed: 2, failed: 4 });
      for (const [source, outcomes] of Object.entries(stats.attempts.by_source)) {
        for (const outcome of ['created', 'existed', 'failed', 'skipped'] as const) {
          expect(await textOf(page, `source-${source}-${outcome}`)).toBe(
            String(outcomes[outcome] ?? 0),
          );
        }
      }

      expect(await shownFailures(page)).toEqual([
        ['23505', '3', XSS],
        [
          '23514',
          '1',
          'new row for relation "user_profiles" violates check constraint "user_profiles_username_check"',
        ],
      ]);
      // The hostile message is text on the page, not an element, and its handler never ran.
      expect(await page.locator('main img').count()).toBe(0);
      expect(await page.evaluate('window.__pwned')).toBeUndefined();

      expect(stats.missing_profiles).toBe(2);
      expect(await textOf(page, 'missing-profiles')).toBe('2');
      // The queued users are not missing: the sub-line counts them apart.
      expect(await textOf(page, 'missing-profiles-sub')).toBe('3 more in the repair queue');
      expect(stats.repair_queue.open).toBe(3);
      expect(await textOf(page, 'queue-open')).toBe('3');
      const checkedAt = Date.parse(
        (await page.getByTestId('checked-at').getAttribute('datetime'))!,
      );
      const shownAge = parseAge(await textOf(page, 'queue-oldest-age'));
      const expectedAge = (checkedAt - seeded.oldestFailedAt.getTime()) / 1000;
      expect(Math.abs(shownAge - expectedAge)).toBeLessThanOrEqual(1);
      expect(shownAge).toBeGreaterThanOrEqual(20 * 60);

      const firing = operations.alerts.filter((a) => a.firing).map((a) => a.name);
      expect(firing).toEqual(['missing_profiles', 'repair_queue_age']);
      const shownFiring = await page.locator(
        '[data-testid="alerts"] tr[data-firing="true"] [data-testid="alert-name"]',
      ).allTextContents();
      expect(shownFiring).toEqual(firing);
      const shownQuiet = await page.locator(
        '[data-testid="alerts"] tr[data-firing="false"] [data-testid="alert-name"]',
      ).allTextContents();
      expect(shownQuiet).toEqual(operations.alerts.filter((a) => !a.firing).map((a) => a.name));
      expect(await page.locator('[data-testid="alerts"] tr.firing').count()).toBe(2);

      // The page's health call posted both transitions to the receiver, which is down: both
      // stay in the outbox with its answer as the error.
      expect(
        receiver.posts.map((p) => (p as { alert: { alert: string; state: string } }).alert).map((
          a,
        ) => [a.alert, a.state]),
      ).toEqual([
        ['missing_profiles', 'firing'],
        ['repair_queue_age', 'firing'],
      ]);
      const outbox = (await db().query(
        `select attempts, delivered_at, last_error from private.alert_deliveries order by id`,
      )).rows;
      expect(outbox.map((d) => [d.attempts, d.delivered_at])).toEqual([[1, null], [1, null]]);
      expect(operations.alert_deliveries).toEqual({
        pending: 2,
        undeliverable: 0,
        last_error: outbox[1]!.last_error,
        last_delivered_at: null,
      });
      expect(await textOf(page, 'outbox-pending')).toBe('2');
      expect(await textOf(page, 'outbox-undeliverable')).toBe('0');
      expect(await textOf(page, 'outbox-last-error')).toBe(outbox[1]!.last_error);
      expect(outbox[1]!.last_error).toBe('alert webhook answered 503');
      expect(await textOf(page, 'outbox-last-delivered')).toBe('never');

      const lastRun = operations.reconciler!;
      expect(lastRun.last_run).toEqual(seeded.reconcile);
      expect(await page.getByTestId('reconciler-last-run-at').textContent()).toMatch(
        /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/,
      );
      expect(
        Date.parse(
          (await textOf(page, 'reconciler-last-run-at')).replace(' UTC', 'Z').replace(' ', 'T'),
        ),
      ).toBe(
        Math.floor(Date.parse(lastRun.last_run_at) / 1000) * 1000,
      );
      expect(await textOf(page, 'reconciler-queue-due')).toBe('0');
      expect(await textOf(page, 'reconciler-sweep-missing')).toBe('0');

      // One mark per series bucket, at the bucket's time: 30-minute buckets over 24 hours.
      expect(operations.bucket_seconds).toBe(1800);
      const marks = await page.locator('[data-testid="success-chart"] [data-testid="chart-mark"]')
        .evaluateAll((rects) =>
          rects.map((rect) => [rect.getAttribute('data-at'), rect.getAttribute('data-rate')])
        );
      expect(marks.map(([at, rate]) => [Date.parse(at!), rate])).toEqual(
        operations.series.map((
          p,
        ) => [Date.parse(p.at), p.success_rate === null ? 'none' : String(p.success_rate)]),
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
      const stats = await databaseStats(db(), '1 hour');
      const operations = await databaseOperations(db(), '1 hour');
      expect(await page.getByTestId('window-1h').getAttribute('aria-pressed')).toBe('true');
      expect(await textOf(page, 'success-rate')).toBe(percent(stats.success_rate));
      expect(await textOf(page, 'success-rate')).toBe('100.00%');
      expect(await textOf(page, 'outcome-created-count')).toBe(
        String(stats.attempts.by_outcome.created),
      );
      expect(stats.attempts.by_outcome.created).toBe(2);
      expect(await textOf(page, 'outcome-failed-count')).toBe('0');
      expect(await page.getByTestId('failures').locator('tbody tr').allTextContents()).toEqual([
        'No failures in this window.',
      ]);
      expect(operations.bucket_seconds).toBe(60);
      expect(await page.locator('[data-testid="chart-mark"]').count()).toBe(
        operations.series.length,
      );
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
