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
// The Auth stage and the attempt ids are in register-auth-user.ts, the Idempotency-Key protocol
// in idempotency.ts; this module wires them to the guard, the profile stage and the answer.
import { emailTaken } from './auth-errors.ts';
import { type AnswerTiming, createAnswerTiming } from './answer-timing.ts';
import { verifyCaptcha } from './captcha.ts';
import { clientAddressOf, clientKeyOf } from './client-address.ts';
import type { Config } from './config.ts';
import { AppError } from './errors.ts';
import { createHandler, json, readJson, type RequestContext } from './http.ts';
import {
  type Answer,
  answerOncePerKey,
  databaseIdempotencyStore,
  type IdempotencyStore,
} from './idempotency.ts';
import { createLogger, type Logger } from './logger.ts';
import { ensureProfile, outcomeFields } from './profile-service.ts';
import { attemptIdOf, createAuthUser, type NewAuthClient } from './register-auth-user.ts';
import type { RpcResult } from './rpc-results.ts';
import { callRpc, databaseUnavailable } from './rpc.ts';
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
  newAuthClient?: NewAuthClient;
  idempotency?: IdempotencyStore;
  /** How long first-path answers take, for answering taken addresses alike (answer-timing.ts). */
  answerTiming?: AnswerTiming;
  sleep?: (ms: number) => Promise<void>;
}

const PENDING_MESSAGE =
  'The account was created. Its profile could not be completed right now and will be finished automatically within minutes; no action is needed.';
const CONFIRM_MESSAGE = 'Check your email for a confirmation link to finish signing up.';

export function createRegisterHandler(deps: RegisterDeps): (request: Request) => Promise<Response> {
  const { config } = deps;
  const log = deps.log ??
    createLogger({ level: config.logLevel, bindings: { function: 'register' } });
  const supabase = deps.supabase ?? createSupabaseClient(config.supabaseUrl, config.serviceRoleKey);
  const newAuthClient: NewAuthClient = deps.newAuthClient ??
    (({ serviceRole, headers }) =>
      createSupabaseClient(
        config.supabaseUrl,
        serviceRole ? config.serviceRoleKey : (config.anonKey ?? config.serviceRoleKey),
        { headers },
      ));
  const idempotency = deps.idempotency ??
    databaseIdempotencyStore(
      supabase,
      'register',
      config.register.idempotencyTtlSeconds,
      config.retry,
    );
  const timing = deps.answerTiming ?? createAnswerTiming();
  const authUser = {
    config,
    supabase,
    newAuthClient,
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  };
  const retryHooks = (deadlineAt: number) => ({
    deadlineAt,
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });

  /** Refuses the attempt (switched off, rate limited, email or username taken). */
  async function guard(request: Request, body: RegisterBody, deadlineAt: number): Promise<void> {
    const client = clientKeyOf(request, config.clientAddress);
    let verdict: RpcResult<'register_preflight'>;
    try {
      verdict = await callRpc(
        supabase,
        'register_preflight',
        {
          // Requests with no trustworthy address share one larger ceiling rather than one
          // person's budget (see CLIENT_ADDRESS_HEADER in the README).
          p_client: client ?? 'unattributed',
          p_limit: client === null
            ? config.register.unattributedRateLimitMax
            : config.register.rateLimit.max,
          p_window_seconds: config.register.rateLimit.windowSeconds,
          p_username: body.username ?? null,
          // Asked only when the project chose to reveal taken addresses: otherwise the answer,
          // and its timing, must not depend on it.
          p_email: config.register.revealTakenEmail ? body.email : null,
        },
        config.retry,
        retryHooks(deadlineAt),
      );
    } catch (error) {
      throw databaseUnavailable(error);
    }
    if (!verdict.enabled) {
      throw new AppError(
        503,
        'registration_disabled',
        'Registration is switched off for now; try again later',
        {
          headers: { 'Retry-After': String(verdict.retry_after_seconds) },
        },
      );
    }
    if (!verdict.allowed) {
      throw new AppError(
        429,
        'rate_limited',
        'Too many registrations from this client; try again later',
        {
          headers: { 'Retry-After': String(verdict.retry_after_seconds) },
        },
      );
    }
    if (verdict.email_registered === true) throw emailTaken();
    if (verdict.username_available === false) {
      throw new AppError(409, 'username_taken', 'This username is already taken', {
        fields: { username: 'is already taken' },
      });
    }
  }

  /** The answer to a taken address that must not be told from a new one: no account, no profile. */
  async function concealed(body: RegisterBody, startedAt: number): Promise<Answer> {
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
  ): Promise<Answer> {
    await guard(request, body, deadlineAt);
    // A request without a trustworthy address goes to Auth as it always did (publishable key,
    // Auth checks the CAPTCHA), counted against the function's own address there.
    const forwarded = config.register.mode === 'signup' && config.register.forwardClientAddress
      ? clientAddressOf(request, config.clientAddress)
      : null;
    if (forwarded !== null && config.captcha) {
      await verifyCaptcha(config.captcha, body.captcha_token, forwarded);
    }
    const creation = await createAuthUser(authUser, {
      body,
      attemptId,
      forwardedFor: forwarded,
      log: ctx.log,
      deadlineAt,
    });
    if (creation.kind === 'taken') {
      ctx.annotate({ email_taken: true });
      if (creation.concealable && !config.register.revealTakenEmail) {
        return await concealed(body, startedAt);
      }
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
    return {
      status: 201,
      body: {
        user: userJson,
        profile: outcome.profile,
        profile_status: outcome.status,
        ...confirmation,
      },
    };
  }

  return createHandler({ name: 'register', methods: ['POST'], log }, async (request, ctx) => {
    const startedAt = performance.now();
    const deadlineAt = Date.now() + config.retry.deadlineMs;
    const raw = await readJson(request, config.maxBodyBytes);
    const parsed = RegisterBody.safeParse(raw);
    if (!parsed.success) {
      throw new AppError(400, 'validation_failed', 'The request body is invalid', {
        fields: fieldErrors(parsed.error, raw),
      });
    }
    const body = parsed.data;
    if ([...body.password].length < PASSWORD_MIN_LENGTH) {
      throw new AppError(422, 'weak_password', 'The password is too weak', {
        fields: { password: `must be at least ${PASSWORD_MIN_LENGTH} characters` },
      });
    }

    // With an Idempotency-Key, the same key and body make the same attempt id, so a retry after
    // a lost answer (even from a fresh instance, after this one died) recognises its user.
    const answer = await answerOncePerKey(
      request,
      body,
      { store: idempotency, secret: config.serviceRoleKey, deadlineAt, log: ctx.log },
      async (keyed) =>
        await registerOnce(
          request,
          body,
          await attemptIdOf(config.serviceRoleKey, keyed),
          ctx,
          startedAt,
          deadlineAt,
        ),
    );
    return json(answer.status, answer.body, answer.headers);
  });
}
