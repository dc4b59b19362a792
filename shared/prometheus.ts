// Prometheus / OpenMetrics text for profile-health's ?format=prometheus.
import type { SystemHealth, SystemStats } from './profile-contract.ts';

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

// The stats round milliseconds to 3 decimals, so whole microseconds lose nothing, and a scraper
// sees 0.0231 rather than the 0.023100000000000002 of 23.1 / 1000.
function msToSeconds(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 1000) / 1e6;
}

class Metrics {
  private readonly lines: string[] = [];
  gauge(name: string, help: string, samples: Array<[Labels, number | null | undefined]>): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      if (value === null || value === undefined || Number.isNaN(value)) continue;
      const rendered = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      this.lines.push(`${name}${rendered ? `{${rendered}}` : ''} ${value}`);
    }
  }
  text(): string {
    return `${this.lines.join('\n')}\n# EOF\n`;
  }
}

export function renderPrometheus(health: SystemHealth, stats: SystemStats): string {
  const m = new Metrics();
  m.gauge(
    'profile_health_status',
    'Current verdict of profile_system_health (1 for the current status).',
    (['ok', 'degraded', 'down'] as const).map((s) => [{ status: s }, health.status === s ? 1 : 0]),
  );
  m.gauge(
    'profile_health_check_ok',
    'Whether each health check passes (1) or fails (0).',
    Object.entries(health.checks).map(([check, c]) => [{ check }, c.ok ? 1 : 0]),
  );
  m.gauge(
    'profile_missing_profiles',
    'Auth users certainly without a profile that nothing is repairing.',
    [[{}, stats.missing_profiles]],
  );
  // A timestamp, not an age, so an alert rule can say time() - x > 86400 without a scrape skewing
  // it; absent until the census's safety-net scan has finished its first pass.
  const lastScan = health.checks.missing_profiles.last_full_scan_at;
  m.gauge(
    'profile_census_full_scan_timestamp_seconds',
    'When the census last finished checking every auth user (Unix seconds).',
    [[{}, lastScan ? Date.parse(lastScan) / 1000 : null]],
  );
  m.gauge('profile_repair_queue_open', 'Open repair-queue entries.', [[
    {},
    stats.repair_queue.open,
  ]]);
  m.gauge('profile_repair_queue_oldest_age_seconds', 'Age of the oldest open repair-queue entry.', [
    [{}, stats.repair_queue.oldest_age_seconds],
  ]);
  m.gauge('profile_window_seconds', 'Length of the window the attempt figures cover.', [[
    {},
    stats.window.seconds,
  ]]);
  m.gauge(
    'profile_attempts',
    'Profile attempts in the window by source and outcome.',
    Object.entries(stats.attempts.by_source).flatMap(([source, outcomes]) =>
      Object.entries(outcomes).map((
        [outcome, n],
      ): [Labels, number] => [{ source, outcome }, n ?? 0])
    ),
  );
  m.gauge(
    'profile_success_rate',
    'Share of created or existed among created, existed and failed in the window.',
    [[{}, stats.success_rate]],
  );
  // Gauges, not a summary: a summary's _sum and _count are counters since start, and the stats
  // only hold percentiles of a moving window; a quantile label is for summaries alone, so the
  // label is percentile, named as in the JSON stats.
  m.gauge(
    'profile_attempt_latency_seconds',
    'Latency percentiles (p50, p95, p99) of attempts in the window.',
    (['p50', 'p95', 'p99'] as const).map((
      p,
    ) => [{ percentile: p }, msToSeconds(stats.latency_ms[p])]),
  );
  m.gauge(
    'profile_failures',
    'Failed attempts in the window by SQLSTATE.',
    stats.failures_by_sqlstate.map((f): [Labels, number] => [{ sqlstate: f.sqlstate }, f.count]),
  );
  return m.text();
}
