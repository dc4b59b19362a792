// register: validate → guard (switch, rate limit, username) → create the auth user through
// Supabase Auth, knowing whether this very request created it → ensure the profile → answer.
//
// Three promises shape it:
//   * an answer carries an account and its profile only to the request that created that
//     account: every attempt carries a random id in the signup's user metadata
//     (registration_attempt), and a user whose id differs belongs to someone else;
//   * with email confirmation on, an address that is registered already gets the answer a new
//     one gets ("check your email"), in the same time, as Supabase Auth itself answers;
//   * one deadline bounds the whole request: the preflight, Auth and the profile stage retry
//     transient failures within it, and once Auth has created the user the request ends as that
//     user's success (201, or 202 when the profile truly is not there yet).
import { authFailure, emailTaken, isEmailTaken } from './auth-errors.ts';
import { createAnswerTiming, type AnswerTiming } from './answer-timing.ts';
import { verifyCaptcha } from './captcha.ts';
import { clientAddressOf, clientKeyOf } from './client-address.ts';
import type { Config } from './config.ts';
import { AppError, serviceUnavailable } from './errors.ts';
import { createHandler, errorBody, json, readJson, type RequestContext } from './http.ts';
import { answerForClaim, databaseIdempotencyStore, idempotencyKeyOf, requestHash, type IdempotencyStore } from './idempotency.ts';
import { createLogger, type Logger } from './logger.ts';
import { ensureProfile, outcomeFields } from './profile-service.ts';
import { isTransient, retry, RetryExhausted } from './retry.ts';
import type { RpcResult } from './rpc-results.ts';
import { callRpc } from './rpc.ts';
import { fieldErrors, PASSWORD_MIN_LENGTH, RegisterBody } from './schemas.ts';
import { createSupabaseClient, type SupabaseClient } from './supabase-client.ts';

export interface RegisterDeps {
  config: Config;
  log?: Logger;
  /** Service-role client; built from config when absent. */
  supabase?: SupabaseClient;
  /** Client for Auth's /signup (signup mode); a fresh one per call, because a signup that
   * returns a session would otherwise switch a shared client to the user's token. `headers`
   * are sent with the signup (Sb-Forwarded-For). */
  newAuthClient?: (options: { serviceRole: boolean; headers: Record<string, string> }) => SupabaseClient;
  idempotency?: IdempotencyStore;
  /** How long first-path answers take, for answering taken addresses alike (answer-timing.ts). */
  answerTiming?: AnswerTiming;
  sleep?: (ms: number) => Promise<void>;
}

/** The user-metadata key holding the id of the registration attempt that created the user. */
export const REGISTRATION_ATTEMPT_KEY = 'registration_attempt';

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

const PENDING_MESSAGE =
  'The account was created. Its profile could not be completed right now and will be finished automatically within minutes; no action is needed.';
const CONFIRM_MESSAGE = 'Check your email for a confirmation link to finish signing up.';

// Auth's answers that mean "this address has a user already" (422 for a confirmed address with
// confirmation off, or through the admin API; 429 for an unconfirmed one whose confirmation mail
// went out less than the mail interval ago).
const OVER_EMAIL_SEND_RATE_LIMIT = 'over_email_send_rate_limit';

interface AuthErrorLike {
  name?: string;
  status?: number;
  code?: string;
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

export function createRegisterHandler(deps: RegisterDeps): (request: Request) => Promise<Response> {
  const { config } = deps;
  const log = deps.log ?? createLogger({ level: config.logLevel, bindings: { function: 'register' } });
  const supabase = deps.supabase ?? createSupabaseClient(config.supabaseUrl, config.serviceRoleKey);
  const newAuthClient =
    deps.newAuthClient ??
    (({ serviceRole, headers }) =>
      createSupabaseClient(config.supabaseUrl, serviceRole ? config.serviceRoleKey : (config.anonKey ?? config.serviceRoleKey), { headers }));
  const idempotency = deps.idempotency ?? databaseIdempotencyStore(supabase, 'register', config.register.idempotencyTtlSeconds, config.retry);
  const timing = deps.answerTiming ?? createAnswerTiming();
  const retryHooks = (deadlineAt: number) => ({ deadlineAt, ...(deps.sleep ? { sleep: deps.sleep } : {}) });

  /** Refuses the attempt (switched off, rate limited, email or username taken). */
  async function guard(request: Request, body: RegisterBody, deadlineAt: number): Promise<void> {
    const client = clientKeyOf(request, config.clientAddress);
    let verdict: RpcResult<'register_preflight'>;
    try {
      verdict = await callRpc(supabase, 'register_preflight', {
        // Requests with no trustworthy address share one larger ceiling rather than one
        // person's budget (see CLIENT_ADDRESS_HEADER in the README).
        p_client: client ?? 'unattributed',
        p_limit: client === null ? config.register.unattributedRateLimitMax : config.register.rateLimit.max,
        p_window_seconds: config.register.rateLimit.windowSeconds,
        p_username: body.username ?? null,
        // Asked only when the project chose to reveal taken addresses: otherwise the answer,
        // and its timing, must not depend on it.
        p_email: config.register.revealTakenEmail ? body.email : null,
      }, config.retry, retryHooks(deadlineAt));
    } catch (error) {
      throw serviceUnavailable('The database is unavailable; try again shortly', 5, error instanceof RetryExhausted ? error.lastError : error);
    }
    if (!verdict.enabled) {
      throw new AppError(503, 'registration_disabled', 'Registration is switched off for now; try again later', {
        headers: { 'Retry-After': String(verdict.retry_after_seconds) },
      });
    }
    if (!verdict.allowed) {
      throw new AppError(429, 'rate_limited', 'Too many registrations from this client; try again later', {
        headers: { 'Retry-After': String(verdict.retry_after_seconds) },
      });
    }
    if (verdict.email_registered === true) throw emailTaken();
    if (verdict.username_available === false) {
      throw new AppError(409, 'username_taken', 'This username is already taken', { fields: { username: 'is already taken' } });
    }
  }

  /**
   * The user registered under `email` if this request's attempt created it; null when the
   * address has no user at all; 'other' when it is someone else's.
   */
  async function ownerOf(email: string, attemptId: string, deadlineAt: number): Promise<CreatedUser | null | 'other'> {
    const found = await callRpc(
      supabase, 'find_auth_user_by_email', { p_email: email }, config.retry, retryHooks(deadlineAt));
    if (!found) return null;
    if (found.registration_attempt !== attemptId) return 'other';
    return { id: found.id, email, confirmed: found.email_confirmed_at !== null };
  }

  /**
   * createUser: `address`, when set, goes to Auth in Sb-Forwarded-For, with the secret key that
   * Auth requires for it (and for which it skips its CAPTCHA check: see verifyCaptcha).
   */
  async function createUser(body: RegisterBody, attemptId: string, address: string | null, ctx: RequestContext, deadlineAt: number): Promise<Creation> {
    const userMetadata = {
      ...Object.fromEntries(
        Object.entries({ full_name: body.full_name, username: body.username, avatar_url: body.avatar_url, metadata: body.metadata })
          .filter(([, v]) => v !== undefined),
      ),
      [REGISTRATION_ATTEMPT_KEY]: attemptId,
    };
    const adminConcealable = config.register.mode === 'admin' && !config.register.adminEmailConfirm;

    const signUp = () =>
      newAuthClient({ serviceRole: address !== null, headers: address !== null ? { 'Sb-Forwarded-For': address } : {} }).auth.signUp({
        email: body.email,
        password: body.password,
        options: {
          data: userMetadata,
          ...(config.register.emailRedirectTo ? { emailRedirectTo: config.register.emailRedirectTo } : {}),
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

    /** Auth says the address has a user: ours (from a lost earlier answer), or someone else's. */
    const existing = async (concealable: boolean, rateLimited: unknown): Promise<Creation> => {
      let owner: Awaited<ReturnType<typeof ownerOf>>;
      try {
        owner = await ownerOf(body.email, attemptId, deadlineAt);
      } catch (error) {
        // Unknowable within the deadline. Where the answer conceals it anyway, it is right either
        // way (and a user of ours has its profile from the trigger or the reconciler).
        if (concealable && !config.register.revealTakenEmail) return { kind: 'taken', concealable };
        throw serviceUnavailable('The database is unavailable; try again shortly', 5, error instanceof RetryExhausted ? error.lastError : error);
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
            ctx.log.warn({ attempt, code: error.code, status: error.status }, 'Auth refused the user');
            if (isEmailTaken(error)) return await existing(adminConcealable, null);
            if (error.code === OVER_EMAIL_SEND_RATE_LIMIT && config.register.mode === 'signup') return await existing(true, error);
            throw error;
          }
          const user = result.data.user;
          // With confirmation on, Auth answers a confirmed address with a look-alike user that
          // has no identities and exists nowhere (facts: signUp).
          if (!user || (Array.isArray(user.identities) && user.identities.length === 0)) return await existing(true, null);
          if (user.user_metadata?.[REGISTRATION_ATTEMPT_KEY] !== attemptId) {
            // An unconfirmed address is answered with its existing user (confirmation on), or
            // confirmed and signed in (confirmation off): someone else's account either way.
            return { kind: 'taken', concealable: !user.email_confirmed_at };
          }
          return { kind: 'created', user: { id: user.id, email: user.email ?? body.email, confirmed: Boolean(user.email_confirmed_at) } };
        },
        config.retry,
        {
          ...retryHooks(deadlineAt),
          isRetryable: isRetryableAuthFailure,
          onRetry: ({ attempt, delayMs }) => ctx.log.info({ attempt, delay_ms: delayMs }, 'retrying user creation'),
        },
      );
    } catch (error) {
      const cause = error instanceof RetryExhausted ? error.lastError : error;
      throw cause instanceof AppError ? cause : authFailure(cause);
    }
  }

  /** The answer to a taken address that must not be told from a new one: no account, no profile. */
  async function concealed(body: RegisterBody, startedAt: number): Promise<{ status: number; body: unknown }> {
    await timing.pad(startedAt);
    return { status: 201, body: awaitingConfirmation(crypto.randomUUID(), body.email) };
  }

  function awaitingConfirmation(userId: string, email: string) {
    return {
      user: { id: userId, email },
      profile: null,
      profile_status: 'awaiting_confirmation',
      email_confirmation_required: true,
      message: CONFIRM_MESSAGE,
    };
  }

  async function registerOnce(
    request: Request,
    body: RegisterBody,
    attemptId: string,
    ctx: RequestContext,
    startedAt: number,
    deadlineAt: number,
  ): Promise<{ status: number; body: unknown }> {
    await guard(request, body, deadlineAt);
    // A request without a trustworthy address goes to Auth as it always did (publishable key,
    // Auth checks the CAPTCHA), counted against the function's own address there.
    const forwarded =
      config.register.mode === 'signup' && config.register.forwardClientAddress ? clientAddressOf(request, config.clientAddress) : null;
    if (forwarded !== null && config.captcha) await verifyCaptcha(config.captcha, body.captcha_token, forwarded);
    const creation = await createUser(body, attemptId, forwarded, ctx, deadlineAt);
    if (creation.kind === 'taken') {
      ctx.annotate({ email_taken: true });
      if (creation.concealable && !config.register.revealTakenEmail) return await concealed(body, startedAt);
      throw emailTaken();
    }
    const user = creation.user;
    ctx.log.debug({ user_id: user.id }, 'auth user created');
    ctx.annotate({ user_id: user.id });
    // One call reads or makes the profile and leaves this request's audit row (its request id,
    // outcome and duration): `existed` when the trigger made it inside Auth's insert, `created`
    // when the trigger was off or failed.
    const outcome = await ensureProfile(
      { supabase, retry: config.retry, deadlineAt, ...(deps.sleep ? { sleep: deps.sleep } : {}) },
      user.id,
      {
        source: 'register',
        requestId: ctx.requestId,
        log: ctx.log,
        email: user.email,
        ...(body.full_name !== undefined ? { fullName: body.full_name } : {}),
        ...(body.username !== undefined ? { username: body.username } : {}),
        ...(body.avatar_url !== undefined ? { avatarUrl: body.avatar_url } : {}),
        ...(body.metadata !== undefined ? { metadata: body.metadata } : {}),
      },
    );
    ctx.annotate(outcomeFields(outcome));
    if (!user.confirmed && !config.register.revealTakenEmail) {
      // The same answer a taken address gets, at the same time: the profile is made (or queued)
      // all the same.
      timing.record(performance.now() - startedAt);
      await timing.pad(startedAt);
      return { status: 201, body: awaitingConfirmation(user.id, user.email) };
    }
    const userJson = { id: user.id, email: user.email };
    const confirmation = { email_confirmation_required: !user.confirmed };
    if (outcome.status === 'pending') {
      return {
        status: 202,
        body: {
          user: userJson,
          profile: null,
          profile_status: 'pending',
          // How it will be finished: from the repair queue, or by the reconciler's census.
          completion: outcome.queued ? 'repair_queued' : 'reconciler_sweep',
          message: PENDING_MESSAGE,
          ...confirmation,
        },
      };
    }
    return { status: 201, body: { user: userJson, profile: outcome.profile, profile_status: outcome.status, ...confirmation } };
  }

  return createHandler({ name: 'register', methods: ['POST'], log }, async (request, ctx) => {
    const startedAt = performance.now();
    const deadlineAt = Date.now() + config.retry.deadlineMs;
    const raw = await readJson(request, config.maxBodyBytes);
    const parsed = RegisterBody.safeParse(raw);
    if (!parsed.success) {
      throw new AppError(400, 'validation_failed', 'The request body is invalid', { fields: fieldErrors(parsed.error, raw) });
    }
    const body = parsed.data;
    if ([...body.password].length < PASSWORD_MIN_LENGTH) {
      throw new AppError(422, 'weak_password', 'The password is too weak', {
        fields: { password: `must be at least ${PASSWORD_MIN_LENGTH} characters` },
      });
    }

    const key = idempotencyKeyOf(request);
    if (key === null) {
      const result = await registerOnce(request, body, randomAttemptId(), ctx, startedAt, deadlineAt);
      return json(result.status, result.body);
    }
    const hash = await requestHash(config.serviceRoleKey, body);
    const claim = await idempotency.claim(key, hash, deadlineAt);
    if (claim.state !== 'claimed') {
      const answer = answerForClaim(claim);
      return json(answer.status, answer.body, answer.headers);
    }
    // The same key and body always make the same attempt id, so a retry after a lost answer
    // (even from a fresh instance, after this one died) recognises the user it created.
    const attemptId = (await requestHash(config.serviceRoleKey, { registration_attempt: key, request: hash })).slice(0, 32);
    let result: { status: number; body: unknown };
    try {
      result = await registerOnce(request, body, attemptId, ctx, startedAt, deadlineAt);
    } catch (error) {
      // A final answer (4xx) is stored so a retry gets the same; anything else frees the key.
      if (error instanceof AppError && error.status < 500 && error.status !== 429) {
        await idempotency.complete(key, hash, error.status, errorBody(error), deadlineAt).catch((cause) =>
          ctx.log.warn({ err: cause instanceof Error ? cause.message : String(cause) }, 'could not store the answer for the Idempotency-Key'));
      } else {
        await idempotency.release(key, hash).catch(() => undefined);
      }
      throw error;
    }
    // Storing the answer may fail; the answer itself stands. A retry with the key then finds it
    // claimed (409 in progress) until the claim expires, or runs again and, by the attempt id,
    // recognises the user this request created.
    await idempotency.complete(key, hash, result.status, result.body, deadlineAt).catch((cause) =>
      ctx.log.warn({ err: cause instanceof Error ? cause.message : String(cause) }, 'could not store the answer for the Idempotency-Key'));
    return json(result.status, result.body);
  });
}

function randomAttemptId(): string {
  return crypto.randomUUID().replaceAll('-', '');
}
