// Sessions as GoTrue issues them (internal/tokens/service.go): a session row with its refresh
// token (sessions.ts), an ES256 access token naming the session, signed with the local signing key
// so clients can verify it against /.well-known/jwks.json, and the AccessTokenResponse around it.
import type { Context } from 'hono';
import { signEs256 } from '../keys.ts';
import { clientIp } from './client-ip.ts';
import type { AuthConfig } from './options.ts';
import { createSession, sessionAmr } from './sessions.ts';
import { findUserById, recordSignIn } from './user-queries.ts';
import type { Queryable, UserRow } from './user-queries.ts';
import { renderStoredUser } from './user-json.ts';
import type { UserJson } from './user-json.ts';

export type AuthenticationMethod = 'password' | 'otp';

export interface SessionJson {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: UserJson;
}

/** Who asked for the session, as GrantParams.FillGrantParams records it on the session. */
export interface SessionClient {
  userAgent: string | null;
  ip: string | null;
}

export function sessionClient(c: Context, config: AuthConfig): SessionClient {
  return { userAgent: c.req.header('User-Agent') || null, ip: clientIp(c, config) || null };
}

/** GenerateAccessToken: the claims of the user as it is now, in the given session. */
export async function signAccessToken(
  config: AuthConfig,
  db: Queryable,
  user: UserRow,
  sessionId: string,
): Promise<{ token: string; expiresAt: number }> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const expiresAt = issuedAt + config.jwtExpirySeconds;
  const token = await signEs256(
    {
      iss: config.authUrl,
      sub: user.id,
      aud: user.aud ?? config.audience,
      exp: expiresAt,
      iat: issuedAt,
      email: user.email ?? '',
      phone: user.phone ?? '',
      app_metadata: (user.raw_app_meta_data ?? {}) as Record<string, unknown>,
      user_metadata: (user.raw_user_meta_data ?? {}) as Record<string, unknown>,
      role: user.role ?? '',
      aal: 'aal1',
      amr: await sessionAmr(db, sessionId),
      session_id: sessionId,
      is_anonymous: user.is_anonymous,
    },
    config.keys.signingKey,
  );
  return { token, expiresAt };
}

/** The AccessTokenResponse for a session and its current refresh token, with the user as it now is. */
export async function sessionResponse(
  config: AuthConfig,
  db: Queryable,
  userId: string,
  sessionId: string,
  refreshToken: string,
): Promise<SessionJson> {
  const user = await findUserById(db, userId);
  if (!user) throw new Error(`user ${userId} vanished while issuing a session`);
  const { token, expiresAt } = await signAccessToken(config, db, user.row, sessionId);
  return {
    access_token: token,
    token_type: 'bearer',
    expires_in: config.jwtExpirySeconds,
    expires_at: expiresAt,
    refresh_token: refreshToken,
    user: renderStoredUser(user),
  };
}

/**
 * IssueRefreshToken: a new session with its first refresh token and AMR claim, the sign-in
 * recorded. `db` should be a transaction's connection, so a failure leaves no half session.
 */
export async function issueSession(
  config: AuthConfig,
  db: Queryable,
  userId: string,
  method: AuthenticationMethod,
  client: SessionClient = { userAgent: null, ip: null },
): Promise<SessionJson> {
  const { sessionId, refreshToken } = await createSession(db, userId, method, client);
  await recordSignIn(db, userId);
  return sessionResponse(config, db, userId, sessionId, refreshToken);
}
