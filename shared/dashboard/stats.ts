/// <reference lib="dom" />
// The figures of one health answer: the KPI tiles (success rate, attempts, missing profiles, the
// repair queue, latency) and the tables of outcomes, sources and failures. Runs in the browser:
// script.ts embeds this factory's source, so it may use no import and no module-level value at
// run time.
import type { SystemHealth, SystemStats } from '../profile-contract.ts';
import type { DashboardDom } from './dom.ts';
import type { DashboardFormat } from './format.ts';

type Checks = SystemHealth['checks'];

export function dashboardStats(dom: DashboardDom, format: DashboardFormat) {
  const { el, rows, text } = dom;
  const { age, count, percent, plain, utc } = format;
  const OUTCOMES = ['created', 'existed', 'failed', 'skipped'] as const;

  function kpi(key: string, bad: boolean): void {
    const node = document.querySelector(`[data-kpi="${key}"]`);
    if (node) node.className = `kpi${bad ? ' bad' : ''}`;
  }

  return function renderStats(stats: SystemStats | null, checks: Checks | null): void {
    if (!stats) {
      for (
        const id of [
          'success-rate',
          'attempts-total',
          'missing-profiles',
          'queue-open',
          'queue-oldest-age',
          'latency-p95',
        ]
      ) text(id, '—');
      for (
        const id of [
          'success-rate-sub',
          'attempts-failed',
          'missing-profiles-sub',
          'queue-max-attempts',
          'queue-oldest-at',
          'latency-sub',
        ]
      ) text(id, '');
      rows('outcomes', [], 'No statistics.', 3);
      rows('sources', [], 'No statistics.', 5);
      rows('failures', [], 'No statistics.', 4);
      return;
    }
    const byOutcome: Partial<Record<string, number>> = stats.attempts.by_outcome || {};
    const threshold = checks && checks.success_rate ? checks.success_rate.threshold : null;
    text('success-rate', percent(stats.success_rate));
    text(
      'success-rate-sub',
      threshold === null ? 'over the window' : `alert below ${percent(threshold)}`,
    );
    kpi(
      'success-rate',
      threshold !== null && stats.success_rate !== null && stats.success_rate < threshold,
    );
    text('attempts-total', count(stats.attempts.total));
    text('attempts-failed', `${count(byOutcome.failed)} failed`);
    kpi('attempts', false);
    text('missing-profiles', count(stats.missing_profiles));
    text(
      'missing-profiles-sub',
      checks && checks.missing_profiles
        ? `${count(checks.missing_profiles.queued)} more in the repair queue`
        : '',
    );
    kpi(
      'missing',
      checks && checks.missing_profiles ? !checks.missing_profiles.ok : stats.missing_profiles > 0,
    );
    const queue: Partial<SystemStats['repair_queue']> = stats.repair_queue || {};
    text('queue-open', count(queue.open));
    text('queue-max-attempts', `most attempts: ${count(queue.max_attempts)}`);
    text('queue-oldest-age', age(queue.oldest_age_seconds));
    text(
      'queue-oldest-at',
      queue.oldest_failed_at ? `since ${utc(queue.oldest_failed_at)}` : 'queue is empty',
    );
    kpi('queue', false);
    kpi('queue-age', checks && checks.repair_queue_age ? !checks.repair_queue_age.ok : false);
    const latency: Partial<SystemStats['latency_ms']> = stats.latency_ms || {};
    text(
      'latency-p95',
      latency.p95 === null || latency.p95 === undefined ? '—' : `${latency.p95} ms`,
    );
    text(
      'latency-sub',
      `p50 ${plain(latency.p50)} · p99 ${plain(latency.p99)} · max ${plain(latency.max)} ms`,
    );
    kpi('latency', false);

    const total = Number(stats.attempts.total) || 0;
    rows(
      'outcomes',
      OUTCOMES.map((outcome) => {
        const n = Number(byOutcome[outcome] || 0);
        return el('tr', { 'data-testid': `outcome-${outcome}` }, [
          el('td', {}, [outcome]),
          el('td', { class: 'num', 'data-testid': `outcome-${outcome}-count` }, [count(n)]),
          el('td', { class: 'num' }, [total ? `${(n / total * 100).toFixed(1)}%` : '—']),
        ]);
      }),
      '',
      3,
    );

    const bySource = stats.attempts.by_source || {};
    rows(
      'sources',
      Object.keys(bySource).sort().map((source) => {
        const outcomes: Partial<Record<string, number>> = bySource[source] || {};
        return el('tr', { 'data-testid': `source-${source}` }, [
          el('td', {}, [source]),
          ...OUTCOMES.map((outcome) =>
            el('td', { class: 'num', 'data-testid': `source-${source}-${outcome}` }, [
              count(outcomes[outcome] || 0),
            ])
          ),
        ]);
      }),
      'No attempts in this window.',
      5,
    );

    rows(
      'failures',
      (stats.failures_by_sqlstate || []).map((failure) =>
        el('tr', { 'data-testid': `failure-${failure.sqlstate}` }, [
          el('td', { 'data-testid': 'failure-sqlstate' }, [failure.sqlstate]),
          el('td', { class: 'num', 'data-testid': 'failure-count' }, [count(failure.count)]),
          el('td', { class: 'time', 'data-testid': 'failure-last-at' }, [utc(failure.last_at)]),
          el('td', { class: 'example', 'data-testid': 'failure-example' }, [
            failure.example === null ? '—' : String(failure.example),
          ]),
        ])
      ),
      'No failures in this window.',
      4,
    );
  };
}

export type DashboardStats = ReturnType<typeof dashboardStats>;
