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
  it('accepts the legacy injected variables and fills every default', () => {
    expect(loadConfig({ ...BASE, SUPABASE_ANON_KEY: 'anon-jwt' })).toEqual({
      supabaseUrl: 'http://127.0.0.1:54321',
      serviceRoleKey: 'service-jwt',
      serviceRoleKeys: ['service-jwt'],
      anonKey: 'anon-jwt',
      publicKeys: ['anon-jwt'],
      retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 2000, deadlineMs: 8000 },
      register: {
        mode: 'signup',
        adminEmailConfirm: false,
        emailRedirectTo: undefined,
        rateLimit: { max: 10, windowSeconds: 60 },
        idempotencyTtlSeconds: 86400,
      },
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
    const config = loadConfig({ SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SECRET_KEYS: '{"default":"sb_secret_1"}' });
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

  it('treats empty strings as unset', () => {
    expect(loadConfig({ ...BASE, PROFILE_WEBHOOK_SECRET: '', SUPABASE_ANON_KEY: '' }).webhookSecret).toBeUndefined();
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
      loadConfig({ SUPABASE_URL: 'not a url', SUPABASE_SECRET_KEYS: secret, PROFILE_WEBHOOK_SECRET: 'tiny-secret' });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(secret);
      expect(String((error as Error).message)).not.toContain('tiny-secret');
    }
  });
});
