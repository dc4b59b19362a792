// Waiting for the profile after sign-in: calls ensure-profile (which makes the profile when it
// can) with the one bounded backoff of shared/retry.ts until the answer carries a profile, so a
// 'pending' profile (the database refused it for now; the repair queue finishes it) becomes a
// profile for the app without a loop of its own.
import type { SupabaseClient } from '@supabase/supabase-js';
import { ProfileApiError, type ProfileClient } from '../client.ts';
import { retry, RetryExhausted, type RetryPolicy } from '../retry.ts';
import { notSignedIn } from './api-errors.ts';
import type { Database, Profile } from './profile-types.ts';

export interface WaitForProfileOptions {
  /** Gives up with profile_timeout after this long (default 20000). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const WAIT_FOR_PROFILE_TIMEOUT_MS = 20_000;

// Pending answers come back quickly, so the waits start short; a profile finished by the repair
// queue takes seconds to minutes, hence the cap. The attempt count is bounded by the deadline.
const WAIT_BASE_DELAY_MS = 250;
const WAIT_MAX_DELAY_MS = 3_000;

class StillPending extends Error {
  constructor() {
    super('The profile is still pending');
    this.name = 'StillPending';
  }
}

function timedOut(timeoutMs: number, cause: unknown): ProfileApiError {
  const error = new ProfileApiError(
    504,
    'profile_timeout',
    `The profile was not ready within ${timeoutMs} ms; it will be finished automatically`,
    undefined,
    undefined,
  );
  // Kept for debugging: the last pending answer or transient failure.
  Object.defineProperty(error, 'cause', { value: cause, enumerable: false });
  return error;
}

/**
 * `ensureOnce` must make one call without retries of its own: the wait is the retry, and two
 * nested backoffs would outlast timeoutMs.
 */
export async function waitForProfile(
  supabase: SupabaseClient<Database>,
  ensureOnce: ProfileClient,
  options: WaitForProfileOptions = {},
): Promise<Profile> {
  const timeoutMs = options.timeoutMs ?? WAIT_FOR_PROFILE_TIMEOUT_MS;
  const { signal } = options;
  signal?.throwIfAborted();
  const { data } = await supabase.auth.getSession();
  if (!data.session) throw notSignedIn();

  // The timer below ends the wait at timeoutMs exactly. The policy's deadline lies one delay
  // beyond it, so the backoff never gives up early (retry() stops before a sleep that would
  // cross its deadline) and still cannot run on should the timer not end it.
  const policy: RetryPolicy = {
    maxAttempts: Number.MAX_SAFE_INTEGER,
    baseDelayMs: WAIT_BASE_DELAY_MS,
    maxDelayMs: WAIT_MAX_DELAY_MS,
    deadlineMs: timeoutMs + WAIT_MAX_DELAY_MS,
  };
  // One timer bounds the whole wait, a call that hangs included; aborting it ends the sleep too.
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let last: unknown = null;
  const timer = setTimeout(() => stop.abort(timedOut(timeoutMs, last)), timeoutMs);
  const stopped = new Promise<never>((_, reject) => {
    stop.signal.addEventListener('abort', () => reject(stop.signal.reason), { once: true });
  });
  const sleep = (ms: number) =>
    Promise.race([new Promise<void>((resolve) => setTimeout(resolve, ms)), stopped]);

  const attempts = retry(
    async () => {
      const answer = await ensureOnce.ensureProfile();
      if (answer.profile) return answer.profile;
      throw new StillPending();
    },
    policy,
    {
      isRetryable: (error) =>
        error instanceof StillPending || (error instanceof ProfileApiError && error.transient),
      onRetry: ({ error }) => {
        last = error;
      },
      sleep,
    },
  ).catch((error: unknown) => {
    if (!(error instanceof RetryExhausted)) throw error;
    if (error.reason === 'permanent') throw error.lastError;
    throw timedOut(timeoutMs, error.lastError);
  });
  try {
    return await Promise.race([attempts, stopped]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    // The race is settled: a later rejection of either promise is nobody's to handle.
    attempts.catch(() => {});
    stopped.catch(() => {});
    stop.abort();
  }
}
