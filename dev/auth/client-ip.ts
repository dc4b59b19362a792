// Whose request this is, as GoTrue decides it (internal/sbff/sbff.go, internal/utilities/request.go
// GetIPAddress, internal/api/middleware.go performRateLimiting). GoTrue itself trusts
// Sb-Forwarded-For whenever GOTRUE_SECURITY_SB_FORWARDED_FOR_ENABLED is on; that only a request
// made with a secret key may carry it is the platform gateway's rule (dev/stack.ts applies it).
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { AuthConfig } from './options.ts';

export const SB_FORWARDED_FOR = 'sb-forwarded-for';

/** Go's net.IP.String(): an IPv4-mapped IPv6 address prints as IPv4, IPv6 in its short form. */
function canonicalIp(text: string): string | null {
  // Go's ParseIP takes no zone ("fe80::1%eth0"); Node's isIP does.
  if (text.includes('%')) return null;
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped && isIP(mapped[1]!) === 4) return mapped[1]!;
  return new URL(`http://[${text}]`).hostname.slice(1, -1);
}

/** The first comma-separated value of a header, trimmed (GoTrue splits once on ","). */
function firstValue(header: string | undefined): string {
  return (header ?? '').split(',', 1)[0]!.trim();
}

/**
 * The end user's address from Sb-Forwarded-For, when the setting is on and its first value is an
 * IP address; an invalid value is ignored, as sbff.Middleware does (rateLimitKey logs it).
 */
export function sbForwardedFor(c: Context, config: AuthConfig): string | null {
  if (!config.sbForwardedForEnabled) return null;
  const header = c.req.header(SB_FORWARDED_FOR);
  return header ? canonicalIp(firstValue(header)) : null;
}

/** The TCP peer, when the app runs on @hono/node-server and is handed its bindings. */
export function peerAddress(c: Context): string | null {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket.remoteAddress ?? null;
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
  const key = firstValue(c.req.header(config.rateLimitHeader));
  return key === '' ? null : key;
}

/** utilities.GetIPAddress: Sb-Forwarded-For, else the first IP in X-Forwarded-For, else the peer. */
export function clientIp(c: Context, config: AuthConfig): string {
  const forwarded = sbForwardedFor(c, config);
  if (forwarded) return forwarded;
  for (const candidate of (c.req.header('X-Forwarded-For') ?? '').split(',')) {
    const address = canonicalIp(candidate.trim());
    if (address) return address;
  }
  return peerAddress(c) ?? '';
}
