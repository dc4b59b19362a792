// The one way to call a database function over PostgREST: supabase.rpc under the shared retry
// policy, its failures turned into RpcError (PostgREST's code or the SQLSTATE, and the HTTP
// status) so that the retry classifier can tell a transient failure from a permanent one.
import { retry, type RetryHooks, type RetryPolicy } from './retry.ts';
import type { SupabaseClient } from './supabase-client.ts';

export class RpcError extends Error {
  constructor(
    readonly fn: string,
    readonly code: string,
    readonly status: number,
    message: string,
    /** The database recorded this failure itself (audit row and repair queue). */
    readonly recorded = false,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

interface PostgrestErrorLike {
  code?: string;
  message?: string;
  details?: string;
}

export function rpcErrorOf(fn: string, error: PostgrestErrorLike, status: number): RpcError {
  const code = error.code ?? '';
  // A network failure's reason (ECONNREFUSED, a timeout…) is only in postgrest-js's details.
  const cause = status === 0 ? /Caused by: [^:\n]*: ([^\n]+)/.exec(error.details ?? '')?.[1] : undefined;
  return new RpcError(fn, code, status, `${error.message ?? 'unknown error'}${cause ? ` (${cause})` : ''}`);
}

/**
 * supabase.rpc(fn, args), retried on transient failures; the data, or RetryExhausted whose
 * lastError is the last RpcError. hooks.deadlineAt shares a request's deadline with other calls.
 */
export async function callRpc<T>(
  supabase: SupabaseClient,
  fn: string,
  args: Record<string, unknown>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  return await retry(async () => {
    const { data, error, status } = await supabase.rpc(fn, args);
    if (error) throw rpcErrorOf(fn, error, status);
    return data as T;
  }, policy, hooks);
}
