// The dashboard page's static body. It holds no data: every figure starts as a placeholder that
// the client fills in, and the data-testid names are what the client and the browser tests find.

export const DASHBOARD_MARKUP = `
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
