// The operator dashboard that profile-health serves for ?format=html: one self-contained page
// (inline CSS and JS, no build step, no external request) that carries no data. Its script takes
// the health token from the URL fragment (#token=…, which browsers never send to servers) or
// from a form (kept in sessionStorage), fetches the same function as JSON with x-health-token,
// and draws every figure with textContent and SVG elements: nothing from the data is ever parsed
// as HTML, because audit messages are user-influenced.
// Runtime-neutral: no imports, runs under Deno and Node alike.

/** What public.profile_operations_stats(p_window) returns (20261121130200_operations-stats.sql). */
export interface OperationsStats {
  bucket_seconds: number;
  series: Array<{
    at: string;
    created: number;
    existed: number;
    failed: number;
    skipped: number;
    success_rate: number | null;
  }>;
  alerts: Array<{
    name: string;
    firing: boolean;
    since: string | null;
    value: unknown;
    threshold: unknown;
    evaluated_at: string;
  }>;
  alert_deliveries: {
    pending: number;
    undeliverable: number;
    last_error: string | null;
    last_delivered_at: string | null;
  };
  reconciler: { last_run_at: string; last_run: Record<string, unknown> } | null;
}

/** A fresh CSP nonce: 128 random bits, base64. */
export function cspNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * The page's headers: a policy that lets only this page's own nonce-tagged script and style run,
 * lets it talk to its own origin only, and forbids framing; never cached.
 */
export function dashboardHeaders(nonce: string): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      'img-src data:',
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'Cache-Control': 'no-store',
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
}

const STYLE = `
:root {
  --bg: #f3f5f8; --card: #ffffff; --ink: #1b2430; --muted: #5d6b7c; --line: #dfe4eb;
  --ok: #1f8a4c; --ok-bg: #e3f4ea; --warn: #a96800; --warn-bg: #fff1d6; --bad: #c0322b; --bad-bg: #fde6e4;
  --accent: #2f5bd3; --none: #b7c0cc;
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body { background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 20px; padding: 14px 24px; background: var(--card); border-bottom: 1px solid var(--line); }
header.top h1 { font-size: 18px; margin: 0; font-weight: 650; }
.pill { display: inline-block; padding: 3px 12px; border-radius: 999px; font-weight: 700; letter-spacing: .04em; text-transform: uppercase; font-size: 12px; background: var(--line); color: var(--ink); }
.pill.ok { background: var(--ok-bg); color: var(--ok); }
.pill.degraded { background: var(--warn-bg); color: var(--warn); }
.pill.down { background: var(--bad-bg); color: var(--bad); }
.meta { color: var(--muted); }
.spacer { flex: 1; }
.controls { display: inline-flex; flex-wrap: wrap; align-items: center; gap: 12px; }
body[data-state="need-token"] .controls, body[data-state="need-token"] [data-testid="verdict"] { visibility: hidden; }
.segmented { display: inline-flex; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.segmented button { border: 0; border-right: 1px solid var(--line); background: var(--card); padding: 6px 14px; font: inherit; cursor: pointer; color: var(--ink); }
.segmented button:last-child { border-right: 0; }
.segmented button[aria-pressed="true"] { background: var(--accent); color: #fff; }
button.plain { border: 1px solid var(--line); background: var(--card); border-radius: 8px; padding: 6px 12px; font: inherit; cursor: pointer; color: var(--ink); }
main { padding: 20px 24px 32px; max-width: 1400px; margin: 0 auto; }
.banner { padding: 10px 14px; border-radius: 8px; margin-bottom: 16px; background: var(--bad-bg); color: var(--bad); font-weight: 600; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 16px; }
.kpi { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.kpi .value { font-size: 26px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.kpi .sub { color: var(--muted); font-size: 12px; margin-top: 2px; }
.kpi.bad { border-color: #f0b8b3; background: var(--bad-bg); }
.kpi.bad .value { color: var(--bad); }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; margin-bottom: 16px; }
@media (max-width: 900px) { .grid { grid-template-columns: minmax(0, 1fr); } }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; margin-bottom: 16px; min-width: 0; overflow-x: auto; }
.grid > section.card { margin-bottom: 0; }
section.card h2 { font-size: 14px; margin: 0 0 10px; font-weight: 650; }
section.card h2 .meta { font-weight: 400; margin-left: 6px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.time { white-space: nowrap; }
tr:last-child td { border-bottom: 0; }
tr.firing td { background: var(--bad-bg); color: var(--bad); font-weight: 600; }
tr.failing td { color: var(--bad); font-weight: 600; }
.example { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
.empty { color: var(--muted); font-style: italic; }
.status-ok { color: var(--ok); font-weight: 700; }
.status-bad { color: var(--bad); font-weight: 700; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-word; }
dl.facts dd.bad { color: var(--bad); font-weight: 600; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { font-size: 11px; fill: var(--muted); }
svg.chart .grid-line { stroke: var(--line); stroke-width: 1; }
svg.chart .threshold { stroke: var(--bad); stroke-width: 1; stroke-dasharray: 5 4; }
svg.chart .threshold-label { fill: var(--bad); }
svg.chart rect.mark.good { fill: var(--ok); }
svg.chart rect.mark.low { fill: var(--bad); }
svg.chart rect.mark.none { fill: var(--none); }
.legend { display: flex; gap: 16px; color: var(--muted); font-size: 12px; margin-top: 6px; }
.legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; background: var(--none); }
.legend .good::before { background: var(--ok); }
.legend .low::before { background: var(--bad); }
form.token { max-width: 460px; margin: 48px auto; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px; }
form.token h2 { margin: 0 0 8px; font-size: 16px; }
form.token p { color: var(--muted); margin: 0 0 12px; }
form.token input { width: 100%; padding: 8px 10px; font: inherit; border: 1px solid var(--line); border-radius: 8px; margin-bottom: 10px; }
form.token .error { color: var(--bad); font-weight: 600; margin-bottom: 10px; }
[hidden] { display: none !important; }
footer { color: var(--muted); font-size: 12px; padding: 0 24px 24px; text-align: center; }
`;

const BODY = `
<header class="top">
  <h1>Profile system</h1>
  <span class="pill" data-testid="verdict">…</span>
  <span class="meta">checked <time data-testid="checked-at">—</time></span>
  <span class="spacer"></span>
  <span class="controls">
  <span class="meta">Window</span>
  <div class="segmented" role="group" aria-label="Window">
    <button type="button" data-window="1h" data-testid="window-1h" aria-pressed="false">1h</button>
    <button type="button" data-window="24h" data-testid="window-24h" aria-pressed="true">24h</button>
    <button type="button" data-window="7d" data-testid="window-7d" aria-pressed="false">7d</button>
  </div>
  <button type="button" class="plain" data-testid="refresh">Refresh</button>
  <button type="button" class="plain" data-testid="forget-token">Forget token</button>
  </span>
</header>
<form class="token" data-testid="token-form" hidden>
  <h2>Health token</h2>
  <p>Enter PROFILE_HEALTH_TOKEN (or a secret key). It stays in this tab's session storage and is only sent to this function.</p>
  <div class="error" data-testid="token-error" hidden></div>
  <input type="password" name="token" autocomplete="off" data-testid="token-input" aria-label="Health token" required>
  <button type="submit" class="plain">Open dashboard</button>
</form>
<main data-testid="dashboard" hidden>
  <div class="banner" data-testid="load-error" hidden></div>
  <div class="kpis">
    <div class="kpi" data-kpi="success-rate"><div class="label">Success rate</div><div class="value" data-testid="success-rate">—</div><div class="sub" data-testid="success-rate-sub"></div></div>
    <div class="kpi" data-kpi="attempts"><div class="label">Attempts</div><div class="value" data-testid="attempts-total">—</div><div class="sub" data-testid="attempts-failed"></div></div>
    <div class="kpi" data-kpi="missing"><div class="label">Missing profiles</div><div class="value" data-testid="missing-profiles">—</div><div class="sub" data-testid="missing-profiles-sub"></div></div>
    <div class="kpi" data-kpi="queue"><div class="label">Repair queue open</div><div class="value" data-testid="queue-open">—</div><div class="sub" data-testid="queue-max-attempts"></div></div>
    <div class="kpi" data-kpi="queue-age"><div class="label">Oldest open entry</div><div class="value" data-testid="queue-oldest-age">—</div><div class="sub" data-testid="queue-oldest-at"></div></div>
    <div class="kpi" data-kpi="latency"><div class="label">Latency p95</div><div class="value" data-testid="latency-p95">—</div><div class="sub" data-testid="latency-sub"></div></div>
  </div>
  <section class="card">
    <h2>Success rate over time <span class="meta" data-testid="chart-caption"></span></h2>
    <div data-testid="chart-box"></div>
    <div class="legend"><span class="good">at or above threshold</span><span class="low">below threshold</span><span class="none">only skipped attempts</span></div>
  </section>
  <div class="grid">
    <section class="card"><h2>Checks</h2><table data-testid="checks"><thead><tr><th>Check</th><th>State</th><th class="num">Value</th><th class="num">Threshold</th></tr></thead><tbody></tbody></table></section>
    <section class="card"><h2>Alerts</h2><table data-testid="alerts"><thead><tr><th>Alert</th><th>State</th><th>Since</th><th class="num">Value</th><th class="num">Threshold</th></tr></thead><tbody></tbody></table></section>
  </div>
  <div class="grid">
    <section class="card"><h2>Attempts by outcome</h2><table data-testid="outcomes"><thead><tr><th>Outcome</th><th class="num">Attempts</th><th class="num">Share</th></tr></thead><tbody></tbody></table></section>
    <section class="card"><h2>Attempts by source</h2><table data-testid="sources"><thead><tr><th>Source</th><th class="num">Created</th><th class="num">Existed</th><th class="num">Failed</th><th class="num">Skipped</th></tr></thead><tbody></tbody></table></section>
  </div>
  <section class="card"><h2>Failures by SQLSTATE</h2><table data-testid="failures"><thead><tr><th>SQLSTATE</th><th class="num">Count</th><th>Last</th><th>Example message</th></tr></thead><tbody></tbody></table></section>
  <div class="grid">
    <section class="card"><h2>Alert outbox</h2><dl class="facts" data-testid="outbox"></dl></section>
    <section class="card"><h2>Reconciler</h2><dl class="facts" data-testid="reconciler"></dl></section>
  </div>
</main>
<footer>profile-health dashboard · figures from profile_system_health, profile_system_stats and profile_operations_stats · refreshes every minute</footer>
`;

// Plain ES2017 in a string: no build step. It must never assign data to innerHTML (or anything
// else that parses markup); every text goes through textContent or setAttribute.
const SCRIPT = `
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var STORE = 'profile-health-token';
  var WINDOWS = ['1h', '24h', '7d'];
  var OUTCOMES = ['created', 'existed', 'failed', 'skipped'];
  var state = { window: '24h', token: null, timer: null, loading: false };

  function $(testid) { return document.querySelector('[data-testid="' + testid + '"]'); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAll(node, attrs, children);
    return node;
  }
  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG, tag);
    setAll(node, attrs, children);
    return node;
  }
  function setAll(node, attrs, children) {
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function text(testid, value) { var node = $(testid); if (node) node.textContent = value; return node; }

  function count(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'); }
  function percent(rate) { return rate === null || rate === undefined ? '—' : (Number(rate) * 100).toFixed(2) + '%'; }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function utc(iso) {
    if (!iso) return '—';
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + ' UTC';
  }
  function shortTime(ms, withDate) {
    var d = new Date(ms);
    var hm = pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
    return withDate ? pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' + hm : hm;
  }
  function age(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    var s = Math.floor(Number(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (d > 0) return d + 'd ' + pad(h) + 'h ' + pad(m) + 'm';
    if (h > 0) return h + 'h ' + pad(m) + 'm ' + pad(r) + 's';
    if (m > 0) return m + 'm ' + pad(r) + 's';
    return r + 's';
  }
  function plain(value) {
    if (value === null || value === undefined) return '—';
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }
  function words(name) { return String(name).replace(/_/g, ' '); }
  /** A check's or an alert's value or threshold, in the unit its name implies. */
  function measure(name, value) {
    if (value === undefined) return '';
    if (name === 'success_rate') return value === null ? 'no attempts' : percent(value);
    if (name === 'repair_queue_age') return value === null ? 'empty' : age(value);
    return plain(value);
  }
  function failingFirst(list, failing) {
    return list.slice().sort(function (a, b) { return (failing(b) ? 1 : 0) - (failing(a) ? 1 : 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0); });
  }

  // ---- token -------------------------------------------------------------------------------
  function readFragment() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ''));
    var token = params.get('token');
    var win = params.get('window');
    if (win && WINDOWS.indexOf(win) >= 0) state.window = win;
    if (token) {
      try { sessionStorage.setItem(STORE, token); } catch (e) { /* storage may be off */ }
      state.token = token;
    }
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    if (!state.token) {
      try { state.token = sessionStorage.getItem(STORE); } catch (e) { state.token = null; }
    }
  }
  function askForToken(message) {
    document.body.setAttribute('data-state', 'need-token');
    $('dashboard').hidden = true;
    $('token-form').hidden = false;
    var error = $('token-error');
    error.hidden = !message;
    error.textContent = message || '';
    $('token-input').focus();
  }

  // ---- data ----------------------------------------------------------------------------------
  function load() {
    if (!state.token) { askForToken(''); return; }
    if (state.loading) return;
    state.loading = true;
    document.body.setAttribute('data-state', 'loading');
    var url = new URL(location.href);
    url.hash = '';
    url.search = '?format=json&include=operations&window=' + encodeURIComponent(state.window);
    fetch(url.toString(), { headers: { 'x-health-token': state.token, accept: 'application/json' }, cache: 'no-store', credentials: 'omit' })
      .then(function (response) {
        return response.text().then(function (body) {
          var data = null;
          try { data = JSON.parse(body); } catch (e) { data = null; }
          return { status: response.status, data: data };
        });
      })
      .then(function (answer) {
        state.loading = false;
        if (answer.status === 401 || answer.status === 403) {
          try { sessionStorage.removeItem(STORE); } catch (e) { /* ignore */ }
          state.token = null;
          askForToken('That token was not accepted (HTTP ' + answer.status + ').');
          return;
        }
        if (!answer.data || typeof answer.data !== 'object' || !answer.data.status) {
          showError('profile-health answered HTTP ' + answer.status + ' without a health body.');
          return;
        }
        render(answer.data, answer.status);
      })
      .catch(function (error) {
        state.loading = false;
        showError('Could not reach profile-health: ' + (error && error.message ? error.message : String(error)));
      });
  }
  function showError(message) {
    $('token-form').hidden = true;
    $('dashboard').hidden = false;
    var banner = $('load-error');
    banner.hidden = false;
    banner.textContent = message;
    document.body.setAttribute('data-state', 'error');
  }

  // ---- render --------------------------------------------------------------------------------
  function render(data, httpStatus) {
    $('token-form').hidden = true;
    $('dashboard').hidden = false;
    var verdict = $('verdict');
    verdict.textContent = data.status;
    verdict.className = 'pill ' + (['ok', 'degraded', 'down'].indexOf(data.status) >= 0 ? data.status : '');
    var checked = $('checked-at');
    checked.textContent = utc(data.checked_at);
    checked.setAttribute('datetime', data.checked_at || '');
    document.title = 'Profile system: ' + data.status;

    var banner = $('load-error');
    if (data.error) {
      banner.hidden = false;
      banner.textContent = 'profile-health answered HTTP ' + httpStatus + ': ' + words(data.error) + '.';
    } else if (!data.operations) {
      banner.hidden = false;
      banner.textContent = 'Operations figures (series, alerts, outbox, reconciler) are unavailable: is profile_operations_stats deployed?';
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
    document.body.setAttribute('data-window', state.window);
  }

  function rows(testid, list, empty, columns) {
    var body = clear($(testid).querySelector('tbody'));
    if (!list.length) {
      body.appendChild(el('tr', {}, [el('td', { colspan: columns, class: 'empty' }, [empty])]));
    }
    list.forEach(function (row) { body.appendChild(row); });
  }

  function renderChecks(checks) {
    var list = checks ? Object.keys(checks).map(function (name) { return { name: name, check: checks[name] }; }) : [];
    rows('checks', failingFirst(list, function (item) { return !item.check.ok; }).map(function (item) {
      var name = item.name, check = item.check;
      return el('tr', { 'data-testid': 'check-' + name, 'data-ok': String(!!check.ok), class: check.ok ? '' : 'failing' }, [
        el('td', {}, [words(name)]),
        el('td', { class: check.ok ? 'status-ok' : 'status-bad' }, [check.ok ? 'ok' : 'failing']),
        el('td', { class: 'num', 'data-testid': 'check-' + name + '-value' }, [measure(name, check.value)]),
        el('td', { class: 'num' }, [measure(name, check.threshold)]),
      ]);
    }), 'No checks: the database could not be asked.', 4);
  }

  function renderStats(stats, checks) {
    var kpi = function (key, bad) { var node = document.querySelector('[data-kpi="' + key + '"]'); if (node) node.className = 'kpi' + (bad ? ' bad' : ''); };
    if (!stats) {
      ['success-rate', 'attempts-total', 'missing-profiles', 'queue-open', 'queue-oldest-age', 'latency-p95'].forEach(function (id) { text(id, '—'); });
      ['success-rate-sub', 'attempts-failed', 'missing-profiles-sub', 'queue-max-attempts', 'queue-oldest-at', 'latency-sub'].forEach(function (id) { text(id, ''); });
      rows('outcomes', [], 'No statistics.', 3);
      rows('sources', [], 'No statistics.', 5);
      rows('failures', [], 'No statistics.', 4);
      return;
    }
    var byOutcome = stats.attempts.by_outcome || {};
    var threshold = checks && checks.success_rate ? checks.success_rate.threshold : null;
    text('success-rate', percent(stats.success_rate));
    text('success-rate-sub', threshold === null ? 'over the window' : 'alert below ' + percent(threshold));
    kpi('success-rate', threshold !== null && stats.success_rate !== null && stats.success_rate < threshold);
    text('attempts-total', count(stats.attempts.total));
    text('attempts-failed', count(byOutcome.failed) + ' failed');
    kpi('attempts', false);
    text('missing-profiles', count(stats.missing_profiles));
    text('missing-profiles-sub', checks && checks.missing_profiles ? count(checks.missing_profiles.queued) + ' more in the repair queue' : '');
    kpi('missing', checks && checks.missing_profiles ? !checks.missing_profiles.ok : stats.missing_profiles > 0);
    var queue = stats.repair_queue || {};
    text('queue-open', count(queue.open));
    text('queue-max-attempts', 'most attempts: ' + count(queue.max_attempts));
    text('queue-oldest-age', age(queue.oldest_age_seconds));
    text('queue-oldest-at', queue.oldest_failed_at ? 'since ' + utc(queue.oldest_failed_at) : 'queue is empty');
    kpi('queue', false);
    kpi('queue-age', checks && checks.repair_queue_age ? !checks.repair_queue_age.ok : false);
    var latency = stats.latency_ms || {};
    text('latency-p95', latency.p95 === null || latency.p95 === undefined ? '—' : latency.p95 + ' ms');
    text('latency-sub', 'p50 ' + plain(latency.p50) + ' · p99 ' + plain(latency.p99) + ' · max ' + plain(latency.max) + ' ms');
    kpi('latency', false);

    var total = Number(stats.attempts.total) || 0;
    rows('outcomes', OUTCOMES.map(function (outcome) {
      var n = Number(byOutcome[outcome] || 0);
      return el('tr', { 'data-testid': 'outcome-' + outcome }, [
        el('td', {}, [outcome]),
        el('td', { class: 'num', 'data-testid': 'outcome-' + outcome + '-count' }, [count(n)]),
        el('td', { class: 'num' }, [total ? (n / total * 100).toFixed(1) + '%' : '—']),
      ]);
    }), '', 3);

    var sources = Object.keys(stats.attempts.by_source || {}).sort();
    rows('sources', sources.map(function (source) {
      var outcomes = stats.attempts.by_source[source] || {};
      return el('tr', { 'data-testid': 'source-' + source }, [el('td', {}, [source])].concat(OUTCOMES.map(function (outcome) {
        return el('td', { class: 'num', 'data-testid': 'source-' + source + '-' + outcome }, [count(outcomes[outcome] || 0)]);
      })));
    }), 'No attempts in this window.', 5);

    rows('failures', (stats.failures_by_sqlstate || []).map(function (failure) {
      return el('tr', { 'data-testid': 'failure-' + failure.sqlstate }, [
        el('td', { 'data-testid': 'failure-sqlstate' }, [failure.sqlstate]),
        el('td', { class: 'num', 'data-testid': 'failure-count' }, [count(failure.count)]),
        el('td', { class: 'time', 'data-testid': 'failure-last-at' }, [utc(failure.last_at)]),
        el('td', { class: 'example', 'data-testid': 'failure-example' }, [failure.example === null ? '—' : String(failure.example)]),
      ]);
    }), 'No failures in this window.', 4);
  }

  function renderChart(operations, stats, checks) {
    var box = clear($('chart-box'));
    if (!operations || !stats) {
      text('chart-caption', '');
      box.appendChild(el('p', { class: 'empty' }, ['No series.']));
      return;
    }
    var series = operations.series || [];
    var bucket = Number(operations.bucket_seconds) * 1000;
    var threshold = checks && checks.success_rate ? Number(checks.success_rate.threshold) : null;
    // Buckets are aligned to whole multiples of their size (date_bin from 2000-01-01 UTC): the
    // axis runs from the bucket holding the window's start to the end of the current bucket.
    var to = Date.parse(stats.window.to);
    var start = Math.floor((to - Number(stats.window.seconds) * 1000) / bucket) * bucket;
    var end = Math.ceil(to / bucket) * bucket;
    series.forEach(function (point) { start = Math.min(start, Date.parse(point.at)); });
    var span = Math.max(end - start, bucket);
    text('chart-caption', '· ' + series.length + ' bucket' + (series.length === 1 ? '' : 's') + ' of ' + age(operations.bucket_seconds) + ', times in UTC');

    var W = 960, H = 240, left = 48, right = 16, top = 14, bottom = 28;
    var plotW = W - left - right, plotH = H - top - bottom;
    var x = function (ms) { return left + (ms - start) / span * plotW; };
    var y = function (rate) { return top + (1 - rate) * plotH; };
    var chart = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'Success rate per bucket', 'data-testid': 'success-chart' });
    [0, 0.25, 0.5, 0.75, 1].forEach(function (rate) {
      chart.appendChild(svg('line', { class: 'grid-line', x1: left, x2: W - right, y1: y(rate), y2: y(rate) }));
      chart.appendChild(svg('text', { x: left - 6, y: y(rate) + 4, 'text-anchor': 'end' }, [Math.round(rate * 100) + '%']));
    });
    // Time ticks on round UTC times: the smallest step that gives at most 6 of them.
    var steps = [300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800].map(function (s) { return s * 1000; });
    var step = steps.filter(function (s) { return span / s <= 6; })[0] || 172800000;
    var withDate = span > 86400000 || new Date(start).getUTCDate() !== new Date(end).getUTCDate();
    for (var tick = Math.ceil(start / step) * step; tick <= end; tick += step) {
      var tx = x(tick);
      chart.appendChild(svg('line', { class: 'grid-line', x1: tx, x2: tx, y1: top, y2: top + plotH + 4 }));
      chart.appendChild(svg('text', { x: tx, y: H - 8, 'text-anchor': tx < left + 40 ? 'start' : tx > W - right - 40 ? 'end' : 'middle' }, [shortTime(tick, withDate)]));
    }
    var barW = Math.max(2, bucket / span * plotW - 2);
    var marks = svg('g', { 'data-testid': 'chart-marks' });
    series.forEach(function (point) {
      var at = Date.parse(point.at);
      var rate = point.success_rate === null ? null : Number(point.success_rate);
      var low = rate !== null && threshold !== null && rate < threshold;
      var h = rate === null ? 3 : Math.max(2, rate * plotH);
      var attempts = point.created + point.existed + point.failed;
      var mark = svg('rect', {
        class: 'mark ' + (rate === null ? 'none' : low ? 'low' : 'good'),
        'data-testid': 'chart-mark', 'data-at': point.at, 'data-rate': rate === null ? 'none' : String(rate),
        x: (x(at) + 1).toFixed(2), y: (top + plotH - h).toFixed(2), width: barW.toFixed(2), height: h.toFixed(2), rx: 1,
      }, [svg('title', {}, [utc(point.at) + ': ' + (rate === null ? 'no counted attempts' : percent(rate)) + ' of ' + count(attempts) +
        ' (' + count(point.created) + ' created, ' + count(point.existed) + ' existed, ' + count(point.failed) + ' failed, ' + count(point.skipped) + ' skipped)'])]);
      marks.appendChild(mark);
    });
    chart.appendChild(marks);
    if (threshold !== null) {
      chart.appendChild(svg('line', { class: 'threshold', x1: left, x2: W - right, y1: y(threshold), y2: y(threshold) }));
      chart.appendChild(svg('text', { class: 'threshold-label', x: W - right - 4, y: y(threshold) - 4, 'text-anchor': 'end' }, ['threshold ' + percent(threshold)]));
    }
    if (!series.length) chart.appendChild(svg('text', { x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' }, ['No attempts in this window']));
    box.appendChild(chart);
  }

  function renderAlerts(operations) {
    var alerts = operations ? operations.alerts || [] : [];
    rows('alerts', failingFirst(alerts, function (alert) { return alert.firing; }).map(function (alert) {
      return el('tr', { 'data-testid': 'alert-' + alert.name, 'data-firing': String(!!alert.firing), class: alert.firing ? 'firing' : '' }, [
        el('td', { 'data-testid': 'alert-name' }, [alert.name]),
        el('td', { 'data-testid': 'alert-state' }, [alert.firing ? 'FIRING' : 'ok']),
        el('td', { class: 'time', 'data-testid': 'alert-since', title: alert.firing ? utc(alert.since) : null }, [alert.firing && alert.since ? shortTime(Date.parse(alert.since), true) + ' UTC' : '—']),
        el('td', { class: 'num' }, [measure(alert.name, alert.value)]),
        el('td', { class: 'num' }, [alert.threshold === null ? '—' : measure(alert.name, alert.threshold)]),
      ]);
    }), operations ? 'No alert has been evaluated yet.' : 'Unavailable.', 5);
  }

  function facts(testid, pairs) {
    var list = clear($(testid));
    pairs.forEach(function (pair) {
      list.appendChild(el('dt', {}, [pair[0]]));
      list.appendChild(el('dd', { 'data-testid': pair[1], class: pair[3] ? 'bad' : null }, [pair[2]]));
    });
  }

  function renderOutbox(operations) {
    var d = operations ? operations.alert_deliveries : null;
    if (!d) { facts('outbox', [['Outbox', 'outbox-unavailable', 'unavailable']]); return; }
    facts('outbox', [
      ['Pending', 'outbox-pending', count(d.pending)],
      ['Undeliverable', 'outbox-undeliverable', count(d.undeliverable), Number(d.undeliverable) > 0],
      ['Last error', 'outbox-last-error', d.last_error === null || d.last_error === undefined ? 'none' : String(d.last_error), !!d.last_error],
      ['Last delivered', 'outbox-last-delivered', d.last_delivered_at ? utc(d.last_delivered_at) : 'never'],
    ]);
  }

  function flatten(prefix, value, out) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      Object.keys(value).forEach(function (key) { flatten(prefix ? prefix + ' ' + key : key, value[key], out); });
    } else {
      out.push([words(prefix), plain(value)]);
    }
    return out;
  }

  function renderReconciler(operations) {
    if (!operations) { facts('reconciler', [['Reconciler', 'reconciler-unavailable', 'unavailable']]); return; }
    var r = operations.reconciler;
    if (!r) { facts('reconciler', [['Last run', 'reconciler-last-run-at', 'never']]); return; }
    var pairs = [['Last run', 'reconciler-last-run-at', utc(r.last_run_at)]];
    flatten('', r.last_run || {}, []).forEach(function (pair) {
      pairs.push([pair[0], 'reconciler-' + pair[0].replace(/[^a-z0-9]+/gi, '-'), pair[1]]);
    });
    facts('reconciler', pairs);
  }

  // ---- wiring --------------------------------------------------------------------------------
  function selectWindow(win) {
    state.window = win;
    Array.prototype.forEach.call(document.querySelectorAll('[data-window]'), function (button) {
      button.setAttribute('aria-pressed', String(button.getAttribute('data-window') === win));
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-window]'), function (button) {
    button.addEventListener('click', function () { selectWindow(button.getAttribute('data-window')); load(); });
  });
  $('refresh').addEventListener('click', load);
  $('forget-token').addEventListener('click', function () {
    try { sessionStorage.removeItem(STORE); } catch (e) { /* ignore */ }
    state.token = null;
    askForToken('');
  });
  $('token-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var value = $('token-input').value.trim();
    if (!value) return;
    try { sessionStorage.setItem(STORE, value); } catch (e) { /* ignore */ }
    state.token = value;
    $('token-input').value = '';
    load();
  });

  readFragment();
  selectWindow(state.window);
  load();
  state.timer = setInterval(function () { if (!document.hidden && state.token) load(); }, 60000);
})();
`;

/** The page, with the given nonce on its one style and one script element. */
export function renderDashboardHtml(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Profile system</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style>
</head>
<body data-state="loading">
${BODY}
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}
