// Helpers for the end-to-end suite: app clients that remember every credential they send (so the
// log check knows what must never appear), one answer shape for supabase-js invokes and raw
// requests, and a registry of the secrets a test used.
import { type FunctionInvokeOptions, FunctionsHttpError } from '@supabase/functions-js';
import type { SupabaseClient, SupabaseClientOptions } from '@supabase/supabase-js';
import { appClient } from '../helpers/clients.ts';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Everything secret the tests sent or received: none of it may show up in a log line. */
export const secrets = new Set<string>();

/** Remembers a secret (a password, a token) and hands it back, so a test reads naturally. */
export function secret<T extends string>(value: T): T {
  secrets.add(value);
  return value;
}

function remember(headers: Headers): void {
  const authorization = headers.get('authorization');
  if (authorization) {
    secrets.add(authorization);
    const token = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    if (token) secrets.add(token);
  }
  const apikey = headers.get('apikey');
  if (apikey) secrets.add(apikey);
}

/** fetch as the app's clients use it, noting every Authorization and apikey value sent. */
export const recordingFetch: typeof fetch = async (input, init) => {
  const headers = new Headers(input instanceof Request ? input.headers : undefined);
  new Headers(init?.headers).forEach((value, key) => headers.set(key, value));
  remember(headers);
  const response = await fetch(input, init);
  // Sessions (sign-in, sign-up, verify) carry tokens in their JSON: remember those too.
  if (
    response.headers.get('content-type')?.includes('application/json') &&
    /\/auth\/v1\//.test(String(input instanceof Request ? input.url : input))
  ) {
    const text = await response.clone().text();
    for (const match of text.matchAll(/"(access_token|refresh_token)"\s*:\s*"([^"]+)"/g)) {
      secrets.add(match[2]!);
    }
  }
  return response;
};

/** A supabase-js client as an app makes one, whose requests the log check knows about. */
export function app(
  apiUrl: string,
  key: string,
  options: SupabaseClientOptions<'public'> = {},
): SupabaseClient {
  return appClient(apiUrl, key, {
    ...options,
    global: { ...options.global, fetch: recordingFetch },
  });
}

export interface Answer<B = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON, the text when it is not JSON, null when there is none; typed B, what a test reads of it. */
  body: B;
}

async function bodyOf(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** supabase.functions.invoke, with the status, headers and body whether it succeeded or not. */
export async function invoke<B = unknown>(
  supabase: SupabaseClient,
  name: string,
  options: FunctionInvokeOptions = {},
): Promise<Answer<B>> {
  const { data, error, response } = await supabase.functions.invoke<B>(name, options);
  if (error && !(error instanceof FunctionsHttpError)) throw error;
  if (!response) throw new Error(`functions.invoke('${name}') returned no response`);
  if (error) {
    return {
      status: response.status,
      headers: response.headers,
      body: (await bodyOf(response)) as B,
    };
  }
  return {
    status: response.status,
    headers: response.headers,
    body: (data === '' ? null : data) as B,
  };
}

/** A raw request to a function, for what is about the wire (bad JSON, huge bodies, HEAD). */
export async function wire<B = unknown>(
  apiUrl: string,
  name: string,
  init: RequestInit & { headers?: Record<string, string> },
): Promise<Answer<B>> {
  const headers = new Headers(init.headers);
  remember(headers);
  const response = await fetch(`${apiUrl}/functions/v1/${name}`, { ...init, headers });
  return {
    status: response.status,
    headers: response.headers,
    body: (await bodyOf(response)) as B,
  };
}

let counter = 0;
/** A fresh address per call, so tests never collide on the shared database. */
export function uniqueEmail(prefix: string): string {
  counter += 1;
  return `${prefix}.${Date.now().toString(36)}${counter}@example.com`;
}

/** A fresh password per call, registered as a secret. */
export function newPassword(): string {
  return secret(`pw-${crypto.randomUUID()}`);
}
