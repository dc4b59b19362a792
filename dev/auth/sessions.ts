// Sessions and refresh tokens in auth.sessions / auth.refresh_tokens / auth.mfa_amr_claims, as
// GoTrue's models do (internal/models/sessions.go, refresh_token.go, amr.go) with its v1 refresh
// tokens: 12 lower-case base32 characters, one row each, the used one revoked and its successor
// naming it as parent. Every query runs on the connection it is given (search_path = auth).
import { randomBytes, randomUUID } from 'node:crypto';
import type { AuthenticationMethod } from './tokens.ts';
import type { Queryable } from './user-queries.ts';

export interface RefreshTokenRow {
  id: string;
  token: string;
  user_id: string;
  parent: string | null;
  session_id: string | null;
  revoked: boolean;
  /** Seconds since the row last changed (when it was revoked, for a revoked one). */
  age_seconds: number;
}

/** crypto.SecureAlphanumeric(12): base32 of random bytes, lower-cased. */
export function newRefreshToken(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const byte of randomBytes(8)) bits += byte.toString(2).padStart(8, '0');
  return Array.from({ length: 12 }, (_, i) => alphabet[parseInt(bits.slice(i * 5, i * 5 + 5), 2)])
    .join('');
}

async function insertRefreshToken(
  db: Queryable,
  userId: string,
  sessionId: string,
  parent: string | null,
): Promise<string> {
  const token = newRefreshToken();
  await db.query(
    `insert into refresh_tokens (instance_id, token, user_id, revoked, parent, session_id, created_at, updated_at)
     values ('00000000-0000-0000-0000-000000000000', $1, $2, false, $3, $4, now(), now())`,
    [token, userId, parent, sessionId],
  );
  return token;
}

/** GrantAuthenticatedUser + AddClaimToSession: a new session, its first refresh token and AMR claim. */
export async function createSession(
  db: Queryable,
  userId: string,
  method: AuthenticationMethod,
  client: { userAgent: string | null; ip: string | null },
): Promise<{ sessionId: string; refreshToken: string }> {
  const sessionId = randomUUID();
  await db.query(
    `insert into sessions (id, user_id, aal, user_agent, ip, created_at, updated_at)
     values ($1, $2, 'aal1', $3, $4, now(), now())`,
    [sessionId, userId, client.userAgent, client.ip],
  );
  const refreshToken = await insertRefreshToken(db, userId, sessionId, null);
  await db.query(
    `insert into mfa_amr_claims (id, session_id, authentication_method, created_at, updated_at)
     values ($1, $2, $3, now(), now())
     on conflict (session_id, authentication_method) do update set updated_at = excluded.updated_at`,
    [randomUUID(), sessionId, method],
  );
  return { sessionId, refreshToken };
}

/** The session's AMR claims as the access token's `amr` (CalculateAALAndAMR, aal1 only). */
export async function sessionAmr(
  db: Queryable,
  sessionId: string,
): Promise<Array<{ method: string; timestamp: number }>> {
  const { rows } = await db.query<{ method: string; timestamp: number }>(
    `select authentication_method as method, extract(epoch from updated_at)::bigint::int as timestamp
       from mfa_amr_claims where session_id = $1 order by updated_at desc`,
    [sessionId],
  );
  return rows;
}

export async function sessionExists(db: Queryable, sessionId: string): Promise<boolean> {
  return (await db.query('select 1 from sessions where id = $1', [sessionId])).rowCount === 1;
}

const TOKEN_COLUMNS = `id, token, user_id, parent, session_id, coalesce(revoked, false) as revoked,
  extract(epoch from now() - updated_at)::float8 as age_seconds`;

/** A refresh token by its value, locked for the refresh (FOR UPDATE, inside a transaction). */
export async function lockRefreshToken(
  db: Queryable,
  token: string,
): Promise<RefreshTokenRow | null> {
  const { rows } = await db.query<RefreshTokenRow>(
    `select ${TOKEN_COLUMNS} from refresh_tokens where token = $1 for update`,
    [token],
  );
  return rows[0] ?? null;
}

/** FindCurrentlyActiveRefreshToken: the session's newest unrevoked token. */
export async function activeRefreshToken(
  db: Queryable,
  sessionId: string,
): Promise<RefreshTokenRow | null> {
  const { rows } = await db.query<RefreshTokenRow>(
    `select ${TOKEN_COLUMNS} from refresh_tokens
      where session_id = $1 and revoked is false order by id desc limit 1`,
    [sessionId],
  );
  return rows[0] ?? null;
}

/** GrantRefreshTokenSwap: revokes `token` and issues its successor in the same session. */
export async function swapRefreshToken(db: Queryable, token: RefreshTokenRow): Promise<string> {
  await db.query('update refresh_tokens set revoked = true, updated_at = now() where id = $1', [
    token.id,
  ]);
  return insertRefreshToken(db, token.user_id, token.session_id!, token.token);
}

/** RevokeTokenFamily: every unrevoked token of the session, after a reuse outside the interval. */
export async function revokeSessionTokens(db: Queryable, sessionId: string): Promise<void> {
  await db.query(
    'update refresh_tokens set revoked = true, updated_at = now() where session_id = $1 and revoked = false',
    [sessionId],
  );
}

/** Session.UpdateOnlyRefreshInfo, and User.UpdateLastSignInAt as createRefreshToken does. */
export async function recordRefresh(
  db: Queryable,
  sessionId: string,
  client: { userAgent: string | null; ip: string | null },
): Promise<void> {
  await db.query(
    `update sessions set refreshed_at = now() at time zone 'utc', user_agent = $2, ip = $3
      where id = $1`,
    [sessionId, client.userAgent, client.ip],
  );
}

export type LogoutScope = 'global' | 'local' | 'others';

/** models.Logout / LogoutSession / LogoutAllExceptMe: sessions deleted, their tokens with them. */
export async function logout(
  db: Queryable,
  userId: string,
  sessionId: string | null,
  scope: LogoutScope,
): Promise<void> {
  if (sessionId && scope === 'local') {
    await db.query('delete from sessions where id = $1', [sessionId]);
  } else if (sessionId && scope === 'others') {
    await db.query('delete from sessions where id <> $1 and user_id = $2', [sessionId, userId]);
  } else {
    await db.query('delete from sessions where user_id = $1', [userId]);
  }
}
