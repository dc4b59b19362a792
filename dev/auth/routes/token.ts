// POST /token, after supabase/auth internal/api/token.go: the password grant, and the refresh
// grant answered as GoTrue answers an unknown refresh token.
import { Hono } from 'hono';
import { z } from 'zod';
import { badRequest } from '../errors.ts';
import type { AuthConfig } from '../options.ts';
import { passwordMatches } from '../passwords.ts';
import { readBody } from '../request.ts';
import { issueSession } from '../tokens.ts';
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
    // Refresh tokens are not stored, so every one is unknown; this is GoTrue's answer for an
    // unknown one, which makes supabase-js drop the session cleanly.
    if (grantType === 'refresh_token') {
      throw badRequest('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
    }
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
    return c.json(await issueSession(config, config.pool, user.row.id, 'password'));
  });

  return app;
}
