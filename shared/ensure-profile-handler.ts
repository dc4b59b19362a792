// ensure-profile: one guarantee for four callers, all idempotent.
//   (a) a signed-in user, with their access token: ensures their own profile, limited per user
//       and refused when Supabase Auth would refuse the user (banned, deleted);
//   (b) the service role, with a secret key: ensures {user_id};
//   (c) a Supabase Database Webhook on INSERT into auth.users, with the shared secret header;
//   (d) Supabase Auth's before-user-created hook, signed per Standard Webhooks: checks that the
//       pending user's metadata will make a valid profile and rejects the signup if not, leaving
//       a 'refused' audit row with the request id (before-user-created-hook.ts).
import { createBeforeUserCreatedHook } from './before-user-created-hook.ts';
import { type Caller, identifyCaller } from './caller-auth.ts';
import type { Config } from './config.ts';
import { AppError } from './errors.ts';
import { createHandler, json, parseJson, readText, type RequestContext } from './http.ts';
import { createLogger, type Logger } from './logger.ts';
import type { EnsureSource } from './profile-contract.ts';
import type { CallerVerdict } from './rpc-results.ts';
import { rpcOnce, rpcResult } from './rpc.ts';
import { type EnsureOutcome, ensureProfile, outcomeFields } from './profile-service.ts';
import { DatabaseWebhookBody, EnsureProfileBody, invalidBody } from './schemas.ts';
import { createSupabaseClient, type SupabaseClient } from './supabase-client.ts';
import { DATABASE_WEBHOOK_HEADER, isAuthHook, verifyDatabaseWebhook } from './webhooks.ts';

interface EnsureProfileDeps {
  config: Config;
  log?: Logger;
  supabase?: SupabaseClient;
  sleep?: (ms: number) => Promise<void>;
}

function answer(userId: string, outcome: EnsureOutcome, ctx: RequestContext): Response {
  ctx.annotate({ user_id: userId, ...outcomeFields(outcome) });
  if (outcome.status === 'pending') {
    return json(202, {
      user_id: userId,
      profile: null,
      profile_status: 'pending',
      // How it will be finished: from the repair queue, or by the reconciler's census.
      completion: outcome.queued ? 'repair_queued' : 'reconciler_sweep',
      message:
        'The profile could not be completed right now and will be finished automatically within minutes.',
    });
  }
  return json(200, { user_id: userId, profile: outcome.profile, profile_status: outcome.status });
}

export function createEnsureProfileHandler(
  deps: EnsureProfileDeps,
): (request: Request) => Promise<Response> {
  const { config } = deps;
  const log = deps.log ??
    createLogger({ level: config.logLevel, bindings: { function: 'ensure-profile' } });
  const supabase = deps.supabase ?? createSupabaseClient(config.supabaseUrl, config.serviceRoleKey);

  const authHook = createBeforeUserCreatedHook(config, supabase);

  const ensure = (
    userId: string,
    source: EnsureSource,
    ctx: RequestContext,
    email?: string | null,
  ) =>
    ensureProfile(
      { supabase, retry: config.retry, ...(deps.sleep ? { sleep: deps.sleep } : {}) },
      userId,
      {
        source,
        requestId: ctx.requestId,
        log: ctx.log,
        ...(email !== undefined ? { email } : {}),
      },
    );

  async function databaseWebhook(
    request: Request,
    rawBody: string,
    ctx: RequestContext,
  ): Promise<Response> {
    verifyDatabaseWebhook(request, config.webhookSecret);
    const payload = parseJson(rawBody);
    const parsed = DatabaseWebhookBody.safeParse(payload);
    if (!parsed.success) throw invalidBody(parsed.error, payload);
    const record = parsed.data.record;
    const email = typeof record.email === 'string' ? record.email : null;
    return answer(record.id, await ensure(record.id, 'webhook', ctx, email), ctx);
  }

  async function caller(rawBody: string, who: Caller, ctx: RequestContext): Promise<Response> {
    const payload = rawBody.trim() === '' ? {} : parseJson(rawBody);
    if (who.kind === 'service') {
      const parsed = EnsureProfileBody.safeParse(payload);
      if (!parsed.success) throw invalidBody(parsed.error, payload);
      return answer(parsed.data.user_id, await ensure(parsed.data.user_id, 'ensure', ctx), ctx);
    }
    // A user may name themselves, nobody else.
    const parsed = EnsureProfileBody.partial().safeParse(payload);
    if (!parsed.success) throw invalidBody(parsed.error, payload);
    if (parsed.data.user_id !== undefined && parsed.data.user_id.toLowerCase() !== who.userId) {
      throw new AppError(403, 'forbidden', 'A signed-in user can only ensure their own profile');
    }
    const verdict = await guardUser(who.userId, ctx);
    if (verdict?.profile) {
      ctx.annotate({ existed_repeat: verdict.repeat === true });
      return answer(who.userId, {
        status: 'existed',
        profile: verdict.profile,
        attempts: 0,
        via: 'read',
      }, ctx);
    }
    return answer(who.userId, await ensure(who.userId, 'ensure', ctx, who.email), ctx);
  }

  /**
   * One round trip before a signed-in user's ensure (ensure_profile_for_caller): refuses a user
   * over ENSURE_RATE_LIMIT_MAX calls per window (429) or one Supabase Auth would refuse (403),
   * and answers an existing profile, recorded as a counted repeat after the first of the hour.
   * null when the guard itself failed: the profile guarantee matters more than the limit, so the
   * call then goes on as it did before the guard existed (ensureProfile, with every fallback).
   */
  async function guardUser(userId: string, ctx: RequestContext): Promise<CallerVerdict | null> {
    const { data, error, status } = await rpcOnce(supabase, 'ensure_profile_for_caller', {
      p_user_id: userId,
      p_limit: config.ensure.rateLimit.max,
      p_window_seconds: config.ensure.rateLimit.windowSeconds,
      p_request_id: ctx.requestId,
    });
    if (error) {
      ctx.log.warn(
        { code: error.code, status, err: error.message },
        'ensure_profile_for_caller failed; ensuring without the caller guard',
      );
      return null;
    }
    const verdict = rpcResult('ensure_profile_for_caller', data);
    if (!verdict.allowed) {
      throw new AppError(
        429,
        'rate_limited',
        'Too many ensure-profile calls for this user; try again later',
        {
          headers: { 'Retry-After': String(verdict.retry_after_seconds) },
        },
      );
    }
    if (verdict.standing === 'banned') {
      throw new AppError(403, 'user_banned', 'This user is banned');
    }
    // Supabase Auth answers a token whose user is gone with 403 user_not_found; a soft-deleted
    // user has lost every session, so its token is refused there too.
    if (verdict.standing === 'deleted' || verdict.standing === 'missing') {
      throw new AppError(403, 'user_not_found', 'The user of this access token does not exist');
    }
    return verdict;
  }

  return createHandler({ name: 'ensure-profile', methods: ['POST'], log }, async (request, ctx) => {
    if (isAuthHook(request)) {
      return await authHook(request, await readText(request, config.maxBodyBytes), ctx);
    }
    if (request.headers.has(DATABASE_WEBHOOK_HEADER)) {
      return await databaseWebhook(request, await readText(request, config.maxBodyBytes), ctx);
    }
    // Authenticate before reading the body: an anonymous caller costs us no parsing.
    const who = await identifyCaller(request, {
      serviceRoleKeys: config.serviceRoleKeys,
      auth: supabase,
    });
    const hasBody = request.headers.get('content-length') !== '0' && request.body !== null;
    const rawBody = hasBody ? await readText(request, config.maxBodyBytes) : '';
    return await caller(rawBody, who, ctx);
  });
}
