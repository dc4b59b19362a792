// The operator dashboard that profile-health serves for ?format=html: one self-contained page
// (inline CSS and JS, no external request) that carries no data. Its script fetches the figures
// itself with the health token it is given and draws them with text nodes and SVG elements only.
import { DASHBOARD_MARKUP } from './markup.ts';
import { DASHBOARD_SCRIPT } from './script.ts';
import { DASHBOARD_STYLE } from './style.ts';

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
<style nonce="${nonce}">${DASHBOARD_STYLE}</style>
</head>
<body data-state="loading">
${DASHBOARD_MARKUP}
<script nonce="${nonce}">${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
}
