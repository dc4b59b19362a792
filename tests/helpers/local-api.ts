import { afterAll, beforeAll } from 'vitest';
import { type Config, loadConfig } from '../../shared/config.ts';
import { type Stack, type StackOptions, startStack } from '../../dev/stack.ts';
import type { TestDatabase } from './database.ts';

export interface LocalApi {
  stack: Stack;
  /** Log lines the stack (and its function workers, when started) printed. */
  logs: string[];
  /** Confirmation emails the Auth stand-in "sent". */
  emails: Array<{ to: string; link: string; token: string }>;
  /** A function Config pointing at this stack, as Supabase would inject it, plus overrides. */
  config(overrides?: Record<string, string>): Config;
}

/**
 * The local API (Auth and PostgREST stand-ins, and optionally the Deno function workers) on a
 * free port in front of this test file's own database.
 */
export function useLocalApi(
  db: () => TestDatabase,
  options: Omit<StackOptions, 'databaseUrl' | 'port'> = {},
): () => LocalApi {
  let api: LocalApi | undefined;
  beforeAll(async () => {
    const logs: string[] = [];
    const emails: LocalApi['emails'] = [];
    const stack = await startStack({
      functions: false,
      bcryptCost: 4,
      ...options,
      databaseUrl: db().url,
      port: 0,
      log: (line) => logs.push(line),
      onEmail: (mail) => emails.push(mail),
    });
    api = {
      stack,
      logs,
      emails,
      config: (overrides = {}) =>
        loadConfig({
          SUPABASE_URL: stack.apiUrl,
          SUPABASE_ANON_KEY: stack.keys.anonKey,
          SUPABASE_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
          SUPABASE_SECRET_KEYS: JSON.stringify({ default: stack.keys.secretKey }),
          SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: stack.keys.publishableKey }),
          PROFILE_RETRY_BASE_DELAY_MS: '5',
          PROFILE_RETRY_MAX_DELAY_MS: '20',
          PROFILE_RETRY_DEADLINE_MS: '2000',
          LOG_LEVEL: 'silent',
          ...stack.functionSecrets,
          ...overrides,
        }),
    };
  }, 60_000);
  afterAll(async () => {
    await api?.stack.stop();
  });
  return () => {
    if (!api) throw new Error('the local API is only available inside tests and hooks');
    return api;
  };
}
