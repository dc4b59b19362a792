// Who is calling: the service role (one of the project's secret keys, compared in constant
// time) or a signed-in user (an access token verified with supabase-js getClaims, which checks
// asymmetric tokens against the project's JWKS and asks Auth about legacy HS256 ones).
import { AUTH_RETRY_AFTER_SECONDS } from './auth-errors.ts';
import { AppError, serviceUnavailable, unauthorized } from './errors.ts';
import type { SupabaseClient } from './supabase-client.ts';

export type Caller = { kind: 'service' } | { kind: 'user'; userId: string; email: string | null };

/** A user id as Supabase Auth writes it (any UUID version, either case). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIME_CLAIMS = ['exp', 'nbf', 'iat'] as const;

// How far a token's nbf may lie ahead of this instance's clock: Auth's host and ours may
// disagree by seconds, and a token Auth just issued must work at once. Half a minute covers
// clocks kept by NTP with room, and an early token gains no more than that.
const NBF_CLOCK_SKEW_SECONDS = 30;

/** Equal strings in time that depends only on their lengths, not on where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

export function bearerOf(request: Request): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get('authorization') ?? '');
  return match ? match[1]! : null;
}

export function isServiceKey(token: string, serviceRoleKeys: readonly string[]): boolean {
  // Compare against every key so timing does not tell which one (or whether any) matched.
  return serviceRoleKeys.reduce((matched, key) => constantTimeEqual(token, key) || matched, false);
}

export async function identifyCaller(
  request: Request,
  options: { serviceRoleKeys: readonly string[]; auth: SupabaseClient },
): Promise<Caller> {
  const token = bearerOf(request);
  if (!token) throw unauthorized();
  if (isServiceKey(token, options.serviceRoleKeys)) return { kind: 'service' };

  let result: Awaited<ReturnType<SupabaseClient['auth']['getClaims']>>;
  try {
    result = await options.auth.auth.getClaims(token);
  } catch (cause) {
    // getClaims throws, rather than returning an error, for some malformed tokens (a payload
    // that is not JSON, alg "none" or another algorithm under a known key id).
    throw new AppError(401, 'invalid_token', 'The access token is invalid or expired', { cause });
  }
  const { data, error } = result;
  if (error) {
    if (error.name === 'AuthRetryableFetchError') {
      throw serviceUnavailable(
        'Supabase Auth is unavailable; try again shortly',
        AUTH_RETRY_AFTER_SECONDS,
        error,
      );
    }
    throw new AppError(401, 'invalid_token', 'The access token is invalid or expired');
  }
  const claims = (data?.claims ?? {}) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  // RFC 7519 makes exp, nbf and iat NumericDates. getClaims compares exp with <=, which a string
  // such as "9999999999" passes, and our nbf check below would skip a string altogether.
  for (const name of TIME_CLAIMS) {
    if (name in claims && !(typeof claims[name] === 'number' && Number.isFinite(claims[name]))) {
      throw new AppError(401, 'invalid_token', 'The access token is invalid or expired');
    }
  }
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  // getClaims checks the signature and exp; the rest of what makes a user token is ours to check.
  if (typeof claims.nbf === 'number' && claims.nbf > now + NBF_CLOCK_SKEW_SECONDS) {
    throw new AppError(401, 'invalid_token', 'The access token is not valid yet');
  }
  if (!audiences.includes('authenticated')) {
    throw new AppError(401, 'invalid_token', 'The access token is not meant for signed-in users');
  }
  if (claims.role !== 'authenticated') {
    throw new AppError(
      403,
      'forbidden',
      'Only signed-in users or the service role may call this function',
    );
  }
  if (typeof claims.sub !== 'string' || !UUID.test(claims.sub)) {
    throw new AppError(401, 'invalid_token', 'The access token names no user');
  }
  // An anonymous user's token says "email": "" (Auth has no address for them).
  const email = typeof claims.email === 'string' && claims.email !== '' ? claims.email : null;
  return { kind: 'user', userId: claims.sub.toLowerCase(), email };
}
