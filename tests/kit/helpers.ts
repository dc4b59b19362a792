// Helpers for the kit's tests: a real supabase-js client against the local stack whose requests
// are counted per endpoint (so a test can say "ensure-profile was called once"), and users made
// the way an app makes them.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SupabaseClient } from '@supabase/supabase-js';
import { afterAll, beforeAll } from 'vitest';
import type { StackOptions } from '../../dev/stack.ts';
import type { Database } from '../../shared/database.types.ts';
import { appClient } from '../helpers/clients.ts';
import type { TestDatabase } from '../helpers/database.ts';
import type { LocalApi } from '../helpers/local-api.ts';

/** Where a stack answers: a LocalApi's, or one in its own process (useStackProcess). */
export interface StackAddress {
  apiUrl: string;
  anonKey: string;
}

function addressOf(api: LocalApi | StackAddress): StackAddress {
  return 'stack' in api ? { apiUrl: api.stack.apiUrl, anonKey: api.stack.keys.anonKey } : api;
}

/** The local stack over this file's database, run by tests/kit/stack-process.ts. */
export function useStackProcess(
  db: () => TestDatabase,
  options: Omit<StackOptions, 'databaseUrl' | 'port' | 'log' | 'onEmail'> = {},
): () => StackAddress {
  let address: StackAddress | undefined;
  let child: ReturnType<typeof spawn> | undefined;
  beforeAll(async () => {
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        // node:path, not URL: under happy-dom the global URL is the DOM's.
        path.join(path.dirname(fileURLToPath(import.meta.url)), 'stack-process.ts'),
        JSON.stringify({ ...options, databaseUrl: db().url }),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout! });
    address = await new Promise<StackAddress>((resolve, reject) => {
      lines.once('line', (line) => resolve(JSON.parse(line) as StackAddress));
      child!.once('exit', (code) => reject(new Error(`the stack process exited (${code})`)));
    });
  }, 60_000);
  afterAll(async () => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.stdin!.end();
    await exited;
  });
  return () => {
    if (!address) throw new Error('the stack is only available inside tests and hooks');
    return address;
  };
}

export interface CountingClient {
  supabase: SupabaseClient<Database>;
  /** Requests sent so far whose path contains `part` (e.g. '/functions/v1/ensure-profile'). */
  calls(part: string, method?: string): number;
}

/** A client as an app makes one, whose requests are counted. */
export function countingClient(
  api: LocalApi | StackAddress,
  fetchImpl: typeof fetch = fetch,
): CountingClient {
  const { apiUrl, anonKey } = addressOf(api);
  const seen: Array<{ url: string; method: string }> = [];
  const counting: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET'))
      .toUpperCase();
    seen.push({ url, method });
    return fetchImpl(input, init);
  };
  clients += 1;
  return {
    supabase: appClient(apiUrl, anonKey, {
      global: { fetch: counting },
      // A key of its own: in a DOM, supabase-js warns about clients sharing the storage key.
      auth: { storageKey: `kit-test-${clients}` },
    }),
    calls: (part, method) =>
      seen.filter((s) => s.url.includes(part) && (!method || s.method === method)).length,
  };
}

let clients = 0;
let counter = 0;
export function uniqueEmail(prefix: string): string {
  counter += 1;
  return `${prefix}.${Date.now().toString(36)}${counter}@example.com`;
}

export function newPassword(): string {
  return `pw-${crypto.randomUUID()}`;
}

export function uniqueUsername(prefix: string): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter}`;
}
