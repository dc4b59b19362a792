// POST /signup, following supabase/auth internal/api/signup.go for what callers send: an email and
// password with user data (phone, anonymous and PKCE signups are off or unused, as in the CLI's
// local config), behind the CAPTCHA check, the per-address limit and the before-user-created hook.
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { z } from 'zod';
import { clientIp, rateLimitKey } from '../client-ip.ts';
import { AuthError, badRequest, internalError, tooManyRequests, unprocessable } from '../errors.ts';
import { isAdminCaller } from '../guards.ts';
import { invokeHttpHook } from '../hooks.ts';
import { confirmationLink, newConfirmation } from '../mail.ts';
import type { AuthConfig } from '../options.ts';
import { hashPassword } from '../passwords.ts';
import { referrer } from '../redirects.ts';
import { readBody } from '../request.ts';
import { issueSession, sessionClient } from '../tokens.ts';
import type { SessionJson } from '../tokens.ts';
import { lookAlikeUser, renderStoredUser, unsavedUser } from '../user-json.ts';
import type { UserJson } from '../user-json.ts';
import {
  confirmEmail,
  findUserById,
  findUserWithEmail,
  setConfirmationToken,
} from '../user-queries.ts';
import type { Queryable, StoredUser } from '../user-queries.ts';
import { insertAuthUser } from '../user-store.ts';
import { withTransaction } from '../../transaction.ts';

const SignupBody = z.object({
  email: z.string().nullish(),
  password: z.string().nullish(),
  data: z.record(z.string(), z.unknown()).nullish(),
  gotrue_meta_security: z.object({ captcha_token: z.string().nullish() }).nullish(),
});

// GoTrue's verifyCaptcha middleware (internal/api/middleware.go): skipped when
// requireAdminCredentials accepts the caller, so a service-role request needs no token. The
// "provider" here accepts exactly one token.
async function checkCaptcha(
  c: Context,
  config: AuthConfig,
  token: string | null | undefined,
): Promise<void> {
  if (config.captchaToken === undefined || (await isAdminCaller(c, config))) return;
  const given = (token ?? '').trim();
  if (given === '') {
    throw badRequest(
      'captcha_failed',
      'captcha protection: request disallowed (no captcha_token found)',
    );
  }
  if (given !== config.captchaToken) {
    throw badRequest(
      'captcha_failed',
      'captcha protection: request disallowed (invalid-input-response)',
    );
  }
}

// sendConfirmation: a new token on the user, then the mail, all inside the signup transaction so
// that a failing mailer rolls the signup back as GoTrue's does.
function sendConfirmationMail(
  config: AuthConfig,
  email: string,
  tokenHash: string,
  otp: string,
  redirectTo: string,
): void {
  config.onEmail({
    to: email,
    type: 'signup',
    link: confirmationLink(config.authUrl, tokenHash, redirectTo),
    token: otp,
  });
}

/**
 * The Signups limiter api.go puts in front of Signup (apilimiter.go: GOTRUE_RATE_LIMIT_OTP),
 * keyed as middleware.go performRateLimiting keys it.
 */
function limitSignups(c: Context, config: AuthConfig): void {
  const key = rateLimitKey(c, config);
  if (key !== null && !config.signupLimiter.allow(key)) {
    throw tooManyRequests('over_request_rate_limit', 'Request rate limit reached');
  }
}

/**
 * mail.go validateSentWithinFrequencyLimit, as sendConfirmation applies it to a repeated signup;
 * the seconds left are truncated, as errors.go generateFrequencyLimitErrorMessage divides them.
 */
function checkMailInterval(config: AuthConfig, confirmationSentAt: string | null): void {
  if (!confirmationSentAt) return;
  const left = Date.parse(confirmationSentAt) + config.mailIntervalMs - Date.now();
  if (left > 0) {
    throw tooManyRequests(
      'over_email_send_rate_limit',
      `For security purposes, you can only request this after ${Math.trunc(left / 1000)} seconds.`,
    );
  }
}

/**
 * signup.go answers with the user it holds in memory, whose user_metadata
 * RemoveUnconfirmedIdentities made the very map its new identity holds: whatever later changes
 * one (Confirm's email_verified: true) shows in both, although the identities row keeps what was
 * inserted.
 */
function sharingIdentityData(user: UserJson): UserJson {
  const identities = (user.identities as UserJson[]).map((identity) => ({
    ...identity,
    identity_data: { ...(user.user_metadata as object) },
  }));
  return { ...user, identities };
}

async function reload(db: Queryable, id: string): Promise<StoredUser> {
  const user = await findUserById(db, id);
  if (!user) throw internalError('Database error loading user after sign-up');
  return user;
}

export function signupRoutes(config: AuthConfig): Hono {
  const app = new Hono();

  app.post('/signup', async (c) => {
    const body = await readBody(c, SignupBody);
    await checkCaptcha(c, config, body.gotrue_meta_security?.captcha_token);
    const address = (body.email ?? '').toLowerCase();
    const password = body.password ?? '';
    if (address === '') {
      throw unprocessable('anonymous_provider_disabled', 'Anonymous sign-ins are disabled');
    }
    limitSignups(c, config);
    if (password === '') throw badRequest('validation_failed', 'Signup requires a valid password');

    const data = body.data ?? {};
    const redirectTo = referrer(c, config);
    const existing = await findUserWithEmail(config.pool, address, config.audience);

    if (existing) {
      if (existing.row.email_confirmed_at) {
        if (config.autoconfirm) {
          throw unprocessable('user_already_exists', 'User already registered');
        }
        return c.json(lookAlikeUser(existing.row, data, config.audience));
      }
      // An unconfirmed signup is completed, never modified: GoTrue cannot tell who is asking.
      const id = existing.row.id;
      if (config.autoconfirm) {
        return c.json(
          await withTransaction(config.pool, async (client) => {
            await confirmEmail(client, id);
            return issueSession(config, client, id, 'password', sessionClient(c, config));
          }),
        );
      }
      checkMailInterval(config, existing.row.confirmation_sent_at);
      await withTransaction(config.pool, async (client) => {
        const confirmation = newConfirmation(address);
        await setConfirmationToken(client, id, confirmation.tokenHash);
        sendConfirmationMail(config, address, confirmation.tokenHash, confirmation.otp, redirectTo);
      });
      return c.json(renderStoredUser(await reload(config.pool, id)));
    }

    // Hashing is slow, so GoTrue does it before opening the transaction.
    const id = randomUUID();
    const encryptedPassword = await hashPassword(password, config.bcryptCost);
    // Only a new user is announced to the hook, after hashing and before any write (signup.go).
    if (config.beforeUserCreatedHook) {
      const ipAddress = clientIp(c, config);
      await invokeHttpHook(config.beforeUserCreatedHook, {
        metadata: {
          uuid: randomUUID(),
          time: new Date().toISOString(),
          name: 'before-user-created',
          ...(ipAddress ? { ip_address: ipAddress } : {}),
        },
        user: unsavedUser({
          id,
          aud: config.audience,
          email: address,
          userMetadata: data,
          provider: 'email',
        }),
      });
    }
    const identityData = {
      ...data,
      sub: id,
      email: address,
      email_verified: false,
      phone_verified: false,
    };
    const confirmation = config.autoconfirm ? null : newConfirmation(address);
    try {
      await withTransaction(config.pool, async (client) => {
        await insertAuthUser(client, {
          id,
          email: address,
          encryptedPassword,
          userMetadata: data,
          identities: [{ provider: 'email', providerId: id, identityData }],
          emailConfirmed: config.autoconfirm,
          confirmationToken: confirmation?.tokenHash ?? null,
          writeOrder: 'signup',
        });
        if (confirmation) {
          sendConfirmationMail(
            config,
            address,
            confirmation.tokenHash,
            confirmation.otp,
            redirectTo,
          );
        }
      });
    } catch (error) {
      if (error instanceof AuthError) throw error;
      throw internalError('Database error saving new user', error);
    }

    if (config.autoconfirm) {
      const session: SessionJson = await withTransaction(
        config.pool,
        (client) => issueSession(config, client, id, 'password', sessionClient(c, config)),
      );
      return c.json({ ...session, user: sharingIdentityData(session.user) });
    }
    return c.json(sharingIdentityData(renderStoredUser(await reload(config.pool, id))));
  });

  return app;
}
