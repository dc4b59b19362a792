// The one way to call a database function over PostgREST: supabase.rpc under the shared retry
// policy, its failures turned into RpcError (PostgREST's code or the SQLSTATE, and the HTTP
// status) so that the retry classifier can tell a transient failure from a permanent one.
import { z } from 'zod';
import type { Database } from './database.types.ts';
import { AppError, serviceUnavailable } from './errors.ts';
import { retry, RetryExhausted, type RetryHooks, type RetryPolicy } from './retry.ts';
import { RPC_RESULTS, type RpcName, type RpcResult } from './rpc-results.ts';
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

// Retry-After of a database call that failed past its retries: those spent the request's
// deadline already, and a PostgreSQL restart or failover, the usual cause, takes a few seconds.
const DATABASE_RETRY_AFTER_SECONDS = 5;

/** The 503 for a database call that failed past its retries, with the last failure as its cause. */
export function databaseUnavailable(error: unknown): AppError {
  const cause = error instanceof RetryExhausted ? error.lastError : error;
  return serviceUnavailable(
    'The database is unavailable; try again shortly',
    DATABASE_RETRY_AFTER_SECONDS,
    cause,
  );
}

interface PostgrestErrorLike {
  code?: string;
  message?: string;
  details?: string;
}

export function rpcErrorOf(fn: string, error: PostgrestErrorLike, status: number): RpcError {
  const code = error.code ?? '';
  // A network failure's reason (ECONNREFUSED, a timeout…) is only in postgrest-js's details.
  const cause = status === 0
    ? /Caused by: [^:\n]*: ([^\n]+)/.exec(error.details ?? '')?.[1]
    : undefined;
  return new RpcError(
    fn,
    code,
    status,
    `${error.message ?? 'unknown error'}${cause ? ` (${cause})` : ''}`,
  );
}

type Functions = Database['public']['Functions'];
/** A function's arguments as the generated Database names them; none for a function without. */
export type RpcArgs<F extends RpcName> = [Functions[F]['Args']] extends [never]
  ? Record<string, never>
  : Functions[F]['Args'];

function parsed<S extends z.ZodType>(schema: S, fn: string, data: unknown): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  // Not transient: the SQL and this code disagree, and retrying cannot change that.
  throw new RpcError(
    fn,
    'unexpected_answer',
    200,
    `${fn} answered an unexpected shape: ${z.prettifyError(result.error)}`,
  );
}

/** The answer of `fn`, checked against its schema in RPC_RESULTS when it has one. */
export function rpcResult<F extends RpcName>(fn: F, data: Functions[F]['Returns']): RpcResult<F>;
export function rpcResult(fn: RpcName, data: unknown): unknown {
  const schema: z.ZodType | null = RPC_RESULTS[fn];
  return schema === null ? data : parsed(schema, fn, data);
}

/**
 * supabase.rpc(fn, args), retried on transient failures; the checked answer, or RetryExhausted
 * whose lastError is the last RpcError. hooks.deadlineAt shares a request's deadline with other calls.
 */
export async function callRpc<F extends RpcName>(
  supabase: SupabaseClient,
  fn: F,
  args: RpcArgs<F>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<RpcResult<F>> {
  return await retry(
    async () => {
      const { data, error, status } = await rpcOnce(supabase, fn, args);
      if (error) throw rpcErrorOf(fn, error, status);
      return rpcResult(fn, data);
    },
    policy,
    hooks,
  );
}

/** One supabase.rpc call with the generated types; no retry, no check of the answer. */
export async function rpcOnce<F extends RpcName>(
  supabase: SupabaseClient,
  fn: F,
  args: RpcArgs<F>,
) {
  // supabase-js resolves its overloads per literal name; a generic name needs its wide signature.
  const rpc: (
    fn: RpcName,
    args: object,
  ) => PromiseLike<
    { data: Functions[F]['Returns'] | null; error: PostgrestErrorLike | null; status: number }
  > = supabase.rpc.bind(supabase);
  return await rpc(fn, args);
}
