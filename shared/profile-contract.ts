// The public SQL contract of supabase/migrations, as TypeScript: what ensure_user_profile,
// backfill_missing_profiles, profile_system_stats and profile_system_health return, and the
// validation rules the database enforces, so callers can check input before it reaches SQL.
// Runtime-neutral: no imports, runs under Deno and Node alike.

/** Layers that create profiles (user_profiles.created_via). */
export const PROFILE_CREATORS = ['trigger', 'register', 'ensure', 'webhook', 'backfill'] as const;
export type ProfileCreator = (typeof PROFILE_CREATORS)[number];

/** Sources a caller may pass to ensure_user_profile (the trigger is the database's own). */
export const ENSURE_SOURCES = ['register', 'ensure', 'webhook', 'backfill', 'reconcile'] as const;
export type EnsureSource = (typeof ENSURE_SOURCES)[number];

export type AttemptOutcome = 'created' | 'existed' | 'failed' | 'skipped';

/** SQLSTATEs the contract raises on purpose. */
export const SQLSTATE = {
  /** ensure_user_profile: the auth user does not exist. */
  AUTH_USER_NOT_FOUND: 'UP404',
  /** Any contract function: an argument is invalid; the message names it. */
  INVALID_PARAMETER: '22023',
} as const;

/** Mirrors private.is_valid_username: 3-39 of [A-Za-z0-9_.-], first and last not '.' or '-'. */
export const USERNAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{1,37}[A-Za-z0-9_]$/;
export const FULL_NAME_MAX_LENGTH = 200;
export const AVATAR_URL_MAX_LENGTH = 2048;
export const METADATA_MAX_BYTES = 16384;

export function isValidUsername(username: string): boolean {
  return USERNAME_PATTERN.test(username);
}

/** Mirrors private.is_valid_avatar_url: http(s), no whitespace, at most 2048 characters. */
export function isValidAvatarUrl(url: string): boolean {
  // PostgreSQL's char_length counts code points; String.length counts UTF-16 units.
  return [...url].length <= AVATAR_URL_MAX_LENGTH && /^https?:\/\/\S+$/.test(url);
}

export interface UserProfile {
  user_id: string;
  email: string | null;
  full_name: string | null;
  username: string | null;
  avatar_url: string | null;
  metadata: Record<string, unknown>;
  created_via: ProfileCreator;
  created_at: string;
  updated_at: string;
}

export type EnsureProfileResult =
  | { outcome: 'created' | 'existed'; profile: UserProfile }
  | { outcome: 'failed'; error: { sqlstate: string; message: string }; queued: true };

export interface BackfillBatch {
  scanned: number;
  missing: number;
  created: number;
  failed: number;
  /** Pass back as p_after for the next batch; null when the batch was empty. */
  last_user_id: string | null;
  done: boolean;
  dry_run: boolean;
}

export interface RepairQueueSummary {
  open: number;
  oldest_failed_at: string | null;
  oldest_age_seconds: number | null;
  max_attempts: number;
}

export interface SystemStats {
  window: { from: string; to: string; seconds: number };
  attempts: {
    total: number;
    by_outcome: Record<AttemptOutcome, number>;
    by_source: Record<string, Partial<Record<AttemptOutcome, number>>>;
  };
  success_rate: number | null;
  failures_by_sqlstate: Array<{ sqlstate: string; count: number; example: string | null; last_at: string }>;
  latency_ms: { p50: number | null; p95: number | null; p99: number | null; max: number | null };
  missing_profiles: number;
  repair_queue: RepairQueueSummary;
}

export type HealthStatus = 'ok' | 'degraded' | 'down';

export interface SystemHealth {
  status: HealthStatus;
  checked_at: string;
  checks: {
    trigger_installed: { ok: boolean; value: boolean };
    trigger_enabled: { ok: boolean; value: boolean };
    missing_profiles: { ok: boolean; value: number; threshold: number; grace_period_seconds: number };
    success_rate: { ok: boolean; value: number | null; threshold: number; attempts: number; window_seconds: number };
    repair_queue_age: { ok: boolean; value: number | null; threshold: number; open: number };
  };
}
