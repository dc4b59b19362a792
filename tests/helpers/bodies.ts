// The JSON bodies the functions answer, for tests that read members of an answer. A body is
// parsed, never checked: these say which members a test may read once it knows (usually from the
// status) which answer it holds; the assertions check the values.
import type { EnsureProfileAnswer, RegisterResult } from '../../shared/client.ts';
import type {
  OperationsStats,
  ReconcileBatch,
  SystemHealth,
  SystemStats,
} from '../../shared/rpc-results.ts';

export type { EnsureProfileAnswer, RegisterResult };

/** Every refusal and failure of a function (shared/http.ts errorBody); details may add members. */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    fields?: Record<string, string>;
    [detail: string]: unknown;
  };
}

/** The before-user-created hook's refusal: a 200 whose error tells Auth the status to answer. */
export interface HookRefusal {
  error: { http_code: number; message: string };
}

/**
 * An answer read before its status is known: any member of the result T or of the error body may
 * be missing, and an empty answer is null. Tests read it with `?.` and compare what they find.
 */
export type Reply<T> = (Partial<T> & Partial<ErrorBody>) | null;

/** profile-health's body for a caller without a credential. */
export type PublicHealth = Pick<SystemHealth, 'status' | 'checked_at'>;

/** profile-health's body for the health token or a service key: every check and the stats. */
export type FullHealth = SystemHealth & { stats: SystemStats };

/** profile-health's body with ?include=operations (operations is null when they were unavailable). */
export type HealthWithOperations = FullHealth & { operations: OperationsStats };

/** reconcile_profiles() when it ran (it answers ran: false only while another run holds the lock). */
export type RanBatch = Extract<ReconcileBatch, { ran: true }>;

/** PostgREST's error body; the gateway and Auth answer a code or a message too. */
export interface RestError {
  code: string;
  message: string;
  details?: string | null;
  hint?: string | null;
}
