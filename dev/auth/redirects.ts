// Where /verify may send the browser, and how it hands over the session, following GoTrue's
// utilities.IsRedirectURLValid and AccessTokenResponse.AsRedirectURL.
import { isIP } from 'node:net';
import type { Context } from 'hono';
import type { AuthConfig } from './options.ts';

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Back to the site itself (scheme, host and port; any port on a loopback host, as native apps
 * need), or to a loopback IP. GoTrue's URI allow list is not modelled: the local stack has none.
 */
export function isRedirectAllowed(siteUrl: string, candidate: string | undefined | null): candidate is string {
  if (!candidate) return false;
  let site: URL;
  let target: URL;
  try {
    site = new URL(siteUrl);
    target = new URL(candidate);
  } catch {
    return false;
  }
  if (site.hostname === target.hostname && site.protocol === target.protocol && (site.port === target.port || isLoopback(target.hostname))) {
    return true;
  }
  return isIP(target.hostname.replace(/^\[|\]$/g, '')) !== 0 && isLoopback(target.hostname);
}

/** Go's url.Values.Encode: keys sorted, spaces as '+'. */
export function encodeSorted(values: Record<string, string>): string {
  const params = new URLSearchParams();
  for (const key of Object.keys(values).sort()) params.set(key, values[key]!);
  return params.toString();
}

/** The error redirect GoTrue sends from GET /verify: the error in the fragment, the query kept. */
export function errorRedirect(target: string, status: number, code: string, description: string): string {
  const oauthError: Record<number, string> = {
    400: 'invalid_request',
    401: 'unauthorized_client',
    403: 'access_denied',
    500: 'server_error',
    503: 'temporarily_unavailable',
  };
  const fragment: Record<string, string> = { error_code: code, error_description: description, sb: '' };
  if (oauthError[status]) fragment.error = oauthError[status];
  // Go re-serialises the URL unchanged apart from the fragment; WHATWG URL would add a '/'.
  return `${target.split('#')[0]}#${encodeSorted(fragment)}`;
}

/** utilities.GetReferrer: redirect_to (header, else query), then Referer, if allowed; else the site. */
export function referrer(c: Context, config: AuthConfig): string {
  const requested = c.req.header('redirect_to') || c.req.query('redirect_to');
  for (const candidate of [requested, c.req.header('Referer')]) {
    if (isRedirectAllowed(config.siteUrl, candidate)) return candidate;
  }
  return config.siteUrl;
}
