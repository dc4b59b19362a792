// A typed client for frontends (and servers) over supabase.functions.invoke: register() and
// ensureProfile() with typed results, one typed error, and safe retries. A registration keeps
// one Idempotency-Key across its retries, so a retry after a lost answer returns the first
// answer instead of a 409 or a second user.
// The Functions errors come through supabase-js, which re-exports them: an app (and the
// supabase-profile-guard package) then needs supabase-js alone, and instanceof sees the very
// classes the app's own supabase-js throws.
import {
  FunctionsFetchError,
  FunctionsHttpError,
  FunctionsRelayError,
  type SupabaseClient,
} from '@supabase/supabase-js';
import type { Database } from './database.types.ts';
import { retry, RetryExhausted, type RetryPolicy } from './retry.ts';

/** A profile row as the API answers it (the generated type, so the client needs no zod). */
type UserProfile = Database['public']['Tables']['user_profiles']['Row'];

export interface RegisterInput {
  email: string;
  password: string;
  full_name?: string;
  username?: string;
  avatar_url?: string;
  metadata?: Record<string, unknown>;
  captcha_token?: string;
}

/**
 * 'awaiting_confirmation': email confirmation is on; the answer shows no profile (a registered
 * address gets the same answer), and the profile is there once the user confirms and signs in.
 */
export type ProfileStatus = 'created' | 'existed' | 'pending' | 'awaiting_confirmation';

export interface RegisterResult {
  user: { id: string; email: string };
  /** Null while the profile is pending or the email awaits confirmation; the backend finishes it without the app's help. */
  profile: UserProfile | null;
  profile_status: ProfileStatus;
  email_confirmation_required: boolean;
  /** With a pending profile: `repair_queued` or `reconciler_sweep`, how it will be finished. */
  completion?: 'repair_queued' | 'reconciler_sweep';
  /** True when the server replayed the answer to an earlier try of the same registration. */
  replayed: boolean;
}

export interface EnsureProfileAnswer {
  user_id: string;
  profile: UserProfile | null;
  profile_status: ProfileStatus;
}

/** Every failure the client reports: the function's error body, or a network failure (status 0). */
export class ProfileApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> | undefined,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
    this.name = 'ProfileApiError';
  }

  /**
   * Worth trying again soon with the same input (network, 502/503/504, a key in use). Not
   * registration_disabled: its 503 is an operator's switch (private.settings.register_enabled),
   * which no retry within seconds will flip, and the app should say so or take its legacy path.
   */
  get transient(): boolean {
    if (this.code === 'registration_disabled') return false;
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504 ||
      this.code === 'idempotency_in_progress';
  }
}

export const CLIENT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 4000,
  deadlineMs: 20_000,
};

async function toApiError(error: unknown): Promise<ProfileApiError> {
  if (error instanceof FunctionsHttpError) {
    const response = error.context as Response;
    const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
    let body: { error?: { code?: string; message?: string; fields?: Record<string, string> } } = {};
    try {
      body = (await response.json()) as typeof body;
    } catch {
      // Not our JSON (a gateway page): keep the status.
    }
    return new ProfileApiError(
      response.status,
      body.error?.code ?? `http_${response.status}`,
      body.error?.message ?? `The function answered ${response.status}`,
      body.error?.fields,
      Number.isFinite(retryAfter) ? retryAfter : undefined,
    );
  }
  if (error instanceof FunctionsFetchError || error instanceof FunctionsRelayError) {
    return new ProfileApiError(
      0,
      'network_error',
      'The function could not be reached',
      undefined,
      undefined,
    );
  }
  return new ProfileApiError(
    0,
    'network_error',
    error instanceof Error ? error.message : 'Unknown failure',
    undefined,
    undefined,
  );
}

export interface ProfileClientOptions {
  retry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
}

export interface ProfileClient {
  register(input: RegisterInput, options?: { idempotencyKey?: string }): Promise<RegisterResult>;
  /** Ensures the signed-in user's own profile (uses the client's session). */
  ensureProfile(): Promise<EnsureProfileAnswer>;
}

export function createProfileClient(
  supabase: SupabaseClient,
  options: ProfileClientOptions = {},
): ProfileClient {
  const policy = options.retry ?? CLIENT_RETRY;

  async function call<T>(
    name: string,
    body: unknown,
    headers: Record<string, string>,
  ): Promise<{ data: T; replayed: boolean }> {
    try {
      return await retry(
        async () => {
          const { data, error, response } = await supabase.functions.invoke<T>(name, {
            method: 'POST',
            body: body as Record<string, unknown>,
            headers,
          });
          if (error) throw await toApiError(error);
          return {
            data: data as T,
            replayed: response?.headers.get('idempotency-replayed') === 'true',
          };
        },
        policy,
        {
          isRetryable: (e) => e instanceof ProfileApiError && e.transient,
          ...(options.sleep ? { sleep: options.sleep } : {}),
        },
      );
    } catch (error) {
      throw error instanceof RetryExhausted ? error.lastError : error;
    }
  }

  return {
    async register(input, callOptions = {}) {
      const key = callOptions.idempotencyKey ?? crypto.randomUUID();
      const { data, replayed } = await call<Omit<RegisterResult, 'replayed'>>('register', input, {
        'Idempotency-Key': key,
      });
      return { ...data, replayed };
    },
    async ensureProfile() {
      return (await call<EnsureProfileAnswer>('ensure-profile', {}, {})).data;
    },
  };
}
