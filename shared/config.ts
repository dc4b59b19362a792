// The one config loader. Every function reads its environment once, at start-up, through
// loadConfig(env): Supabase's injected variables plus our own settings, validated with zod.
// A missing or malformed value is a start-up error naming the variable, never its value.
import { z } from 'zod';
import { CAPTCHA_VERIFY_URLS, type CaptchaConfig } from './captcha.ts';
import type { ClientAddressSource } from './client-address.ts';
import type { RetryPolicy } from './retry.ts';

const KEY_MAP = z.record(z.string(), z.string().min(1));
// SUPABASE_SECRET_KEYS / SUPABASE_PUBLISHABLE_KEYS: JSON such as {"default": "sb_secret_…"}.
const keyMapJson = z.string().refine((raw) => {
  try {
    const parsed: unknown = JSON.parse(raw);
    return KEY_MAP.safeParse(parsed).success &&
      typeof (parsed as Record<string, unknown>).default === 'string';
  } catch {
    return false;
  }
}, 'must be a JSON object with a "default" key');

const boolean = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const ENV = z
  .object({
    SUPABASE_URL: z.url({ protocol: /^https?$/ }),
    SUPABASE_SERVICE_ROLE_KEY: z.string().min(1).optional(),
    SUPABASE_SECRET_KEYS: keyMapJson.optional(),
    SUPABASE_ANON_KEY: z.string().min(1).optional(),
    SUPABASE_PUBLISHABLE_KEYS: keyMapJson.optional(),

    // The deadline, not the attempt count, is what bounds a request's retries: enough attempts
    // to ride out a database restart of a few seconds, never longer than the deadline.
    PROFILE_RETRY_MAX_ATTEMPTS: int(1, 100).default(30),
    PROFILE_RETRY_BASE_DELAY_MS: int(1, 10_000).default(100),
    PROFILE_RETRY_MAX_DELAY_MS: int(1, 60_000).default(2_000),
    PROFILE_RETRY_DEADLINE_MS: int(100, 120_000).default(8_000),

    REGISTER_MODE: z.enum(['signup', 'admin']).default('signup'),
    REGISTER_ADMIN_EMAIL_CONFIRM: boolean.default(false),
    REGISTER_EMAIL_REDIRECT_TO: z.url().optional(),
    REGISTER_RATE_LIMIT_MAX: int(1, 1_000_000).default(10),
    REGISTER_RATE_LIMIT_WINDOW_SECONDS: int(1, 86_400).default(60),
    REGISTER_REVEAL_TAKEN_EMAIL: boolean.default(false),
    REGISTER_UNATTRIBUTED_RATE_LIMIT_MAX: int(1, 1_000_000).default(30),
    REGISTER_FORWARD_CLIENT_ADDRESS: boolean.default(false),
    IDEMPOTENCY_TTL_SECONDS: int(60, 7 * 86_400).default(86_400),

    ENSURE_RATE_LIMIT_MAX: int(1, 1_000_000).default(30),
    ENSURE_RATE_LIMIT_WINDOW_SECONDS: int(1, 86_400).default(60),

    CLIENT_ADDRESS_HEADER: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a header name')
      .default('x-forwarded-for'),
    CLIENT_ADDRESS_HOP: int(1, 10).default(1),

    CAPTCHA_PROVIDER: z.enum(['hcaptcha', 'turnstile', 'none']).optional(),
    CAPTCHA_SECRET: z.string().min(1).optional(),
    CAPTCHA_VERIFY_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),

    PROFILE_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
    AUTH_HOOK_SECRET: z.string().regex(
      /^v1,whsec_[A-Za-z0-9+/=]+$/,
      'must look like v1,whsec_<base64>',
    ).optional(),
    PROFILE_HEALTH_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),

    MAX_BODY_BYTES: int(256, 1_048_576).default(16_384),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(
      'info',
    ),
  })
  .superRefine((env, ctx) => {
    if (env.REGISTER_FORWARD_CLIENT_ADDRESS && !env.SUPABASE_SECRET_KEYS) {
      ctx.addIssue({
        code: 'custom',
        path: ['REGISTER_FORWARD_CLIENT_ADDRESS'],
        message:
          'needs SUPABASE_SECRET_KEYS: Supabase Auth honours Sb-Forwarded-For only with a secret key, not the legacy service_role key',
      });
    }
    // A signup made with a secret key skips Auth's CAPTCHA check, so forwarding must say who checks it.
    if (env.REGISTER_FORWARD_CLIENT_ADDRESS && env.CAPTCHA_PROVIDER === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['CAPTCHA_PROVIDER'],
        message:
          'required with REGISTER_FORWARD_CLIENT_ADDRESS: hcaptcha or turnstile (register checks the token), or none',
      });
    }
    if (
      (env.CAPTCHA_PROVIDER === 'hcaptcha' || env.CAPTCHA_PROVIDER === 'turnstile') &&
      !env.CAPTCHA_SECRET
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['CAPTCHA_SECRET'],
        message: `required with CAPTCHA_PROVIDER=${env.CAPTCHA_PROVIDER}`,
      });
    }
    if (!env.SUPABASE_SECRET_KEYS && !env.SUPABASE_SERVICE_ROLE_KEY) {
      ctx.addIssue({
        code: 'custom',
        path: ['SUPABASE_SERVICE_ROLE_KEY'],
        message: 'required (or SUPABASE_SECRET_KEYS): the functions act with the service role',
      });
    }
  });

export interface Config {
  supabaseUrl: string;
  /** Secret API key: the new sb_secret_… key when the project has one, else the legacy service_role JWT. */
  serviceRoleKey: string;
  /** Every key that grants the service role (new and legacy), for recognising service callers. */
  serviceRoleKeys: string[];
  anonKey: string | undefined;
  /** Every key that only grants public (anon) access: what supabase-js sends as its bearer by default. */
  publicKeys: string[];
  retry: RetryPolicy;
  register: {
    mode: 'signup' | 'admin';
    adminEmailConfirm: boolean;
    emailRedirectTo: string | undefined;
    rateLimit: { max: number; windowSeconds: number };
    /**
     * One ceiling shared by every request whose client address is unknown, so such requests
     * are neither unlimited nor squeezed into a per-client budget meant for one person.
     */
    unattributedRateLimitMax: number;
    /**
     * false (default): with email confirmation on, an already-registered email gets the same
     * answer as a new one, as Supabase Auth does. true: it gets 409 email_taken up front.
     */
    revealTakenEmail: boolean;
    /** Send the client's address to Auth in Sb-Forwarded-For (the project must enable it). */
    forwardClientAddress: boolean;
    idempotencyTtlSeconds: number;
  };
  ensure: {
    /** ensure-profile calls per signed-in user per window; service, webhook and hook callers are not limited. */
    rateLimit: { max: number; windowSeconds: number };
  };
  /** Where the function finds the client's address; see shared/client-address.ts. */
  clientAddress: ClientAddressSource;
  /** Who checks CAPTCHA tokens register itself verifies (only when it forwards client addresses). */
  captcha: CaptchaConfig | null;
  webhookSecret: string | undefined;
  authHookSecret: string | undefined;
  healthToken: string | undefined;
  /** Where alert transitions are posted (a Slack incoming webhook or any JSON receiver). */
  alertWebhookUrl: string | undefined;
  maxBodyBytes: number;
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Validates an environment (Deno.env.toObject() or process.env) into a Config, or throws ConfigError. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings are what an unset secret looks like in many deploy tools: treat them as unset.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const result = ENV.safeParse(present);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) =>
        `${issue.path.join('.') || 'environment'}: ${issue.message}`
      ),
    );
  }
  const e = result.data;
  const secretKeys = e.SUPABASE_SECRET_KEYS
    ? (JSON.parse(e.SUPABASE_SECRET_KEYS) as Record<string, string>)
    : {};
  const publishableKeys = e.SUPABASE_PUBLISHABLE_KEYS
    ? (JSON.parse(e.SUPABASE_PUBLISHABLE_KEYS) as Record<string, string>)
    : {};
  const serviceRoleKeys = [
    ...Object.values(secretKeys),
    ...(e.SUPABASE_SERVICE_ROLE_KEY ? [e.SUPABASE_SERVICE_ROLE_KEY] : []),
  ];
  return {
    supabaseUrl: e.SUPABASE_URL.replace(/\/+$/, ''),
    serviceRoleKey: secretKeys.default ?? e.SUPABASE_SERVICE_ROLE_KEY!,
    serviceRoleKeys,
    anonKey: publishableKeys.default ?? e.SUPABASE_ANON_KEY,
    publicKeys: [
      ...Object.values(publishableKeys),
      ...(e.SUPABASE_ANON_KEY ? [e.SUPABASE_ANON_KEY] : []),
    ],
    retry: {
      maxAttempts: e.PROFILE_RETRY_MAX_ATTEMPTS,
      baseDelayMs: e.PROFILE_RETRY_BASE_DELAY_MS,
      maxDelayMs: e.PROFILE_RETRY_MAX_DELAY_MS,
      deadlineMs: e.PROFILE_RETRY_DEADLINE_MS,
    },
    register: {
      mode: e.REGISTER_MODE,
      adminEmailConfirm: e.REGISTER_ADMIN_EMAIL_CONFIRM,
      emailRedirectTo: e.REGISTER_EMAIL_REDIRECT_TO,
      rateLimit: {
        max: e.REGISTER_RATE_LIMIT_MAX,
        windowSeconds: e.REGISTER_RATE_LIMIT_WINDOW_SECONDS,
      },
      unattributedRateLimitMax: e.REGISTER_UNATTRIBUTED_RATE_LIMIT_MAX,
      revealTakenEmail: e.REGISTER_REVEAL_TAKEN_EMAIL,
      forwardClientAddress: e.REGISTER_FORWARD_CLIENT_ADDRESS,
      idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
    },
    ensure: {
      rateLimit: {
        max: e.ENSURE_RATE_LIMIT_MAX,
        windowSeconds: e.ENSURE_RATE_LIMIT_WINDOW_SECONDS,
      },
    },
    clientAddress: { header: e.CLIENT_ADDRESS_HEADER.toLowerCase(), hop: e.CLIENT_ADDRESS_HOP },
    captcha: e.CAPTCHA_PROVIDER === 'hcaptcha' || e.CAPTCHA_PROVIDER === 'turnstile'
      ? {
        provider: e.CAPTCHA_PROVIDER,
        secret: e.CAPTCHA_SECRET!,
        verifyUrl: e.CAPTCHA_VERIFY_URL ?? CAPTCHA_VERIFY_URLS[e.CAPTCHA_PROVIDER],
      }
      : null,
    webhookSecret: e.PROFILE_WEBHOOK_SECRET,
    authHookSecret: e.AUTH_HOOK_SECRET,
    healthToken: e.PROFILE_HEALTH_TOKEN,
    alertWebhookUrl: e.ALERT_WEBHOOK_URL,
    maxBodyBytes: e.MAX_BODY_BYTES,
    logLevel: e.LOG_LEVEL,
  };
}
