// The dashboard page's stylesheet: served inline under the page's CSP nonce, so the page makes no
// request of its own for it.

export const DASHBOARD_STYLE = `
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
