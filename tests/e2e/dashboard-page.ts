// Opening the operator dashboard in Chromium and reading what it shows, for the browser tests of
// the page served by profile-health and by `npm run dashboard`.
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import type { SystemStats } from '../../shared/profile-contract.ts';

export interface Session {
  page: Page;
  /** Console errors, uncaught exceptions and requests off the page's origin, except the note below. */
  problems: string[];
  /** The browser's notes about the health JSON's status, which is 503 whenever the system is not ok. */
  healthStatusNotes: string[];
}

/** Opens url in a fresh page that may talk to its own origin only (and data: URLs). */
export async function openDashboard(browser: Browser, url: string): Promise<Session> {
  const origin = new URL(url).origin;
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const session: Session = { page, problems: [], healthStatusNotes: [] };
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() !== 'error') return;
    const note = /^Failed to load resource: the server responded with a status of (\d{3})/.exec(
      message.text(),
    );
    if (note && message.location().url.includes('format=json')) {
      session.healthStatusNotes.push(note[1]!);
    } else session.problems.push(message.text());
  });
  page.on('pageerror', (error) => session.problems.push(`uncaught: ${error.message}`));
  page.on('request', (request) => {
    if (!request.url().startsWith(`${origin}/`) && !request.url().startsWith('data:')) {
      session.problems.push(`external request: ${request.url()}`);
    }
  });
  await page.goto(url);
  return session;
}

/** Waits until the page has drawn the figures of window. */
export async function ready(page: Page, window = '24h'): Promise<void> {
  await page.waitForSelector(`body[data-state="ready"][data-window="${window}"]`, {
    timeout: 30_000,
  });
}

export const textOf = async (page: Page, testid: string) =>
  ((await page.getByTestId(testid).first().textContent()) ?? '').trim();

/** A rate as the page writes it. */
export function percent(rate: number | null): string {
  return rate === null ? '—' : `${(rate * 100).toFixed(2)}%`;
}

/** "20m 03s", "1h 02m 03s", "45s" → seconds. */
export function parseAge(text: string): number {
  const match = /^(?:(\d+)h )?(?:(\d+)m )?(\d+)s$/.exec(text.trim());
  if (!match) throw new Error(`not an age: ${text}`);
  return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3]);
}

/** The failures table as [sqlstate, count, example] rows, as the page shows them. */
export async function shownFailures(page: Page): Promise<Array<Array<string | null>>> {
  return await page.getByTestId('failures').locator('tbody tr').evaluateAll((trs) =>
    trs.map((tr) =>
      ['failure-sqlstate', 'failure-count', 'failure-example'].map((id) =>
        tr.querySelector(`[data-testid="${id}"]`)?.textContent ?? null
      )
    )
  );
}

/** The headline figures (success rate, attempts, outcomes, failures) the page shows, next to the same from stats. */
export async function headline(
  page: Page,
  stats: SystemStats,
): Promise<{ shown: unknown; expected: unknown }> {
  const outcomes = ['created', 'existed', 'failed', 'skipped'] as const;
  return {
    shown: {
      successRate: await textOf(page, 'success-rate'),
      total: await textOf(page, 'attempts-total'),
      outcomes: await Promise.all(
        outcomes.map((outcome) => textOf(page, `outcome-${outcome}-count`)),
      ),
      failures: await shownFailures(page),
    },
    expected: {
      successRate: percent(stats.success_rate),
      total: String(stats.attempts.total),
      outcomes: outcomes.map((outcome) => String(stats.attempts.by_outcome[outcome])),
      failures: stats.failures_by_sqlstate.map((f) => [f.sqlstate, String(f.count), f.example]),
    },
  };
}
