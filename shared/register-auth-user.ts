// register's Auth stage: creates the user through Supabase Auth (/signup, or the admin API in
// admin mode) and says whether this request created it — now, or in an earlier try whose answer
// was lost — or whether the address belongs to someone else. Every attempt carries an id in the
// user's metadata (registration_attempt): a user with another id is not this request's, and a
// retry with the same Idempotency-Key and body carries the same id, so it recognises its user
// through find_auth_user_by_email even when a fresh instance makes it.
import { authFailure, isEmailTaken } from './auth-errors.ts';
import type { Config } from './config.ts';
import { AppError } from './errors.ts';
import { requestHash } from './idempotency.ts';
import type { Logger } from './logger.ts';
import { isTransient, retry, RetryExhausted } from './retry.ts';
import { callRpc, databaseUnavailable } from './rpc.ts';
import type { RegisterBody } from './schemas.ts';
import type { SupabaseClient } from './supabase-client.ts';

/** The user-metadata key holding the id of the registration attempt that created the user. */
const REGISTRATION_ATTEMPT_KEY = 'registration_attempt';

// As many bits (128) as a random attempt id, a UUID, carries: a derived id is cut to the same
// length, and no two attempts share one by chance.
const ATTEMPT_ID_HEX_DIGITS = 32;

// Auth's answers that mean "this address has a user already" (422 for a confirmed address with
// confirmation off, or through the admin API; 429 for an unconfirmed one whose confirmation mail
// went out less than the mail interval ago).
const OVER_EMAIL_SEND_RATE_LIMIT = 'over_email_send_rate_limit';

/** Builds the client for one Auth /signup call (see RegisterDeps.newAuthClient). */
export type NewAuthClient = (
  options: { serviceRole: boolean; headers: Record<string, string> },
) => SupabaseClient;

interface AuthUserDeps {
  config: Config;
  /** Service-role client: the admin API and find_auth_user_by_email. */
  supabase: SupabaseClient;
  newAuthClient: NewAuthClient;
  sleep?: (ms: number) => Promise<void>;
}

interface AuthUserRequest {
  body: RegisterBody;
  /** From attemptIdOf. */
  attemptId: string;
  /**
   * The client's address for Auth's Sb-Forwarded-For, sent with the secret key that Auth
   * requires for it (and for which it skips its CAPTCHA check: see verifyCaptcha); null sends
   * the signup as the function's own, with the publishable key.
   */
  forwardedFor: string | null;
  log: Logger;
  deadlineAt: number;
}

interface CreatedUser {
  id: string;
  email: string;
  confirmed: boolean;
}

/**
 * What Auth's answer means for this request: it created the user (now or in an earlier attempt
 * whose answer was lost), or the address belongs to someone else. `concealable`: Auth itself
 * did not reveal it (confirmation is on), so neither may we.
 */
type Creation = { kind: 'created'; user: CreatedUser } | { kind: 'taken'; concealable: boolean };

interface AuthErrorLike {
  name?: string;
  status?: number;
  code?: string;
}

/**
 * The attempt id of a request: derived from its Idempotency-Key and body hash (the same ones
 * always give the same id), or random for a request without a key.
 */
export async function attemptIdOf(
  secret: string,
  idempotency: { key: string; hash: string } | null,
): Promise<string> {
  if (idempotency === null) return crypto.randomUUID().replaceAll('-', '');
  const derived = await requestHash(secret, {
    [REGISTRATION_ATTEMPT_KEY]: idempotency.key,
    request: idempotency.hash,
  });
  return derived.slice(0, ATTEMPT_ID_HEX_DIGITS);
}

/**
 * Auth failures worth another attempt. Any 5xx too: with the attempt id a retry can never
 * create a second user or mistake the first one for someone else's, and Auth answers 500
 * while its database restarts.
 */
function isRetryableAuthFailure(error: unknown): boolean {
  const e = error as AuthErrorLike | null;
  return isTransient(error) || (!!e && typeof e.status === 'number' && e.status >= 500);
}

/** Creates the user, retrying transient failures until the deadline; Auth's refusals as AppErrors. */
export async function createAuthUser(
  deps: AuthUserDeps,
  request: AuthUserRequest,
): Promise<Creation> {
  const { config, supabase } = deps;
  const { body, attemptId, forwardedFor, log, deadlineAt } = request;
  const hooks = { deadlineAt, ...(deps.sleep ? { sleep: deps.sleep } : {}) };
  const userMetadata = {
    ...Object.fromEntries(
      Object.entries({
        full_name: body.full_name,
        username: body.username,
        avatar_url: body.avatar_url,
        metadata: body.metadata,
      })
        .filter(([, v]) => v !== undefined),
    ),
    [REGISTRATION_ATTEMPT_KEY]: attemptId,
  };
  const adminConcealable = config.register.mode === 'admin' && !config.register.adminEmailConfirm;

  const signUp = () =>
    deps.newAuthClient({
      serviceRole: forwardedFor !== null,
      headers: forwardedFor !== null ? { 'Sb-Forwarded-For': forwardedFor } : {},
    }).auth.signUp({
      email: body.email,
      password: body.password,
      options: {
        data: userMetadata,
        ...(config.register.emailRedirectTo
          ? { emailRedirectTo: config.register.emailRedirectTo }
          : {}),
        ...(body.captcha_token ? { captchaToken: body.captcha_token } : {}),
      },
    });
  const adminCreate = () =>
    supabase.auth.admin.createUser({
      email: body.email,
      password: body.password,
      email_confirm: config.register.adminEmailConfirm,
      user_metadata: userMetadata,
    });

  /**
   * The user registered under the address if this request's attempt created it; null when the
   * address has no user at all; 'other' when it is someone else's.
   */
  const ownerOf = async (): Promise<CreatedUser | null | 'other'> => {
    const found = await callRpc(
      supabase,
      'find_auth_user_by_email',
      { p_email: body.email },
      config.retry,
      hooks,
    );
    if (!found) return null;
    if (found.registration_attempt !== attemptId) return 'other';
    return { id: found.id, email: body.email, confirmed: found.email_confirmed_at !== null };
  };

  /** Auth says the address has a user: ours (from a lost earlier answer), or someone else's. */
  const existing = async (concealable: boolean, rateLimited: unknown): Promise<Creation> => {
    let owner: Awaited<ReturnType<typeof ownerOf>>;
    try {
      owner = await ownerOf();
    } catch (error) {
      // Unknowable within the deadline. Where the answer conceals it anyway, it is right either
      // way (and a user of ours has its profile from the trigger or the reconciler).
      if (concealable && !config.register.revealTakenEmail) return { kind: 'taken', concealable };
      throw databaseUnavailable(error);
    }
    if (owner === 'other') return { kind: 'taken', concealable };
    if (owner) return { kind: 'created', user: owner };
    // No user at all: Auth's 429 was its mail quota, not this address.
    if (rateLimited) throw rateLimited;
    return { kind: 'taken', concealable };
  };

  try {
    return await retry(
      async (attempt): Promise<Creation> => {
        const result = config.register.mode === 'admin' ? await adminCreate() : await signUp();
        if (result.error) {
          const error = result.error as AuthErrorLike;
          log.warn({ attempt, code: error.code, status: error.status }, 'Auth refused the user');
          if (isEmailTaken(error)) return await existing(adminConcealable, null);
          if (error.code === OVER_EMAIL_SEND_RATE_LIMIT && config.register.mode === 'signup') {
            return await existing(true, error);
          }
          throw error;
        }
        const user = result.data.user;
        // With confirmation on, Auth answers a confirmed address with a look-alike user that
        // has no identities and exists nowhere (facts: signUp).
        if (!user || (Array.isArray(user.identities) && user.identities.length === 0)) {
          return await existing(true, null);
        }
        if (user.user_metadata?.[REGISTRATION_ATTEMPT_KEY] !== attemptId) {
          // An unconfirmed address is answered with its existing user (confirmation on), or
          // confirmed and signed in (confirmation off): someone else's account either way.
          return { kind: 'taken', concealable: !user.email_confirmed_at };
        }
        return {
          kind: 'created',
          user: {
            id: user.id,
            email: user.email ?? body.email,
            confirmed: Boolean(user.email_confirmed_at),
          },
        };
      },
      config.retry,
      {
        ...hooks,
        isRetryable: isRetryableAuthFailure,
        onRetry: ({ attempt, delayMs }) =>
          log.info({ attempt, delay_ms: delayMs }, 'retrying user creation'),
      },
    );
  } catch (error) {
    const cause = error instanceof RetryExhausted ? error.lastError : error;
    throw cause instanceof AppError ? cause : authFailure(cause);
  }
}
