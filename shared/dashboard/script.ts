// The dashboard page's one script, made from the client modules at load time rather than by a
// build step: each part is a self-contained function, type-checked with the DOM library, whose
// source (toString; Deno, tsx and vitest all strip the types) is written into the script. The
// parts take what they need as arguments, so this wiring is the only place that joins them.
import { dashboardChart } from './chart.ts';
import { dashboardClient } from './client.ts';
import { dashboardDom } from './dom.ts';
import { dashboardFormat } from './format.ts';
import { dashboardPanels } from './panels.ts';
import { dashboardStats } from './stats.ts';

// tsx compiles with esbuild's keepNames, which wraps named functions in calls to a __name helper
// defined outside them, so their source names a helper the page would not have: the page brings
// a no-op one (names serve stack traces only). Where types are only stripped, it goes unused.
export const DASHBOARD_SCRIPT = `
(function (__name) {
  'use strict';
  const format = (${dashboardFormat.toString()})();
  const dom = (${dashboardDom.toString()})();
  const renderChart = (${dashboardChart.toString()})(dom, format);
  const renderStats = (${dashboardStats.toString()})(dom, format);
  const render = (${dashboardPanels.toString()})(dom, format, renderChart, renderStats);
  (${dashboardClient.toString()})(dom, render);
})(function (target) { return target; });
`;
