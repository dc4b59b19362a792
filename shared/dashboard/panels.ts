/// <reference lib="dom" />
// Drawing one health answer: the verdict, the checks, the alerts, the outbox and the reconciler,
// with the figures (stats.ts) and the chart (chart.ts) it is given. Runs in the browser:
// script.ts embeds this factory's source, so it may use no import and no module-level value at
// run time.
import type { SystemHealth, SystemStats } from '../profile-contract.ts';
import type { DashboardChart } from './chart.ts';
import type { DashboardDom } from './dom.ts';
import type { DashboardFormat } from './format.ts';
import type { DashboardStats } from './stats.ts';
import type { OperationsStats } from '../rpc-results.ts';

type Checks = SystemHealth['checks'];

/**
 * profile-health's JSON for ?format=json&include=operations. Its error bodies carry only status,
 * checked_at and error, and a verdict the page has never seen may come from a newer function.
 */
export interface DashboardBody {
  status: string;
  checked_at?: string;
  error?: string;
  checks?: Checks;
  stats?: SystemStats;
  operations?: OperationsStats | null;
}

export function dashboardPanels(
  dom: DashboardDom,
  format: DashboardFormat,
  renderChart: DashboardChart,
  renderStats: DashboardStats,
) {
  const { byTestId, el, facts, rows } = dom;
  const { count, measure, plain, shortTime, utc, words } = format;

  /** Failing items first, then by name, so trouble is at the top of a table. */
  function failingFirst<T extends { name: string }>(
    list: readonly T[],
    failing: (item: T) => boolean,
  ): T[] {
    return list.slice().sort((a, b) =>
      (failing(b) ? 1 : 0) - (failing(a) ? 1 : 0) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    );
  }

  function renderChecks(checks: Checks | null): void {
    const list = checks ? Object.entries(checks).map(([name, check]) => ({ name, check })) : [];
    rows(
      'checks',
      failingFirst(list, (item) => !item.check.ok).map(({ name, check }) =>
        el('tr', {
          'data-testid': `check-${name}`,
          'data-ok': String(!!check.ok),
          class: check.ok ? '' : 'failing',
        }, [
          el('td', {}, [words(name)]),
          el('td', { class: check.ok ? 'status-ok' : 'status-bad' }, [check.ok ? 'ok' : 'failing']),
          el('td', { class: 'num', 'data-testid': `check-${name}-value` }, [
            measure(name, check.value),
          ]),
          el('td', { class: 'num' }, [
            measure(name, 'threshold' in check ? check.threshold : undefined),
          ]),
        ])
      ),
      'No checks: the database could not be asked.',
      4,
    );
  }

  function renderAlerts(operations: OperationsStats | null): void {
    const alerts = operations ? operations.alerts || [] : [];
    rows(
      'alerts',
      failingFirst(alerts, (alert) => alert.firing).map((alert) =>
        el('tr', {
          'data-testid': `alert-${alert.name}`,
          'data-firing': String(!!alert.firing),
          class: alert.firing ? 'firing' : '',
        }, [
          el('td', { 'data-testid': 'alert-name' }, [alert.name]),
          el('td', { 'data-testid': 'alert-state' }, [alert.firing ? 'FIRING' : 'ok']),
          el('td', {
            class: 'time',
            'data-testid': 'alert-since',
            title: alert.firing ? utc(alert.since) : null,
          }, [
            alert.firing && alert.since ? `${shortTime(Date.parse(alert.since), true)} UTC` : '—',
          ]),
          el('td', { class: 'num' }, [measure(alert.name, alert.value)]),
          el('td', { class: 'num' }, [
            alert.threshold === null ? '—' : measure(alert.name, alert.threshold),
          ]),
        ])
      ),
      operations ? 'No alert has been evaluated yet.' : 'Unavailable.',
      5,
    );
  }

  function renderOutbox(operations: OperationsStats | null): void {
    const d = operations ? operations.alert_deliveries : null;
    if (!d) {
      facts('outbox', [['Outbox', 'outbox-unavailable', 'unavailable']]);
      return;
    }
    facts('outbox', [
      ['Pending', 'outbox-pending', count(d.pending)],
      [
        'Undeliverable',
        'outbox-undeliverable',
        count(d.undeliverable),
        Number(d.undeliverable) > 0,
      ],
      [
        'Last error',
        'outbox-last-error',
        d.last_error === null || d.last_error === undefined ? 'none' : String(d.last_error),
        !!d.last_error,
      ],
      [
        'Last delivered',
        'outbox-last-delivered',
        d.last_delivered_at ? utc(d.last_delivered_at) : 'never',
      ],
    ]);
  }

  /** A nested object as [label, text] pairs, labels being the key path in words. */
  function flatten(
    prefix: string,
    value: unknown,
    out: Array<[string, string]>,
  ): Array<[string, string]> {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) {
        flatten(prefix ? `${prefix} ${key}` : key, inner, out);
      }
    } else {
      out.push([words(prefix), plain(value)]);
    }
    return out;
  }

  function renderReconciler(operations: OperationsStats | null): void {
    if (!operations) {
      facts('reconciler', [['Reconciler', 'reconciler-unavailable', 'unavailable']]);
      return;
    }
    const r = operations.reconciler;
    if (!r) {
      facts('reconciler', [['Last run', 'reconciler-last-run-at', 'never']]);
      return;
    }
    facts('reconciler', [
      ['Last run', 'reconciler-last-run-at', utc(r.last_run_at)],
      ...flatten('', r.last_run || {}, []).map((
        [label, value],
      ): [string, string, string] => [
        label,
        `reconciler-${label.replace(/[^a-z0-9]+/gi, '-')}`,
        value,
      ]),
    ]);
  }

  /** Draws one answer of profile-health (its HTTP status alongside) for the window the page has selected. */
  return function render(data: DashboardBody, httpStatus: number, selectedWindow: string): void {
    byTestId('token-form').hidden = true;
    byTestId('dashboard').hidden = false;
    const verdict = byTestId('verdict');
    verdict.textContent = data.status;
    verdict.className = `pill ${
      ['ok', 'degraded', 'down'].includes(data.status) ? data.status : ''
    }`;
    const checked = byTestId('checked-at');
    checked.textContent = utc(data.checked_at);
    checked.setAttribute('datetime', data.checked_at || '');
    document.title = `Profile system: ${data.status}`;

    const banner = byTestId('load-error');
    if (data.error) {
      banner.hidden = false;
      banner.textContent = `profile-health answered HTTP ${httpStatus}: ${words(data.error)}.`;
    } else if (!data.operations) {
      banner.hidden = false;
      banner.textContent =
        'Operations figures (series, alerts, outbox, reconciler) are unavailable: is profile_operations_stats deployed?';
    } else {
      banner.hidden = true;
      banner.textContent = '';
    }

    renderChecks(data.checks || null);
    renderStats(data.stats || null, data.checks || null);
    renderChart(data.operations || null, data.stats || null, data.checks || null);
    renderAlerts(data.operations || null);
    renderOutbox(data.operations || null);
    renderReconciler(data.operations || null);
    document.body.setAttribute('data-state', 'ready');
    document.body.setAttribute('data-window', selectedWindow);
  };
}

export type DashboardPanels = ReturnType<typeof dashboardPanels>;
