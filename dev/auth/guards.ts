// Who is calling, decided as GoTrue's requireAuthentication / requireAdminCredentials do: only
// the Authorization bearer counts (GoTrue never reads `apikey`), verified with the local keys.
import type { Context } from 'hono';
import type { JWTPayload } from 'jose';
import { bearerToken, JwtRejected, verifyJwt } from '../jwt.ts';
import { forbidden, unauthorized } from './errors.ts';
import type { AuthConfig } from './options.ts';
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

/** requireAuthentication: a valid token naming an existing user. Sessions are not stored, so not checked. */
export async function requireUser(c: Context, config: AuthConfig): Promise<StoredUser> {
  const claims = await verifiedClaims(c, config);
  if (!claims.sub || !isUuid(claims.sub)) {
    throw forbidden('bad_jwt', 'invalid claim: missing sub claim');
  }
  const user = await findUserById(config.pool, claims.sub);
  if (!user) throw forbidden('user_not_found', 'User from sub claim in JWT does not exist');
  return user;
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
