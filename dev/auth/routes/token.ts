// POST /token?grant_type=password, after supabase/auth internal/api/token.go.
import { Hono } from 'hono';
import { z } from 'zod';
import { badRequest, unprocessable } from '../errors.ts';
import type { AuthConfig } from '../options.ts';
import { passwordMatches } from '../passwords.ts';
import { readBody, requestAud } from '../request.ts';
import { issueSession } from '../tokens.ts';
import { findUserByEmail } from '../user-queries.ts';

const PasswordGrantBody = z.object({
  email: z.string().nullish(),
  phone: z.string().nullish(),
  password: z.string().nullish(),
});

const INVALID_LOGIN = 'Invalid login credentials';

export function tokenRoutes(config: AuthConfig): Hono {
  const app = new Hono();

  app.post('/token', async (c) => {
    const grantType = c.req.query('grant_type') ?? '';
    switch (grantType) {
      case 'password':
        break;
      case 'refresh_token':
        // Refresh tokens are not stored, so every one is unknown; this is GoTrue's answer for
        // an unknown one, which makes supabase-js drop the session cleanly.
        throw badRequest('refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
      case 'id_token':
      case 'pkce':
      case 'web3':
        throw badRequest('validation_failed', `unsupported grant type: the local Auth stand-in does not implement grant_type=${grantType}`);
      default:
        throw badRequest('invalid_credentials', 'unsupported_grant_type');
    }

    const body = await readBody(c, PasswordGrantBody, 'api.PasswordGrantParams');
    const email = body.email ?? '';
    const phone = body.phone ?? '';
    if (email !== '' && phone !== '') {
      throw badRequest('validation_failed', 'Only an email address or phone number should be provided on login.');
    }
    if (phone !== '') throw unprocessable('phone_provider_disabled', 'Phone logins are disabled');
    if (email === '') throw badRequest('validation_failed', 'missing email or phone');

    const user = await findUserByEmail(config.pool, email, requestAud(c, config));
    if (!user || !user.row.encrypted_password) throw badRequest('invalid_credentials', INVALID_LOGIN);
    if (user.row.banned) throw badRequest('user_banned', 'User is banned');
    if (!(await passwordMatches(body.password ?? '', user.row.encrypted_password))) throw badRequest('invalid_credentials', INVALID_LOGIN);
    // Checked after the password, so an unconfirmed address is only revealed to its owner.
    if (!user.row.email_confirmed_at) throw badRequest('email_not_confirmed', 'Email not confirmed');
    return c.json(await issueSession(config, config.pool, user.row.id, 'password'));
  });

  return app;
}
