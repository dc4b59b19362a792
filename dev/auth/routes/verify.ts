// GET /verify (the link in the confirmation email, which `npm start -- --confirm-email` prints)
// and POST /verify (supabase-js verifyOtp with the mailed code), after supabase/auth
// internal/api/verify.go, for the only tokens this stand-in issues: signup confirmations.
import { Hono } from 'hono';
import { z } from 'zod';
import { AuthError, badRequest, forbidden } from '../errors.ts';
import { tokenHash } from '../mail.ts';
import type { AuthConfig } from '../options.ts';
import { encodeSorted, errorRedirect, referrer } from '../redirects.ts';
import { readBody } from '../request.ts';
import { issueSession } from '../tokens.ts';
import type { SessionJson } from '../tokens.ts';
import {
  confirmEmail,
  findUserByConfirmationToken,
  markEmailIdentityVerified,
  refreshProviders,
} from '../user-queries.ts';
import { withTransaction } from '../../transaction.ts';

const VerifyBody = z.object({
  type: z.string().nullish(),
  token: z.string().nullish(),
  email: z.string().nullish(),
});

// Types whose tokens sit in confirmation_token; no other kind of token is ever issued here, so the
// other types fail the way an unknown token fails.
const CONFIRMATION_TYPES = new Set(['signup', 'invite', 'email']);
const LINK_EXPIRED = 'Email link is invalid or has expired';

interface Verification {
  type: string;
  hash: string;
  /** Set when the caller proved the address with an OTP: the token must belong to it. */
  email?: string;
  notFound: string;
}

/** verifyTokenHash + signupVerify + the session, in one transaction. */
async function confirmSignup(config: AuthConfig, verification: Verification): Promise<SessionJson> {
  return await withTransaction(config.pool, async (client) => {
    const user = CONFIRMATION_TYPES.has(verification.type)
      ? await findUserByConfirmationToken(client, verification.hash)
      : null;
    if (!user || (verification.email !== undefined && user.row.email !== verification.email)) {
      throw forbidden('otp_expired', verification.notFound);
    }
    const sentAt = user.row.confirmation_sent_at
      ? Date.parse(user.row.confirmation_sent_at)
      : Number.NaN;
    if (!(sentAt + config.otpExpirySeconds * 1000 >= Date.now())) {
      throw forbidden('otp_expired', verification.notFound);
    }

    await confirmEmail(client, user.row.id);
    if (user.row.email) await markEmailIdentityVerified(client, user.row.id, user.row.email);
    await refreshProviders(client, user.row.id);
    return await issueSession(config, client, user.row.id, 'otp');
  });
}

export function verifyRoutes(config: AuthConfig): Hono {
  const app = new Hono();

  app.get('/verify', async (c) => {
    const token = c.req.query('token') ?? '';
    const type = c.req.query('type') ?? '';
    const redirectTo = referrer(c, config);
    if (type === '') throw badRequest('validation_failed', 'Verify requires a verification type');
    if (token === '') {
      throw badRequest('validation_failed', 'Verify requires a token or a token hash');
    }
    try {
      const session = await confirmSignup(config, { type, hash: token, notFound: LINK_EXPIRED });
      const fragment = encodeSorted({
        access_token: session.access_token,
        expires_at: String(session.expires_at),
        expires_in: String(session.expires_in),
        refresh_token: session.refresh_token,
        sb: '',
        token_type: session.token_type,
        type,
      });
      return c.redirect(`${redirectTo}#${fragment}`, 303);
    } catch (error) {
      if (error instanceof AuthError) {
        return c.redirect(errorRedirect(redirectTo, error.status, error.code, error.message), 303);
      }
      // GoTrue redirects without any error when the failure is not an HTTP error; say why here.
      console.error('[auth] /verify failed:', error);
      return c.redirect(redirectTo, 303);
    }
  });

  app.post('/verify', async (c) => {
    const body = await readBody(c, VerifyBody);
    const type = body.type ?? '';
    const token = body.token ?? '';
    const email = (body.email ?? '').toLowerCase();
    if (type === '') throw badRequest('validation_failed', 'Verify requires a verification type');
    // token_hash and phone verifications are not modelled: the mailed code with its address is.
    if (token === '' || email === '') {
      throw badRequest('validation_failed', 'Verify requires a token and an email address');
    }
    return c.json(
      await confirmSignup(config, {
        type,
        hash: tokenHash(email, token),
        email,
        notFound: 'Token has expired or is invalid',
      }),
    );
  });

  return app;
}
