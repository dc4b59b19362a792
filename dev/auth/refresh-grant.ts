// The refresh_token grant, after supabase/auth internal/api/token_refresh.go and the v1 branch of
// internal/tokens/service.go RefreshTokenGrant: each refresh token is swapped once for a new
// session answer (same session, new access token, new refresh token naming the old one as parent).
// A revoked token is still honoured when it is the parent of the session's active token (the
// client lost the answer: it gets that active token again) or within the reuse interval;
// otherwise it is refused as already used and the session's whole token family is revoked.
import type { Context } from 'hono';
import { z } from 'zod';
import { withTransaction } from '../transaction.ts';
import { AuthError, badRequest } from './errors.ts';
import type { AuthConfig } from './options.ts';
import { readBody } from './request.ts';
import {
  activeRefreshToken,
  lockRefreshToken,
  recordRefresh,
  revokeSessionTokens,
  sessionExists,
  swapRefreshToken,
} from './sessions.ts';
import { sessionClient, sessionResponse } from './tokens.ts';
import type { SessionJson } from './tokens.ts';
import { findUserById, recordSignIn } from './user-queries.ts';

const RefreshGrantBody = z.object({ refresh_token: z.string().nullish() });

// v1 tokens are 12 lower-case alphanumerics; longer ones would be v2 tokens, which this stand-in
// never issues, so none of them parses.
const LEGACY_REFRESH_TOKEN = /^[a-z0-9]{12}$/;

const notFound = () =>
  badRequest('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');

export async function refreshTokenGrant(c: Context, config: AuthConfig): Promise<SessionJson> {
  const token = (await readBody(c, RefreshGrantBody)).refresh_token ?? '';
  if (!LEGACY_REFRESH_TOKEN.test(token)) {
    throw badRequest('validation_failed', 'Refresh token is not valid');
  }
  const client = sessionClient(c, config);
  // GoTrue commits the family's revocation and still answers the error (NewCommitWithError), so
  // the error leaves the transaction as a value.
  const outcome = await withTransaction(
    config.pool,
    async (db): Promise<SessionJson | AuthError> => {
      const row = await lockRefreshToken(db, token);
      if (!row) return notFound();
      const user = await findUserById(db, row.user_id);
      if (!user) return notFound();
      const bannedUntil = user.row.banned_until ? Date.parse(user.row.banned_until) : Number.NaN;
      if (bannedUntil > Date.now()) {
        return badRequest('user_banned', 'Invalid Refresh Token: User Banned');
      }
      if (!row.session_id || !(await sessionExists(db, row.session_id))) {
        return badRequest('session_not_found', 'Invalid Refresh Token: No Valid Session Found');
      }
      let issued: string | null = null;
      if (row.revoked) {
        const active = await activeRefreshToken(db, row.session_id);
        if (active && active.parent === row.token) {
          issued = active.token;
        } else if (row.age_seconds > config.refreshTokenReuseIntervalSeconds) {
          await revokeSessionTokens(db, row.session_id);
          return badRequest('refresh_token_already_used', 'Invalid Refresh Token: Already Used');
        }
      }
      if (issued === null) {
        issued = await swapRefreshToken(db, row);
        await recordSignIn(db, user.row.id);
      }
      await recordRefresh(db, row.session_id, client);
      return sessionResponse(config, db, user.row.id, row.session_id, issued);
    },
  );
  if (outcome instanceof AuthError) throw outcome;
  return outcome;
}
