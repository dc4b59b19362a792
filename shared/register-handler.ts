// register: validate → guard (switch, rate limit, username) → create the auth user through
// Supabase Auth → ensure the profile with retries → 201 (or 202 when the profile is pending).
import { authFailure, emailTaken, isEmailTaken } from './auth-errors.ts';
import type { Config } from './config.ts';
import { AppError, serviceUnavailable } from './errors.ts';
import { createHandler, errorBody, json, readJson, type RequestContext } from './http.ts';
import { answerForClaim, databaseIdempotencyStore, idempotencyKeyOf, requestHash, type IdempotencyStore } from './idempotency.ts';
import { createLogger, type Logger } from './logger.ts';
import { ensureProfile, outcomeFields, readOrEnsureProfile } from './profile-service.ts';
import { isTransient, retry, RetryExhausted } from './retry.ts';
import { fieldErrors, PASSWORD_MIN_LENGTH, RegisterBody } from './schemas.ts';
import { createSupabaseClient, type SupabaseClient } from './supabase-client.ts';

export interface RegisterDeps {
  config: Config;
  log?: Logger;
  /** Service-role client; built from config when absent. */
  supabase?: SupabaseClient;
  /** Client for Auth's /signup (signup mode); a fresh one per call, because a signup that
   * returns a session would otherwise switch a shared client to the user's token. */
  newAuthClient?: () => SupabaseClient;
  idempotency?: IdempotencyStore;
  sleep?: (ms: number) => Promise<void>;
}

interface CreatedUser {
  id: string;
  email: string;
  confirmed: boolean;
}

// Tolerance between the function's clock and the database's when judging whether a user
// returned by Auth was created by this request.
const CLOCK_SKEW_MS = 1000;

const PENDING_MESSAGE =
  'The account was created. Its profile could not be completed right now and will be finished automatically within minutes; no action is needed.';

/**
 * The caller's address for rate limiting: the last x-forwarded-for entry, which the gateway in
 * front of the function appends. Earlier entries come from the client and are not to be trusted
 * (a client could send a fresh one per request to escape the limit).
 */
export function clientOf(request: Request): string {
  const hops = (request.headers.get('x-forwarded-for') ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  return (hops.at(-1) ?? 'unknown').slice(0, 200);
}

export function createRegisterHandler(deps: RegisterDeps): (request: Request) => Promise<Response> {
  const { config } = deps;
  const log = deps.log ?? createLogger({ level: config.logLevel, bindings: { function: 'register' } });
  const supabase = deps.supabase ?? createSupabaseClient(config.supabaseUrl, config.serviceRoleKey);
  const newAuthClient = deps.newAuthClient ?? (() => createSupabaseClient(config.supabaseUrl, config.anonKey ?? config.serviceRoleKey));
  const idempotency = deps.idempotency ?? databaseIdempotencyStore(supabase, 'register', config.register.idempotencyTtlSeconds);

  /** Refuses the attempt (switched off, rate limited, email or username taken) or says whether the trigger will make the profile. */
  async function guard(request: Request, body: RegisterBody): Promise<{ triggerEnabled: boolean }> {
    const { data, error } = await supabase.rpc('register_preflight', {
      p_client: clientOf(request),
      p_limit: config.register.rateLimit.max,
      p_window_seconds: config.register.rateLimit.windowSeconds,
      p_username: body.username ?? null,
      p_email: body.email,
    });
    if (error) throw serviceUnavailable('The database is unavailable; try again shortly', 5, error);
    const verdict = data as {
      enabled: boolean;
      allowed: boolean;
      retry_after_seconds: number;
      username_available: boolean | null;
      email_registered: boolean | null;
      trigger_enabled?: boolean | null;
    };
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
    // Asked before Auth, because for an address still awaiting confirmation Auth's signup answers
    // with the existing user: a stranger would be told "created" and shown its profile.
    if (verdict.email_registered === true) throw emailTaken();
    if (verdict.username_available === false) {
      throw new AppError(409, 'username_taken', 'This username is already taken', { fields: { username: 'is already taken' } });
    }
    return { triggerEnabled: verdict.trigger_enabled === true };
  }

  /**
   * The one ambiguous case of retrying a user creation: an attempt failed in transit, and the
   * retry says the email exists. If that user was created after this request began, it is the
   * one the lost attempt made.
   */
  async function recoverLostCreate(email: string, since: number): Promise<CreatedUser | null> {
    const { data } = await supabase.rpc('find_auth_user_by_email', { p_email: email });
    const found = data as { id: string; created_at: string; email_confirmed_at: string | null } | null;
    if (!found || Date.parse(found.created_at) < since - 1000) return null;
    return { id: found.id, email, confirmed: found.email_confirmed_at !== null };
  }

  async function createUser(body: RegisterBody, ctx: RequestContext): Promise<CreatedUser> {
    const started = Date.now();
    const userMetadata = Object.fromEntries(
      Object.entries({ full_name: body.full_name, username: body.username, avatar_url: body.avatar_url, metadata: body.metadata })
        .filter(([, v]) => v !== undefined),
    );
    let lostAttempt = false;
    try {
      return await retry(
        async (attempt) => {
          const result =
            config.register.mode === 'admin'
              ? await supabase.auth.admin.createUser({
                  email: body.email,
                  password: body.password,
                  email_confirm: config.register.adminEmailConfirm,
                  user_metadata: userMetadata,
                })
              : await newAuthClient().auth.signUp({
                  email: body.email,
                  password: body.password,
                  options: {
                    data: userMetadata,
                    ...(config.register.emailRedirectTo ? { emailRedirectTo: config.register.emailRedirectTo } : {}),
                    ...(body.captcha_token ? { captchaToken: body.captcha_token } : {}),
                  },
                });
          if (result.error) {
            ctx.log.warn({ attempt, code: result.error.code, status: result.error.status }, 'Auth refused the user');
            if (isEmailTaken(result.error) && lostAttempt) {
              const mine = await recoverLostCreate(body.email, started);
              if (mine) return mine;
            }
            // Only an attempt that got no answer at all (network failure, timeout: status 0) may
            // have created the user unseen. A 5xx is an answer: Auth's transaction rolled back,
            // typically because a concurrent registration of the same email won the unique index.
            if (isTransient(result.error) && !(typeof result.error.status === 'number' && result.error.status > 0)) lostAttempt = true;
            throw result.error;
          }
          const user = result.data.user;
          // With confirmation on, Auth answers an already-registered email with a look-alike
          // user that has no identities and exists nowhere (facts: signUp).
          if (!user || (config.register.mode === 'signup' && Array.isArray(user.identities) && user.identities.length === 0)) {
            throw emailTaken();
          }
          // An unconfirmed address registered between our preflight and this signup comes back
          // as that older user: it is someone else's account, not ours.
          if (config.register.mode === 'signup' && !lostAttempt && Date.parse(user.created_at) < started - CLOCK_SKEW_MS) {
            throw emailTaken();
          }
          return { id: user.id, email: user.email ?? body.email, confirmed: Boolean(user.email_confirmed_at) };
        },
        config.retry,
        { ...(deps.sleep ? { sleep: deps.sleep } : {}), onRetry: ({ attempt, delayMs }) => ctx.log.info({ attempt, delay_ms: delayMs }, 'retrying user creation') },
      );
    } catch (error) {
      const cause = error instanceof RetryExhausted ? error.lastError : error;
      throw cause instanceof AppError ? cause : authFailure(cause);
    }
  }

  async function registerOnce(request: Request, body: RegisterBody, ctx: RequestContext): Promise<{ status: number; body: unknown }> {
    const { triggerEnabled } = await guard(request, body);
    const user = await createUser(body, ctx);
    ctx.log.debug({ user_id: user.id }, 'auth user created');
    ctx.annotate({ user_id: user.id });
    // With the trigger on, Auth's insert has made the profile already: read it instead of
    // asking ensure_user_profile, which would only answer `existed` and write a second audit row.
    const obtain = triggerEnabled ? readOrEnsureProfile : ensureProfile;
    const outcome = await obtain({ supabase, retry: config.retry, ...(deps.sleep ? { sleep: deps.sleep } : {}) }, user.id, {
      source: 'register',
      requestId: ctx.requestId,
      log: ctx.log,
      email: user.email,
      ...(body.full_name !== undefined ? { fullName: body.full_name } : {}),
      ...(body.username !== undefined ? { username: body.username } : {}),
      ...(body.avatar_url !== undefined ? { avatarUrl: body.avatar_url } : {}),
      ...(body.metadata !== undefined ? { metadata: body.metadata } : {}),
    });
    ctx.annotate(outcomeFields(outcome));
    const userJson = { id: user.id, email: user.email };
    const confirmation = { email_confirmation_required: !user.confirmed };
    if (outcome.status === 'pending') {
      return { status: 202, body: { user: userJson, profile: null, profile_status: 'pending', message: PENDING_MESSAGE, ...confirmation } };
    }
    return { status: 201, body: { user: userJson, profile: outcome.profile, profile_status: outcome.status, ...confirmation } };
  }

  return createHandler({ name: 'register', methods: ['POST'], log }, async (request, ctx) => {
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
      const result = await registerOnce(request, body, ctx);
      return json(result.status, result.body);
    }
    const hash = await requestHash(config.serviceRoleKey, body);
    const claim = await idempotency.claim(key, hash);
    if (claim.state !== 'claimed') {
      const answer = answerForClaim(claim);
      return json(answer.status, answer.body, answer.headers);
    }
    try {
      const result = await registerOnce(request, body, ctx);
      await idempotency.complete(key, hash, result.status, result.body);
      return json(result.status, result.body);
    } catch (error) {
      // A final answer (4xx) is stored so a retry gets the same; anything else frees the key.
      if (error instanceof AppError && error.status < 500 && error.status !== 429) {
        await idempotency.complete(key, hash, error.status, errorBody(error));
      } else {
        await idempotency.release(key, hash);
      }
      throw error;
    }
  });
}
