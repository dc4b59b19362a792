import {
  createClient,
  type SupabaseClient as SupabaseClientOf,
  type WebSocketLikeConstructor,
} from '@supabase/supabase-js';
import type { Database } from './database.types.ts';

/** A client typed by the generated Database: table columns and every RPC's arguments and result. */
export type SupabaseClient = SupabaseClientOf<Database>;

/**
 * createClient builds a Realtime client up front and throws where the runtime has no WebSocket
 * (Node 20). Nothing here opens a channel, so on such runtimes Realtime gets a transport that
 * refuses to connect; Deno and browsers keep their native WebSocket.
 */
class RealtimeUnavailable {
  constructor() {
    throw new Error(
      'Realtime is not used by the profile backend and this runtime has no WebSocket',
    );
  }
}
export const REALTIME_OPTIONS: { transport?: WebSocketLikeConstructor } =
  typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'undefined'
    ? { transport: RealtimeUnavailable as unknown as WebSocketLikeConstructor }
    : {};

/** Per-call ceiling for any request to Auth or PostgREST, so a hung dependency cannot hang us. */
const SUPABASE_CALL_TIMEOUT_MS = 5_000;

function fetchWithTimeout(fetchImpl: typeof fetch, timeoutMs: number): typeof fetch {
  return (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return fetchImpl(input, { ...init, signal });
  };
}

interface ClientOptions {
  /** The function's own request id, forwarded so the stand-ins' and Supabase's logs line up. */
  requestId?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Sent with every request of this client (e.g. Sb-Forwarded-For on a signup). */
  headers?: Record<string, string>;
}

/** A supabase-js client acting with the given key; it never stores or refreshes a session. */
export function createSupabaseClient(
  url: string,
  key: string,
  options: ClientOptions = {},
): SupabaseClient {
  return createClient<Database>(url, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: REALTIME_OPTIONS,
    global: {
      fetch: fetchWithTimeout(
        options.fetch ?? fetch,
        options.timeoutMs ?? SUPABASE_CALL_TIMEOUT_MS,
      ),
      headers: {
        'x-client-info': 'supabase-profile-guard/0.1',
        ...(options.requestId ? { 'x-request-id': options.requestId } : {}),
        ...options.headers,
      },
    },
  });
}
