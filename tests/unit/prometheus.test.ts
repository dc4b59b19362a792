import { describe, expect, it } from 'vitest';
import type { SystemHealth, SystemStats } from '../../shared/profile-contract.ts';
import { renderPrometheus } from '../../shared/prometheus.ts';

function health(overrides: Partial<SystemHealth> = {}): SystemHealth {
  return {
    status: 'degraded',
    checked_at: '2026-11-21T12:00:00.000Z',
    checks: {
      trigger_installed: { ok: true, value: true },
      trigger_enabled: { ok: false, value: false },
      missing_profiles: {
        ok: true,
        value: 0,
        threshold: 0,
        queued: 0,
        counted_at: '2026-11-21T11:59:30.250Z',
        last_full_scan_at: '2026-11-21T11:59:30.250Z',
      },
      success_rate: { ok: true, value: 0.995, threshold: 0.99, attempts: 200, window_seconds: 900 },
      repair_queue_age: { ok: true, value: 12.5, threshold: 900, open: 2 },
    },
    ...overrides,
  };
}

function stats(overrides: Partial<SystemStats> = {}): SystemStats {
  return {
    window: { from: '2026-11-21T11:45:00.000Z', to: '2026-11-21T12:00:00.000Z', seconds: 900 },
    attempts: {
      total: 12,
      by_outcome: { created: 7, existed: 2, failed: 2, skipped: 1 },
      by_source: {
        ensure: { created: 3, existed: 2 },
        trigger: { created: 4, failed: 1, skipped: 1 },
        webhook: { failed: 1 },
      },
    },
    success_rate: 0.8182,
    failures_by_sqlstate: [
      {
        sqlstate: '23514',
        count: 1,
        example: 'check constraint',
        last_at: '2026-11-21T11:59:00.000Z',
      },
      {
        sqlstate: 'we"ird\\state\nx',
        count: 1,
        example: null,
        last_at: '2026-11-21T11:58:00.000Z',
      },
    ],
    latency_ms: { p50: 1.25, p95: 4.5, p99: null, max: 9 },
    missing_profiles: 3,
    repair_queue: {
      open: 2,
      oldest_failed_at: '2026-11-21T11:59:47.500Z',
      oldest_age_seconds: 12.5,
      max_attempts: 3,
    },
    ...overrides,
  };
}

describe('renderPrometheus', () => {
  it('renders every gauge with HELP and TYPE, escapes labels, omits null values and ends with # EOF', () => {
    expect(renderPrometheus(health(), stats())).toBe(
      [
        '# HELP profile_health_status Current verdict of profile_system_health (1 for the current status).',
        '# TYPE profile_health_status gauge',
        'profile_health_status{status="ok"} 0',
        'profile_health_status{status="degraded"} 1',
        'profile_health_status{status="down"} 0',
        '# HELP profile_health_check_ok Whether each health check passes (1) or fails (0).',
        '# TYPE profile_health_check_ok gauge',
        'profile_health_check_ok{check="trigger_installed"} 1',
        'profile_health_check_ok{check="trigger_enabled"} 0',
        'profile_health_check_ok{check="missing_profiles"} 1',
        'profile_health_check_ok{check="success_rate"} 1',
        'profile_health_check_ok{check="repair_queue_age"} 1',
        '# HELP profile_missing_profiles Auth users certainly without a profile that nothing is repairing.',
        '# TYPE profile_missing_profiles gauge',
        'profile_missing_profiles 3',
        '# HELP profile_census_full_scan_timestamp_seconds When the census last finished checking every auth user (Unix seconds).',
        '# TYPE profile_census_full_scan_timestamp_seconds gauge',
        'profile_census_full_scan_timestamp_seconds 1795262370.25',
        '# HELP profile_repair_queue_open Open repair-queue entries.',
        '# TYPE profile_repair_queue_open gauge',
        'profile_repair_queue_open 2',
        '# HELP profile_repair_queue_oldest_age_seconds Age of the oldest open repair-queue entry.',
        '# TYPE profile_repair_queue_oldest_age_seconds gauge',
        'profile_repair_queue_oldest_age_seconds 12.5',
        '# HELP profile_window_seconds Length of the window the attempt figures cover.',
        '# TYPE profile_window_seconds gauge',
        'profile_window_seconds 900',
        '# HELP profile_attempts Profile attempts in the window by source and outcome.',
        '# TYPE profile_attempts gauge',
        'profile_attempts{source="ensure",outcome="created"} 3',
        'profile_attempts{source="ensure",outcome="existed"} 2',
        'profile_attempts{source="trigger",outcome="created"} 4',
        'profile_attempts{source="trigger",outcome="failed"} 1',
        'profile_attempts{source="trigger",outcome="skipped"} 1',
        'profile_attempts{source="webhook",outcome="failed"} 1',
        '# HELP profile_success_rate Share of created or existed among created, existed and failed in the window.',
        '# TYPE profile_success_rate gauge',
        'profile_success_rate 0.8182',
        '# HELP profile_attempt_latency_seconds Latency percentiles (p50, p95, p99) of attempts in the window.',
        '# TYPE profile_attempt_latency_seconds gauge',
        'profile_attempt_latency_seconds{percentile="p50"} 0.00125',
        'profile_attempt_latency_seconds{percentile="p95"} 0.0045',
        '# HELP profile_failures Failed attempts in the window by SQLSTATE.',
        '# TYPE profile_failures gauge',
        'profile_failures{sqlstate="23514"} 1',
        'profile_failures{sqlstate="we\\"ird\\\\state\\nx"} 1',
        '# EOF',
        '',
      ].join('\n'),
    );
  });

  it('keeps HELP and TYPE but writes no sample for a metric whose value is unknown', () => {
    const text = renderPrometheus(
      health({ status: 'ok' }),
      stats({
        success_rate: null,
        latency_ms: { p50: null, p95: null, p99: null, max: null },
        repair_queue: {
          open: 0,
          oldest_failed_at: null,
          oldest_age_seconds: null,
          max_attempts: 0,
        },
        attempts: {
          total: 0,
          by_outcome: { created: 0, existed: 0, failed: 0, skipped: 0 },
          by_source: {},
        },
        failures_by_sqlstate: [],
      }),
    );
    const lines = text.split('\n');
    expect(lines.filter((line) => line.startsWith('profile_success_rate'))).toEqual([]);
    expect(lines.filter((line) => line.startsWith('profile_attempt_latency'))).toEqual([]);
    expect(lines.filter((line) => line.startsWith('profile_repair_queue_oldest_age_seconds')))
      .toEqual([]);
    expect(lines.filter((line) => line.startsWith('profile_attempts'))).toEqual([]);
    expect(lines.filter((line) => line.startsWith('profile_failures'))).toEqual([]);
    expect(lines).toContain('# TYPE profile_success_rate gauge');
    expect(lines).toContain('# TYPE profile_failures gauge');
    expect(lines).toContain('profile_repair_queue_open 0');
    expect(lines.filter((line) => line.startsWith('profile_health_status'))).toEqual([
      'profile_health_status{status="ok"} 1',
      'profile_health_status{status="degraded"} 0',
      'profile_health_status{status="down"} 0',
    ]);
    expect(text.endsWith('\n# EOF\n')).toBe(true);
    expect(text.split('# EOF')).toHaveLength(2);
  });

  it('declares each metric family exactly once, HELP before TYPE before its samples', () => {
    const lines = renderPrometheus(health(), stats()).split('\n').filter((line) =>
      line !== '' && line !== '# EOF'
    );
    const families = lines.filter((line) => line.startsWith('# TYPE ')).map((line) =>
      line.split(' ')[2]
    );
    expect(new Set(families).size).toBe(families.length);
    let current: string | undefined;
    for (const [index, line] of lines.entries()) {
      if (line.startsWith('# HELP ')) {
        current = line.split(' ')[2];
        expect(lines[index + 1]).toBe(`# TYPE ${current} gauge`);
      } else if (!line.startsWith('# TYPE ')) {
        expect(line.startsWith(`${current}{`) || line.startsWith(`${current} `)).toBe(true);
      }
    }
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}

interface Family {
  name: string;
  help: string[];
  types: string[];
  samples: Sample[];
}

/** Groups an exposition by family, the way promtool reads it: a sample belongs to the last TYPE. */
function families(text: string): Family[] {
  const found: Family[] = [];
  const byName = (name: string): Family => {
    let family = found.find((f) => f.name === name);
    if (!family) found.push(family = { name, help: [], types: [], samples: [] });
    return family;
  };
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '' || line === '# EOF') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      current = byName(meta[2]!);
      (meta[1] === 'HELP' ? current.help : current.types).push(meta[3]!);
      continue;
    }
    const sample = /^([^{\s]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample || !current) {
      throw new Error(`not a sample line, or a sample before any TYPE: ${line}`);
    }
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? '').matchAll(/([^=,]+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    current.samples.push({ name: sample[1]!, labels, value: sample[3]! });
  }
  return found;
}

describe('renderPrometheus follows the rules promtool check metrics applies', () => {
  // Every optional value present, so every family has samples to judge.
  const full = (): Family[] =>
    families(
      renderPrometheus(
        health(),
        stats({ latency_ms: { p50: 1.25, p95: 4.5, p99: 23.1, max: 90 } }),
      ),
    );

  it('gives every metric family exactly one HELP and one TYPE, and every sample a declared family', () => {
    for (const family of full()) {
      expect(family.help, family.name).toHaveLength(1);
      expect(family.help[0], family.name).not.toBe('');
      expect(family.types, family.name).toHaveLength(1);
      expect(['counter', 'gauge', 'summary', 'histogram'], family.name).toContain(family.types[0]);
    }
  });

  it('names metrics and labels in snake_case with only the characters Prometheus allows', () => {
    for (const family of full()) {
      expect(family.name).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
      expect(family.name, 'promtool flags camelCase').toMatch(/^[a-z_:][a-z0-9_:]*$/);
      for (const sample of family.samples) {
        for (const label of Object.keys(sample.labels)) {
          expect(label).toMatch(/^[a-z_][a-z0-9_]*$/);
          expect(label.startsWith('__'), `${family.name}{${label}} is reserved`).toBe(false);
        }
      }
    }
  });

  it('names metrics in base units: seconds, never milliseconds, minutes or an abbreviated unit', () => {
    const notBase =
      /_(ms|us|ns|millis|milliseconds|microseconds|nanoseconds|minutes|hours|days|sec|secs|kb|mb|gb|kilobytes|megabytes|percent)(_|$)/;
    for (const family of full()) expect(family.name).not.toMatch(notBase);
  });

  it('ends counters, and only counters, with _total, and keeps _count, _sum and _bucket for summaries and histograms', () => {
    for (const family of full()) {
      const type = family.types[0];
      if (type === 'counter') expect(family.name).toMatch(/_total$/);
      else expect(family.name).not.toMatch(/_total$/);
      if (type !== 'summary' && type !== 'histogram') {
        for (const sample of family.samples) {
          expect(sample.name).not.toMatch(/_(count|sum|bucket)$/);
        }
      }
    }
  });

  it('puts a quantile label only on summaries and an le label only on histograms', () => {
    for (const family of full()) {
      for (const sample of family.samples) {
        if (family.types[0] !== 'summary') {
          expect(sample.labels, family.name).not.toHaveProperty('quantile');
        }
        if (family.types[0] !== 'histogram') {
          expect(sample.labels, family.name).not.toHaveProperty('le');
        }
      }
    }
  });

  it('reports attempt latency as a gauge in seconds, one sample per percentile, each the milliseconds / 1000', () => {
    const latency = full().find((family) => family.name === 'profile_attempt_latency_seconds');
    expect(latency?.types).toEqual(['gauge']);
    expect(latency?.samples).toEqual([
      { name: 'profile_attempt_latency_seconds', labels: { percentile: 'p50' }, value: '0.00125' },
      { name: 'profile_attempt_latency_seconds', labels: { percentile: 'p95' }, value: '0.0045' },
      // 23.1 / 1000 is 0.023100000000000002 in floating point; a scraper should see the decimal.
      { name: 'profile_attempt_latency_seconds', labels: { percentile: 'p99' }, value: '0.0231' },
    ]);
  });

  it('writes no sample with a value that is not a plain number', () => {
    for (const family of full()) {
      for (const sample of family.samples) {
        expect(Number.isFinite(Number(sample.value)), `${sample.name} ${sample.value}`).toBe(true);
      }
    }
  });
});
