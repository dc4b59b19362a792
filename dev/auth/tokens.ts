// Sessions as GoTrue issues them (internal/tokens/service.go): an ES256 access token signed with
// the local signing key, so clients can verify it against /.well-known/jwks.json, and the
// AccessTokenResponse around it. Sessions and refresh tokens are not stored: the stand-in
// supports neither the refresh grant nor server-side sign-out.
import { randomBytes, randomUUID } from 'node:crypto';
import { signEs256 } from '../keys.ts';
import type { AuthConfig } from './options.ts';
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

export async function signAccessToken(
  config: AuthConfig,
  user: UserRow,
  method: AuthenticationMethod,
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
      amr: [{ method, timestamp: issuedAt }],
      session_id: randomUUID(),
      is_anonymous: user.is_anonymous,
    },
    config.keys.signingKey,
  );
  return { token, expiresAt };
}

/** IssueRefreshToken: records the sign-in, then answers with the user as it now is. */
export async function issueSession(
  config: AuthConfig,
  db: Queryable,
  userId: string,
  method: AuthenticationMethod,
): Promise<SessionJson> {
  await recordSignIn(db, userId);
  const user = await findUserById(db, userId);
  if (!user) throw new Error(`user ${userId} vanished while signing in`);
  const { token, expiresAt } = await signAccessToken(config, user.row, method);
  return {
    access_token: token,
    token_type: 'bearer',
    expires_in: config.jwtExpirySeconds,
    expires_at: expiresAt,
    refresh_token: randomBytes(9).toString('base64url'),
    user: renderStoredUser(user),
  };
}
