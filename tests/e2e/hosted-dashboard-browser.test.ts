// The dashboard of a hosted project, in Chromium. The local stack's gateway answers text/html as
// text/plain, as Supabase does on *.supabase.co, so profile-health?format=html shows source; the
// dashboard server `npm run dashboard` runs (started here in-process from the same module) serves
// the page on 127.0.0.1 and relays its JSON requests to the stack's functions URL, and every
// figure the page shows is compared with the database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DashboardServer, startDashboardServer } from '../../scripts/dashboard-server.ts';
import { useBrowser } from '../helpers/browser.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import {
  headline,
  openDashboard,
  parseAge,
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

const NONCE = /^[A-Za-z0-9+/]{22}==$/;

const db = useTestDatabase();
const api = useLocalApi(db, { functions: true, htmlAsPlainText: true });
const browser = useBrowser();

let seeded: SeededDay;
let dashboard: DashboardServer;
const serverLog: string[] = [];
beforeAll(async () => {
  seeded = await seedKnownDay(db());
  dashboard = await startDashboardServer({
    functionsUrl: `${api().stack.apiUrl}/functions/v1`,
    port: 0,
    log: (line) => serverLog.push(line),
  });
}, 120_000);
afterAll(async () => {
  await dashboard?.close();
});

const healthToken = () => api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!;
const withToken = (url: string) => `${url}#token=${encodeURIComponent(healthToken())}`;

describe('profile-health?format=html on a platform that serves HTML as plain text', () => {
  it('comes back as text/plain, so the browser shows the source and no dashboard', async () => {
    const page = await browser().newPage();
    try {
      const response = (await page.goto(
        withToken(`${api().stack.apiUrl}/functions/v1/profile-health?format=html`),
      ))!;
      expect(response.status()).toBe(200);
      expect(response.headers()['content-type']).toBe('text/plain; charset=utf-8');
      expect(await page.evaluate('document.contentType')).toBe('text/plain');
      expect((await page.locator('body').innerText()).startsWith('<!doctype html>')).toBe(true);
      expect(await page.locator('[data-testid="verdict"]').count()).toBe(0);
      // The page's script never ran: the token is still in the address bar, nothing was stored.
      expect(new URL(page.url()).hash).not.toBe('');
      expect(await page.evaluate(`sessionStorage.getItem('profile-health-token')`)).toBeNull();
    } finally {
      await page.close();
    }
  });
});

describe('npm run dashboard against the hosted-like stack, in Chromium', () => {
  it('serves the page from 127.0.0.1 with the strict policy: own nonce-tagged script and style, connect-src self, no framing', async () => {
    const page = await browser().newPage();
    try {
      const response = (await page.goto(dashboard.url))!;
      const headers = response.headers();
      expect(response.status()).toBe(200);
      expect(headers['content-type']).toBe('text/html; charset=utf-8');
      const nonce = /script-src 'nonce-([^']+)'/.exec(headers['content-security-policy']!)?.[1];
      expect(nonce).toMatch(NONCE);
      expect(headers['content-security-policy']).toBe(
        `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; ` +
          `base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      );
      expect(headers).toMatchObject({
        'cache-control': 'no-store',
        'x-frame-options': 'DENY',
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      // The browser holds the page to it: it cannot reach the project itself, only its own origin.
      const direct = await page.evaluate(
        (url) => fetch(url).then(() => 'reached', () => 'blocked'),
        `${api().stack.apiUrl}/functions/v1/profile-health`,
      );
      expect(direct).toBe('blocked');
    } finally {
      await page.close();
    }
  });

  it('shows what the database holds: verdict, success rate, outcomes, SQLSTATEs, missing profiles, queue and alerts', async () => {
    const session = await openDashboard(browser(), withToken(dashboard.url));
    const { page } = session;
    try {
      await ready(page);
      const stats = await databaseStats(db(), '24 hours');
      const operations = await databaseOperations(db(), '24 hours');

      expect(new URL(page.url()).hash).toBe('');
      expect(await textOf(page, 'verdict')).toBe('down');
      expect(await databaseVerdict(db())).toBe('down');
      expect(stats.success_rate).toBe(0.8);
      const { shown, expected } = await headline(page, stats);
      expect(shown).toEqual(expected);
      expect(await textOf(page, 'success-rate')).toBe('80.00%');
      expect((await shownFailures(page))[0]).toEqual(['23505', '3', XSS]);
      expect(await page.evaluate('window.__pwned')).toBeUndefined();

      expect(await textOf(page, 'missing-profiles')).toBe(String(stats.missing_profiles));
      expect(stats.missing_profiles).toBe(seeded.missing.length);
      expect(await textOf(page, 'missing-profiles-sub')).toBe(
        `${seeded.queued} more in the repair queue`,
      );
      expect(await textOf(page, 'queue-open')).toBe('3');
      const checkedAt = Date.parse(
        (await page.getByTestId('checked-at').getAttribute('datetime'))!,
      );
      expect(
        Math.abs(
          parseAge(await textOf(page, 'queue-oldest-age')) -
            (checkedAt - seeded.oldestFailedAt.getTime()) / 1000,
        ),
      ).toBeLessThanOrEqual(1);

      const firing = operations.alerts.filter((a) => a.firing).map((a) => a.name);
      expect(firing).toEqual(['missing_profiles', 'repair_queue_age']);
      expect(
        await page.locator(
          '[data-testid="alerts"] tr[data-firing="true"] [data-testid="alert-name"]',
        ).allTextContents(),
      ).toEqual(firing);
      expect(await textOf(page, 'outbox-pending')).toBe(
        String(operations.alert_deliveries.pending),
      );
      expect(await page.locator('[data-testid="success-chart"] [data-testid="chart-mark"]').count())
        .toBe(operations.series.length);

      await page.getByTestId('window-1h').click();
      await ready(page, '1h');
      const hour = await databaseStats(db(), '1 hour');
      expect(await textOf(page, 'outcome-created-count')).toBe(
        String(hour.attempts.by_outcome.created),
      );
      expect(await textOf(page, 'success-rate')).toBe('100.00%');

      // Nothing but the page's own origin was asked, and the 503 is the verdict's status.
      expect(session.problems).toEqual([]);
      expect(new Set(session.healthStatusNotes)).toEqual(new Set(['503']));
    } finally {
      await page.close();
    }
  });

  it("refuses a wrong token with the page's own message, and opens with the right one", async () => {
    const session = await openDashboard(
      browser(),
      `${dashboard.url}#token=not-the-health-token-at-all`,
    );
    const { page } = session;
    try {
      await page.waitForSelector('[data-testid="token-error"]:not([hidden])');
      expect(await textOf(page, 'token-error')).toBe('That token was not accepted (HTTP 401).');
      expect(await page.getByTestId('dashboard').isVisible()).toBe(false);

      await page.getByTestId('token-input').fill(healthToken());
      await page.getByTestId('token-input').press('Enter');
      await ready(page);
      expect(await textOf(page, 'verdict')).toBe('down');
      expect(session.problems).toEqual([]);
      expect(session.healthStatusNotes).toEqual(['401', '503']);
    } finally {
      await page.close();
    }
  });

  it('shows why when the functions URL cannot be reached', async () => {
    // A port that was free a moment ago: nothing answers there.
    const probe = await startDashboardServer({
      functionsUrl: 'http://127.0.0.1:9/functions/v1',
      port: 0,
    });
    const unreachable = await startDashboardServer({
      functionsUrl: `http://127.0.0.1:${probe.port}/functions/v1`,
      port: 0,
      log: (line) => serverLog.push(line),
    });
    await probe.close();
    const session = await openDashboard(browser(), withToken(unreachable.url));
    const { page } = session;
    try {
      await page.waitForSelector('body[data-state="ready"]');
      expect(await textOf(page, 'verdict')).toBe('unknown');
      expect(await textOf(page, 'load-error')).toBe(
        'profile-health answered HTTP 502: profile health unreachable.',
      );
      expect(session.problems).toEqual([]);
      expect(session.healthStatusNotes).toEqual(['502']);
    } finally {
      await page.close();
      await unreachable.close();
    }
  });

  it('never wrote the health token to a log line', () => {
    expect(serverLog).toEqual([
      expect.stringMatching(/^profile-health could not be reached: ECONNREFUSED \(window 24h\)$/),
    ]);
    for (const line of [...serverLog, ...api().logs]) expect(line).not.toContain(healthToken());
  });
});
