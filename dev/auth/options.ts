// What the Auth stand-in is configured with (dev/stack.ts passes all of it), and the defaults of
// the Supabase CLI's local stack.
import type pg from 'pg';
import type { LocalKeys } from '../keys.ts';
import { resolveHttpHook } from './hooks.ts';
import type { HttpHook, HttpHookOptions } from './hooks.ts';
import type { ConfirmationMail } from './mail.ts';
import { AddressLimiter, DEFAULT_SIGNUP_RATE_LIMIT } from './rate-limit.ts';
import type { RateLimit } from './rate-limit.ts';

export interface AuthOptions {
  /** Logged in as supabase_auth_admin (search_path = auth), as GoTrue connects. */
  pool: pg.Pool;
  keys: LocalKeys;
  /** The public API URL, e.g. http://127.0.0.1:54321; tokens are issued by `${apiUrl}/auth/v1`. */
  apiUrl: string;
  /** true = email confirmation off (the local default); false = users confirm through /verify. */
  autoconfirm: boolean;
  /** Where /verify lands when no allowed redirect_to is given. */
  siteUrl?: string;
  bcryptCost?: number;
  /** When set, /signup requires gotrue_meta_security.captcha_token to equal it. */
  captchaToken?: string;
  /** "Sends" a confirmation email. */
  onEmail: (mail: ConfirmationMail) => void;
  /**
   * GOTRUE_SMTP_MAX_FREQUENCY: how long after a confirmation mail a repeated signup of the still
   * unconfirmed address is refused with 429 over_email_send_rate_limit. Default 60, GoTrue's.
   */
  mailIntervalSeconds?: number;
  /** The before-user-created HTTP hook (GOTRUE_HOOK_BEFORE_USER_CREATED_*), called by /signup. */
  beforeUserCreatedHook?: HttpHookOptions;
  /** The per-address limit on /signup (GOTRUE_RATE_LIMIT_OTP); default 30 per 5 minutes. */
  signupRateLimit?: RateLimit;
  /**
   * GOTRUE_RATE_LIMIT_HEADER: the header whose first value is the rate-limit key. GoTrue has no
   * fallback to the remote address, so without it (and without a trusted Sb-Forwarded-For) no
   * request is limited, as on the local CLI, which sets none.
   */
  rateLimitHeader?: string;
  /** GOTRUE_SECURITY_SB_FORWARDED_FOR_ENABLED; default false, GoTrue's. */
  sbForwardedForEnabled?: boolean;
  /**
   * config.toml [auth] refresh_token_reuse_interval: for how many seconds after its use a refresh
   * token is still swapped again. Default 10, the CLI's and hosted Supabase's.
   */
  refreshTokenReuseIntervalSeconds?: number;
  /**
   * Dev/test only: asked on every request for a fault to inject (an outage or a slow Auth). Set
   * from code holding the stack (Stack.setAuthFault), never through an HTTP endpoint.
   */
  faults?: () => AuthFault | null;
}

/** An injected Auth misbehaviour, for the reliability tests. */
export interface AuthFault {
  /** Answer with this status (GoTrue's error body) instead of handling the request. */
  status?: number;
  /** Wait this long first; without `status` the request is then handled as usual (a slow Auth). */
  delayMs?: number;
  /** Only requests whose path (as the client sent it, e.g. /auth/v1/signup) matches; default every one. */
  paths?: RegExp;
  /** How many more matching requests to affect; counted down, unlimited when absent. */
  remaining?: number;
  /**
   * Handle the request fully (committing what it writes), then answer with `status` (GoTrue's
   * error body) instead, or, without `status`, close the connection without any answer: a
   * success the client never learns of.
   */
  afterCommit?: boolean;
}

export interface AuthConfig {
  pool: pg.Pool;
  keys: LocalKeys;
  /** Public base URL of this service: the issuer of its tokens and the base of its links. */
  authUrl: string;
  autoconfirm: boolean;
  siteUrl: string;
  bcryptCost: number;
  captchaToken: string | undefined;
  onEmail: (mail: ConfirmationMail) => void;
  mailIntervalMs: number;
  beforeUserCreatedHook: HttpHook | null;
  signupLimiter: AddressLimiter;
  rateLimitHeader: string | null;
  sbForwardedForEnabled: boolean;
  refreshTokenReuseIntervalSeconds: number;
  faults: () => AuthFault | null;
  /** config.toml [auth] jwt_expiry: how long an access token is valid. */
  jwtExpirySeconds: number;
  /** How long a confirmation link stays valid (config.toml [auth.email] otp_expiry). */
  otpExpirySeconds: number;
  /** config.toml [auth] jwt default audience, and the JWT roles allowed on /admin. */
  audience: string;
  adminRoles: readonly string[];
}

export function resolveOptions(options: AuthOptions): AuthConfig {
  return {
    pool: options.pool,
    keys: options.keys,
    authUrl: `${options.apiUrl.replace(/\/+$/, '')}/auth/v1`,
    autoconfirm: options.autoconfirm,
    siteUrl: options.siteUrl ?? 'http://127.0.0.1:3000',
    bcryptCost: options.bcryptCost ?? 10,
    captchaToken: options.captchaToken,
    onEmail: options.onEmail,
    mailIntervalMs: (options.mailIntervalSeconds ?? 60) * 1000,
    beforeUserCreatedHook: options.beforeUserCreatedHook
      ? resolveHttpHook(options.beforeUserCreatedHook)
      : null,
    signupLimiter: new AddressLimiter(options.signupRateLimit ?? DEFAULT_SIGNUP_RATE_LIMIT),
    rateLimitHeader: options.rateLimitHeader ? options.rateLimitHeader.toLowerCase() : null,
    sbForwardedForEnabled: options.sbForwardedForEnabled ?? false,
    refreshTokenReuseIntervalSeconds: options.refreshTokenReuseIntervalSeconds ?? 10,
    faults: options.faults ?? (() => null),
    jwtExpirySeconds: 3600,
    otpExpirySeconds: 3600,
    audience: 'authenticated',
    adminRoles: ['service_role', 'supabase_admin'],
  };
}
