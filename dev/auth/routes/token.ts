// POST /token, after supabase/auth internal/api/token.go: the password grant, and the refresh
// grant (../refresh-grant.ts).
import { Hono } from 'hono';
import { z } from 'zod';
import { withTransaction } from '../../transaction.ts';
import { badRequest } from '../errors.ts';
import type { AuthConfig } from '../options.ts';
import { passwordMatches } from '../passwords.ts';
import { refreshTokenGrant } from '../refresh-grant.ts';
import { readBody } from '../request.ts';
import { issueSession, sessionClient } from '../tokens.ts';
import { findUserByEmail } from '../user-queries.ts';

const PasswordGrantBody = z.object({
  email: z.string().nullish(),
  password: z.string().nullish(),
});

const INVALID_LOGIN = 'Invalid login credentials';

export function tokenRoutes(config: AuthConfig): Hono {
  const app = new Hono();

  app.post('/token', async (c) => {
    const grantType = c.req.query('grant_type') ?? '';
    if (grantType === 'refresh_token') return c.json(await refreshTokenGrant(c, config));
    if (grantType !== 'password') throw badRequest('invalid_credentials', 'unsupported_grant_type');

    const body = await readBody(c, PasswordGrantBody);
    const user = await findUserByEmail(config.pool, body.email ?? '', config.audience);
    if (!user || !user.row.encrypted_password) {
      throw badRequest('invalid_credentials', INVALID_LOGIN);
    }
    if (!(await passwordMatches(body.password ?? '', user.row.encrypted_password))) {
      throw badRequest('invalid_credentials', INVALID_LOGIN);
    }
    // Checked after the password, so an unconfirmed address is only revealed to its owner.
    if (!user.row.email_confirmed_at) {
      throw badRequest('email_not_confirmed', 'Email not confirmed');
    }
    const client = sessionClient(c, config);
    return c.json(
      await withTransaction(
        config.pool,
        (db) => issueSession(config, db, user.row.id, 'password', client),
      ),
    );
  });

  return app;
}
