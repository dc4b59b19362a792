// Who is calling, decided as GoTrue's requireAuthentication / requireAdminCredentials do: only
// the Authorization bearer counts (GoTrue never reads `apikey`), verified with the local keys.
import type { Context } from 'hono';
import type { JWTPayload } from 'jose';
import { bearerToken, JwtRejected, verifyJwt } from '../jwt.ts';
import { forbidden, unauthorized } from './errors.ts';
import type { AuthConfig } from './options.ts';
import { sessionExists } from './sessions.ts';
import { findUserById } from './user-queries.ts';
import type { StoredUser } from './user-queries.ts';
import { isUuid } from './validation.ts';

// golang-jwt's wording for the failures a client can provoke, so messages read like GoTrue's.
function goJwtReason(message: string): string {
  if (message.includes('"exp" claim timestamp check failed')) {
    return 'token has invalid claims: token is expired';
  }
  if (message.includes('"nbf" claim timestamp check failed')) {
    return 'token has invalid claims: token is not valid yet';
  }
  if (message.includes('signature verification failed')) {
    return 'token signature is invalid: signature is invalid';
  }
  if (message === 'malformed JWT') return 'token is malformed: could not parse the token';
  return message.replace(/^invalid JWT: /, '');
}

async function verifiedClaims(c: Context, config: AuthConfig): Promise<JWTPayload> {
  const token = bearerToken(c.req.header('Authorization'));
  if (!token) throw unauthorized('no_authorization', 'This endpoint requires a valid Bearer token');
  try {
    return await verifyJwt(token, config.keys);
  } catch (error) {
    if (error instanceof JwtRejected) {
      throw forbidden(
        'bad_jwt',
        `invalid JWT: unable to parse or verify signature, ${goJwtReason(error.message)}`,
      );
    }
    throw error;
  }
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * requireAuthentication (maybeLoadUserOrSession): a valid token naming an existing user and, when
 * it names a session, an existing one; so a signed-out session's access token is refused.
 */
export async function requireAuthentication(
  c: Context,
  config: AuthConfig,
): Promise<{ user: StoredUser; sessionId: string | null }> {
  const claims = await verifiedClaims(c, config);
  if (!claims.sub || !isUuid(claims.sub)) {
    throw forbidden('bad_jwt', 'invalid claim: missing sub claim');
  }
  const user = await findUserById(config.pool, claims.sub);
  if (!user) throw forbidden('user_not_found', 'User from sub claim in JWT does not exist');
  const sessionId = typeof claims.session_id === 'string' ? claims.session_id : '';
  if (sessionId === '' || sessionId === NIL_UUID) return { user, sessionId: null };
  if (!isUuid(sessionId)) {
    throw forbidden('bad_jwt', 'invalid claim: session_id claim must be a UUID');
  }
  if (!(await sessionExists(config.pool, sessionId))) {
    throw forbidden('session_not_found', 'Session from session_id claim in JWT does not exist');
  }
  return { user, sessionId };
}

export async function requireUser(c: Context, config: AuthConfig): Promise<StoredUser> {
  return (await requireAuthentication(c, config)).user;
}

/** requireAdminCredentials: a valid token whose `role` is an admin role. */
export async function requireAdmin(c: Context, config: AuthConfig): Promise<void> {
  const claims = await verifiedClaims(c, config);
  if (typeof claims.role !== 'string' || !config.adminRoles.includes(claims.role)) {
    throw forbidden('not_admin', 'User not allowed');
  }
}

/** Whether the caller holds admin credentials, for the checks admins skip (captcha). */
export async function isAdminCaller(c: Context, config: AuthConfig): Promise<boolean> {
  try {
    await requireAdmin(c, config);
    return true;
  } catch {
    return false;
  }
}
