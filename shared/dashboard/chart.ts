/// <reference lib="dom" />
// The success-rate chart: one SVG bar per bucket of profile_operations_stats' series, coloured
// against the success_rate check's threshold. Runs in the browser: script.ts embeds this
// factory's source, so it may use no import and no module-level value at run time.
import type { SystemHealth, SystemStats } from '../profile-contract.ts';
import type { DashboardDom } from './dom.ts';
import type { DashboardFormat } from './format.ts';
import type { OperationsStats } from '../rpc-results.ts';

export function dashboardChart(dom: DashboardDom, format: DashboardFormat) {
  const { byTestId, clear, el, svg, text } = dom;
  const { age, count, percent, shortTime, utc } = format;

  return function renderChart(
    operations: OperationsStats | null,
    stats: SystemStats | null,
    checks: SystemHealth['checks'] | null,
  ): void {
    const box = clear(byTestId('chart-box'));
    if (!operations || !stats) {
      text('chart-caption', '');
      box.appendChild(el('p', { class: 'empty' }, ['No series.']));
      return;
    }
    const series = operations.series || [];
    const bucket = Number(operations.bucket_seconds) * 1000;
    const threshold = checks && checks.success_rate ? Number(checks.success_rate.threshold) : null;
    // Buckets are aligned to whole multiples of their size (date_bin from 2000-01-01 UTC): the
    // axis runs from the bucket holding the window's start to the end of the current bucket.
    const to = Date.parse(stats.window.to);
    let start = Math.floor((to - Number(stats.window.seconds) * 1000) / bucket) * bucket;
    const end = Math.ceil(to / bucket) * bucket;
    for (const point of series) start = Math.min(start, Date.parse(point.at));
    const span = Math.max(end - start, bucket);
    text(
      'chart-caption',
      `· ${series.length} bucket${series.length === 1 ? '' : 's'} of ${
        age(operations.bucket_seconds)
      }, times in UTC`,
    );

    const W = 960, H = 240, left = 48, right = 16, top = 14, bottom = 28;
    const plotW = W - left - right, plotH = H - top - bottom;
    const x = (ms: number) => left + (ms - start) / span * plotW;
    const y = (rate: number) => top + (1 - rate) * plotH;
    const chart = svg('svg', {
      class: 'chart',
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': 'Success rate per bucket',
      'data-testid': 'success-chart',
    });
    for (const rate of [0, 0.25, 0.5, 0.75, 1]) {
      chart.appendChild(
        svg('line', { class: 'grid-line', x1: left, x2: W - right, y1: y(rate), y2: y(rate) }),
      );
      chart.appendChild(
        svg('text', { x: left - 6, y: y(rate) + 4, 'text-anchor': 'end' }, [
          `${Math.round(rate * 100)}%`,
        ]),
      );
    }
    // Time ticks on round UTC times: the smallest step that gives at most 6 of them.
    const steps = [300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800].map((s) =>
      s * 1000
    );
    const step = steps.find((s) => span / s <= 6) ?? 172800000;
    const withDate = span > 86400000 || new Date(start).getUTCDate() !== new Date(end).getUTCDate();
    for (let tick = Math.ceil(start / step) * step; tick <= end; tick += step) {
      const tx = x(tick);
      chart.appendChild(
        svg('line', { class: 'grid-line', x1: tx, x2: tx, y1: top, y2: top + plotH + 4 }),
      );
      const anchor = tx < left + 40 ? 'start' : tx > W - right - 40 ? 'end' : 'middle';
      chart.appendChild(
        svg('text', { x: tx, y: H - 8, 'text-anchor': anchor }, [shortTime(tick, withDate)]),
      );
    }
    const barW = Math.max(2, bucket / span * plotW - 2);
    const marks = svg('g', { 'data-testid': 'chart-marks' });
    for (const point of series) {
      const at = Date.parse(point.at);
      const rate = point.success_rate === null ? null : Number(point.success_rate);
      const low = rate !== null && threshold !== null && rate < threshold;
      const h = rate === null ? 3 : Math.max(2, rate * plotH);
      const attempts = point.created + point.existed + point.failed;
      const title =
        `${utc(point.at)}: ${rate === null ? 'no counted attempts' : percent(rate)} of ${
          count(attempts)
        } ` +
        `(${count(point.created)} created, ${count(point.existed)} existed, ${
          count(point.failed)
        } failed, ${count(point.skipped)} skipped)`;
      marks.appendChild(svg('rect', {
        class: `mark ${rate === null ? 'none' : low ? 'low' : 'good'}`,
        'data-testid': 'chart-mark',
        'data-at': point.at,
        'data-rate': rate === null ? 'none' : String(rate),
        x: (x(at) + 1).toFixed(2),
        y: (top + plotH - h).toFixed(2),
        width: barW.toFixed(2),
        height: h.toFixed(2),
        rx: 1,
      }, [svg('title', {}, [title])]));
    }
    chart.appendChild(marks);
    if (threshold !== null) {
      chart.appendChild(
        svg('line', {
          class: 'threshold',
          x1: left,
          x2: W - right,
          y1: y(threshold),
          y2: y(threshold),
        }),
      );
      chart.appendChild(
        svg('text', {
          class: 'threshold-label',
          x: W - right - 4,
          y: y(threshold) - 4,
          'text-anchor': 'end',
        }, [`threshold ${percent(threshold)}`]),
      );
    }
    if (!series.length) {
      chart.appendChild(
        svg('text', { x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' }, [
          'No attempts in this window',
        ]),
      );
    }
    box.appendChild(chart);
  };
}

export type DashboardChart = ReturnType<typeof dashboardChart>;
