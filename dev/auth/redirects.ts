// Where /verify may send the browser, and how it hands over the session, following GoTrue's
// utilities.GetReferrer and AccessTokenResponse.AsRedirectURL.
import type { Context } from 'hono';
import type { AuthConfig } from './options.ts';

/** Go's url.Values.Encode: keys sorted, spaces as '+'. */
export function encodeSorted(values: Record<string, string>): string {
  const params = new URLSearchParams();
  for (const key of Object.keys(values).sort()) params.set(key, values[key]!);
  return params.toString();
}

/** The error redirect GoTrue sends from GET /verify: the error in the fragment, the query kept. */
export function errorRedirect(
  target: string,
  status: number,
  code: string,
  description: string,
): string {
  const oauthError: Record<number, string> = {
    400: 'invalid_request',
    401: 'unauthorized_client',
    403: 'access_denied',
    500: 'server_error',
    503: 'temporarily_unavailable',
  };
  const fragment: Record<string, string> = {
    error_code: code,
    error_description: description,
    sb: '',
  };
  if (oauthError[status]) fragment.error = oauthError[status];
  // Go re-serialises the URL unchanged apart from the fragment; WHATWG URL would add a '/'.
  return `${target.split('#')[0]}#${encodeSorted(fragment)}`;
}

/**
 * utilities.GetReferrer, for what callers send: the redirect_to query parameter when it is on the
 * site itself (scheme, host and port), else the site. GoTrue's URI allow list, its loopback
 * exceptions and the Referer fallback are not modelled: the local stack has no allow list.
 */
export function referrer(c: Context, config: AuthConfig): string {
  const requested = c.req.query('redirect_to');
  const allowed = requested !== undefined && URL.canParse(requested) &&
    new URL(requested).origin === new URL(config.siteUrl).origin;
  return allowed ? requested : config.siteUrl;
}
