// Whose request this is, as GoTrue decides it (internal/sbff/sbff.go, internal/utilities/request.go
// GetIPAddress, internal/api/middleware.go performRateLimiting). GoTrue itself trusts
// Sb-Forwarded-For whenever GOTRUE_SECURITY_SB_FORWARDED_FOR_ENABLED is on; that only a request
// made with a secret key may carry it is the platform gateway's rule (dev/stack.ts applies it).
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { AuthConfig } from './options.ts';

export const SB_FORWARDED_FOR = 'sb-forwarded-for';

/**
 * An IP address as Go's net.ParseIP takes it (no zone), or null. Callers here send IPv4; an IPv6
 * address is kept as written rather than canonicalised as Go's net.IP.String() would.
 */
function ipAddress(text: string): string | null {
  return !text.includes('%') && isIP(text) !== 0 ? text : null;
}

/**
 * The end user's address from Sb-Forwarded-For (its first comma-separated value), when the setting
 * is on and that is an IP address; an invalid value is ignored, as sbff.Middleware does.
 */
function sbForwardedFor(c: Context, config: AuthConfig): string | null {
  if (!config.sbForwardedForEnabled) return null;
  const header = c.req.header(SB_FORWARDED_FOR);
  return header ? ipAddress(header.split(',', 1)[0]!.trim()) : null;
}

/**
 * The key GoTrue's limiters count this request under: the Sb-Forwarded-For address, else the
 * first value of GOTRUE_RATE_LIMIT_HEADER. Null means not limited at all: GoTrue never falls back
 * to the remote address, so without that header (the local CLI sets none) only forwarded
 * addresses are limited.
 */
export function rateLimitKey(c: Context, config: AuthConfig): string | null {
  const forwarded = sbForwardedFor(c, config);
  if (forwarded) return forwarded;
  if (config.sbForwardedForEnabled && c.req.header(SB_FORWARDED_FOR)) {
    console.warn('[auth] error processing Sb-Forwarded-For: invalid Sb-Forwarded-For header value');
  }
  if (!config.rateLimitHeader) return null;
  const key = (c.req.header(config.rateLimitHeader) ?? '').split(',', 1)[0]!.trim();
  return key === '' ? null : key;
}

/**
 * utilities.GetIPAddress, for the hook's metadata.ip_address: Sb-Forwarded-For, else the TCP peer
 * (the stack's callers send no X-Forwarded-For, which GoTrue would read in between).
 */
export function clientIp(c: Context, config: AuthConfig): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return sbForwardedFor(c, config) ?? incoming?.socket.remoteAddress ?? '';
}
