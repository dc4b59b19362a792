import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config.ts';

const BASE = { SUPABASE_URL: 'http://127.0.0.1:54321/', SUPABASE_SERVICE_ROLE_KEY: 'service-jwt' };

function problems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('refuses REGISTER_FORWARD_CLIENT_ADDRESS without a secret key or without saying who checks CAPTCHA', () => {
    expect(() => loadConfig({ ...BASE, REGISTER_FORWARD_CLIENT_ADDRESS: 'true' })).toThrow(
      'invalid configuration: REGISTER_FORWARD_CLIENT_ADDRESS: needs SUPABASE_SECRET_KEYS: Supabase Auth honours Sb-Forwarded-For only with a secret key, not the legacy service_role key; CAPTCHA_PROVIDER: required with REGISTER_FORWARD_CLIENT_ADDRESS: hcaptcha or turnstile (register checks the token), or none',
    );
    const secretKeys = JSON.stringify({ default: 'sb_secret_abc' });
    expect(() =>
      loadConfig({
        ...BASE,
        SUPABASE_SECRET_KEYS: secretKeys,
        REGISTER_FORWARD_CLIENT_ADDRESS: 'true',
        CAPTCHA_PROVIDER: 'turnstile',
      })
    ).toThrow(
      'invalid configuration: CAPTCHA_SECRET: required with CAPTCHA_PROVIDER=turnstile',
    );
    const config = loadConfig({
      ...BASE,
      SUPABASE_SECRET_KEYS: secretKeys,
      REGISTER_FORWARD_CLIENT_ADDRESS: 'true',
      CAPTCHA_PROVIDER: 'hcaptcha',
      CAPTCHA_SECRET: 'hc-secret',
      CLIENT_ADDRESS_HEADER: 'CF-Connecting-IP',
    });
    expect({
      captcha: config.captcha,
      clientAddress: config.clientAddress,
      forward: config.register.forwardClientAddress,
    }).toEqual({
      captcha: {
        provider: 'hcaptcha',
        secret: 'hc-secret',
        verifyUrl: 'https://api.hcaptcha.com/siteverify',
      },
      clientAddress: { header: 'cf-connecting-ip', hop: 1 },
      forward: true,
    });
    expect(
      loadConfig({
        ...BASE,
        SUPABASE_SECRET_KEYS: secretKeys,
        REGISTER_FORWARD_CLIENT_ADDRESS: 'true',
        CAPTCHA_PROVIDER: 'none',
      }).captcha,
    ).toBeNull();
  });

  it('accepts the legacy injected variables and fills every default', () => {
    expect(loadConfig({ ...BASE, SUPABASE_ANON_KEY: 'anon-jwt' })).toEqual({
      supabaseUrl: 'http://127.0.0.1:54321',
      serviceRoleKey: 'service-jwt',
      serviceRoleKeys: ['service-jwt'],
      anonKey: 'anon-jwt',
      publicKeys: ['anon-jwt'],
      retry: { maxAttempts: 30, baseDelayMs: 100, maxDelayMs: 2000, deadlineMs: 8000 },
      register: {
        mode: 'signup',
        adminEmailConfirm: false,
        emailRedirectTo: undefined,
        rateLimit: { max: 10, windowSeconds: 60 },
        unattributedRateLimitMax: 30,
        revealTakenEmail: false,
        forwardClientAddress: false,
        idempotencyTtlSeconds: 86400,
      },
      clientAddress: { header: 'x-forwarded-for', hop: 1 },
      captcha: null,
      ensure: { rateLimit: { max: 30, windowSeconds: 60 } },
      webhookSecret: undefined,
      authHookSecret: undefined,
      healthToken: undefined,
      alertWebhookUrl: undefined,
      maxBodyBytes: 16384,
      logLevel: 'info',
    });
  });

  it('prefers the new secret and publishable keys and still recognises the legacy service key', () => {
    const config = loadConfig({
      ...BASE,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: 'sb_secret_abc' }),
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: 'sb_publishable_xyz' }),
      SUPABASE_ANON_KEY: 'anon-jwt',
    });
    expect(config.serviceRoleKey).toBe('sb_secret_abc');
    expect(config.serviceRoleKeys).toEqual(['sb_secret_abc', 'service-jwt']);
    expect(config.anonKey).toBe('sb_publishable_xyz');
    expect(config.publicKeys).toEqual(['sb_publishable_xyz', 'anon-jwt']);
  });

  it('works with only SUPABASE_SECRET_KEYS as the service credential', () => {
    const config = loadConfig({
      SUPABASE_URL: 'https://abc.supabase.co',
      SUPABASE_SECRET_KEYS: '{"default":"sb_secret_1"}',
    });
    expect(config.serviceRoleKey).toBe('sb_secret_1');
  });

  it('parses our own settings from strings', () => {
    const config = loadConfig({
      ...BASE,
      REGISTER_MODE: 'admin',
      REGISTER_ADMIN_EMAIL_CONFIRM: 'true',
      PROFILE_RETRY_MAX_ATTEMPTS: '6',
      REGISTER_RATE_LIMIT_MAX: '3',
      PROFILE_WEBHOOK_SECRET: 'a-long-enough-shared-secret',
      AUTH_HOOK_SECRET: 'v1,whsec_dGVzdC1zZWNyZXQ=',
      PROFILE_HEALTH_TOKEN: 'health-token-0123456789',
      LOG_LEVEL: 'debug',
    });
    expect(config.register.mode).toBe('admin');
    expect(config.register.adminEmailConfirm).toBe(true);
    expect(config.retry.maxAttempts).toBe(6);
    expect(config.register.rateLimit.max).toBe(3);
    expect(config.authHookSecret).toBe('v1,whsec_dGVzdC1zZWNyZXQ=');
  });

  it("reads ensure-profile's per-user limit and refuses one out of range", () => {
    const config = loadConfig({
      ...BASE,
      ENSURE_RATE_LIMIT_MAX: '5',
      ENSURE_RATE_LIMIT_WINDOW_SECONDS: '3600',
    });
    expect(config.ensure).toEqual({ rateLimit: { max: 5, windowSeconds: 3600 } });
    expect(
      problems({ ...BASE, ENSURE_RATE_LIMIT_MAX: '0', ENSURE_RATE_LIMIT_WINDOW_SECONDS: '86401' }),
    ).toEqual([
      'ENSURE_RATE_LIMIT_MAX: Too small: expected number to be >=1',
      'ENSURE_RATE_LIMIT_WINDOW_SECONDS: Too big: expected number to be <=86400',
    ]);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ ...BASE, PROFILE_WEBHOOK_SECRET: '', SUPABASE_ANON_KEY: '' }).webhookSecret)
      .toBeUndefined();
  });

  it('names every missing or malformed variable in one start-up error', () => {
    expect(problems({})).toEqual([
      'SUPABASE_URL: Invalid input: expected string, received undefined',
    ]);
    expect(problems({ SUPABASE_URL: 'http://x' })).toEqual([
      'SUPABASE_SERVICE_ROLE_KEY: required (or SUPABASE_SECRET_KEYS): the functions act with the service role',
    ]);
    expect(
      problems({
        ...BASE,
        SUPABASE_URL: 'ftp://nope',
        SUPABASE_SECRET_KEYS: '{"other":"x"}',
        PROFILE_RETRY_MAX_ATTEMPTS: '0',
        REGISTER_MODE: 'magic',
        REGISTER_ADMIN_EMAIL_CONFIRM: 'yes',
        PROFILE_WEBHOOK_SECRET: 'short',
        AUTH_HOOK_SECRET: 'whsec_missing_version',
      }),
    ).toEqual([
      'SUPABASE_URL: Invalid URL',
      'SUPABASE_SECRET_KEYS: must be a JSON object with a "default" key',
      'PROFILE_RETRY_MAX_ATTEMPTS: Too small: expected number to be >=1',
      'REGISTER_MODE: Invalid option: expected one of "signup"|"admin"',
      'REGISTER_ADMIN_EMAIL_CONFIRM: Invalid option: expected one of "0"|"1"|"true"|"false"',
      'PROFILE_WEBHOOK_SECRET: must be at least 16 characters',
      'AUTH_HOOK_SECRET: must look like v1,whsec_<base64>',
    ]);
  });

  it('never puts a secret value into the error message', () => {
    const secret = 'sb_secret_do_not_print_me';
    try {
      loadConfig({
        SUPABASE_URL: 'not a url',
        SUPABASE_SECRET_KEYS: secret,
        PROFILE_WEBHOOK_SECRET: 'tiny-secret',
      });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(secret);
      expect(String((error as Error).message)).not.toContain('tiny-secret');
    }
  });
});
