// GET /verify (the link in the confirmation email) and POST /verify (supabase-js verifyOtp), after
// supabase/auth internal/api/verify.go, for the tokens this stand-in issues: signup confirmations.
import { Hono } from 'hono';
import { z } from 'zod';
import { AuthError, badRequest, forbidden, unprocessable } from '../errors.ts';
import { tokenHash } from '../mail.ts';
import type { AuthConfig } from '../options.ts';
import { encodeSorted, errorRedirect, referrer } from '../redirects.ts';
import { readBody } from '../request.ts';
import { issueSession } from '../tokens.ts';
import type { SessionJson } from '../tokens.ts';
import { confirmEmail, findUserByConfirmationToken, markEmailIdentityVerified, refreshProviders } from '../user-queries.ts';
import { withTransaction } from '../../transaction.ts';
import { validateEmail } from '../validation.ts';

const VerifyBody = z.object({
  type: z.string().nullish(),
  token: z.string().nullish(),
  token_hash: z.string().nullish(),
  email: z.string().nullish(),
  phone: z.string().nullish(),
  redirect_to: z.string().nullish(),
});

// Types whose tokens sit in confirmation_token; recovery, magic-link and email-change tokens are
// never issued here, so those types can only fail the way an unknown token fails.
const CONFIRMATION_TYPES = new Set(['signup', 'invite', 'email']);
const EMAIL_TYPES = new Set(['signup', 'invite', 'email', 'recovery', 'magiclink', 'email_change']);
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
  if (!EMAIL_TYPES.has(verification.type)) throw badRequest('validation_failed', 'Invalid email verification type');
  return await withTransaction(config.pool, async (client) => {
    const user = CONFIRMATION_TYPES.has(verification.type) ? await findUserByConfirmationToken(client, verification.hash) : null;
    if (!user || (verification.email !== undefined && user.row.email !== verification.email)) {
      throw forbidden('otp_expired', verification.notFound);
    }
    if (user.row.banned) throw forbidden('user_banned', 'User is banned');
    const sentAt = user.row.confirmation_sent_at ? Date.parse(user.row.confirmation_sent_at) : Number.NaN;
    if (!(sentAt + config.otpExpirySeconds * 1000 >= Date.now())) throw forbidden('otp_expired', verification.notFound);

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
    if (token === '') throw badRequest('validation_failed', 'Verify requires a token or a token hash');
    try {
      const session = await confirmSignup(config, { type, hash: token, notFound: LINK_EXPIRED });
      const fragment = encodeSorted({
        access_token: session.access_token,
        expires_at: String(session.expires_at),
        expires_in: String(session.expires_in),
        refresh_token: session.refresh_token,
        sb: '',
        token_type: session.token_type,
        // An "email" OTP link confirms a signup, and GoTrue reports it as one.
        type: type === 'email' ? 'signup' : type,
      });
      return c.redirect(`${redirectTo}#${fragment}`, 303);
    } catch (error) {
      if (error instanceof AuthError) return c.redirect(errorRedirect(redirectTo, error.status, error.code, error.message), 303);
      // GoTrue redirects without any error when the failure is not an HTTP error; say why here.
      console.error('[auth] /verify failed:', error);
      return c.redirect(redirectTo, 303);
    }
  });

  app.post('/verify', async (c) => {
    const body = await readBody(c, VerifyBody, 'api.VerifyParams');
    const type = body.type ?? '';
    const token = body.token ?? '';
    const hash = body.token_hash ?? '';
    const email = body.email ?? '';
    const phone = body.phone ?? '';
    if (type === '') throw badRequest('validation_failed', 'Verify requires a verification type');
    if ((token === '') === (hash === '')) throw badRequest('validation_failed', 'Verify requires either a token or a token hash');
    if (token !== '') {
      // Phone signups are disabled, so no SMS code exists to match.
      if (phone !== '' && (type === 'sms' || type === 'phone_change')) throw forbidden('otp_expired', 'Token has expired or is invalid');
      if (email === '' || !EMAIL_TYPES.has(type)) {
        throw badRequest('validation_failed', 'Only an email address or phone number should be provided on verify');
      }
      let address: string;
      try {
        address = validateEmail(email);
      } catch {
        throw unprocessable('validation_failed', 'Invalid email format');
      }
      const session = await confirmSignup(config, { type, hash: tokenHash(address, token), email: address, notFound: 'Token has expired or is invalid' });
      return c.json(session);
    }
    if (email !== '' || phone !== '' || (body.redirect_to ?? '') !== '') {
      throw badRequest('validation_failed', 'Only the token_hash and type should be provided');
    }
    return c.json(await confirmSignup(config, { type, hash, notFound: LINK_EXPIRED }));
  });

  return app;
}
