// The one retry policy: exponential backoff with full jitter, an attempt cap and an overall
// deadline, retrying only failures that can heal by themselves.

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No attempt starts after this many ms from the first, and no sleep runs past it. */
  deadlineMs: number;
}

/**
 * The sleep after the n-th failed attempt, with full jitter (AWS architecture blog):
 * uniform in [0, min(maxDelay, base * 2^(n-1))).
 */
export function backoffDelay(
  failures: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - 1));
  return Math.floor(random() * ceiling);
}

// 40001 serialization, 40P01 deadlock, 57P01 admin shutdown, 57P02 crash shutdown,
// 57P03 cannot connect now, 08xxx connection exceptions, 53xxx insufficient resources.
const TRANSIENT_SQLSTATE = /^(40001|40P01|57P0[123]|08[0-9A-Z]{3}|53[0-9A-Z]{3})$/;
// PostgREST: PGRST000-002 connection/schema cache, PGRST003 pool timeout.
const TRANSIENT_PGRST = /^PGRST00[0-3]$/;
const TRANSIENT_STATUS = new Set([408, 502, 503, 504]);
const NETWORK_CODE = /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|UND_ERR_\w+)$/;

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  status?: unknown;
  message?: unknown;
  cause?: unknown;
}

/**
 * True for network failures (including postgrest-js's status 0), gateway/availability statuses (408, 502, 503, 504),
 * supabase-js's AuthRetryableFetchError, transient SQLSTATEs and PostgREST's connection codes.
 * Never for validation (4xx), conflicts (409/23505), permissions (401/403/42501) or other 500s.
 */
export function isTransient(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 3) return false;
  const e = error as ErrorLike;
  if (e.name === 'AuthRetryableFetchError' || e.name === 'FunctionsFetchError') return true;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return true;
  if (
    typeof e.code === 'string' &&
    (TRANSIENT_SQLSTATE.test(e.code) || TRANSIENT_PGRST.test(e.code) || NETWORK_CODE.test(e.code))
  ) {
    return true;
  }
  if (typeof e.status === 'number' && TRANSIENT_STATUS.has(e.status)) return true;
  // postgrest-js answers a network failure or a timeout with status 0 and an empty code (the
  // socket error is flattened into a string): no HTTP answer at all.
  if (e.status === 0 && (e.code === undefined || e.code === '')) return true;
  // fetch() rejects with TypeError("fetch failed") and the socket error as its cause.
  if (
    e.name === 'TypeError' && typeof e.message === 'string' &&
    /fetch failed|network|connection/i.test(e.message)
  ) return true;
  return e.cause !== undefined && isTransient(e.cause, depth + 1);
}

export interface RetryHooks {
  isRetryable?: (error: unknown) => boolean;
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
  /**
   * An absolute deadline (in now()'s clock) shared by several retried calls of one request, so
   * that together they cannot outlast it; without it each call gets policy.deadlineMs of its own.
   */
  deadlineAt?: number;
}

export class RetryExhausted extends Error {
  constructor(
    readonly attempts: number,
    readonly lastError: unknown,
    readonly reason: 'attempts' | 'deadline' | 'permanent',
  ) {
    super(`gave up after ${attempts} attempt(s) (${reason})`, { cause: lastError });
    this.name = 'RetryExhausted';
  }
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs fn(attempt) until it resolves, a failure is permanent, attempts run out, or the deadline passes. */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<T> {
  const isRetryable = hooks.isRetryable ?? isTransient;
  const sleep = hooks.sleep ?? defaultSleep;
  const now = hooks.now ?? Date.now;
  const deadlineAt = hooks.deadlineAt ?? now() + policy.deadlineMs;
  for (let attempt = 1;; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!isRetryable(error)) throw new RetryExhausted(attempt, error, 'permanent');
      if (attempt >= policy.maxAttempts) throw new RetryExhausted(attempt, error, 'attempts');
      const delayMs = backoffDelay(attempt, policy, hooks.random);
      if (now() + delayMs >= deadlineAt) throw new RetryExhausted(attempt, error, 'deadline');
      hooks.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}
