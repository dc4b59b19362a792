// What the health functions answer (profile_system_stats, profile_system_health,
// profile_operations_stats), checked when the answer arrives: the schemas RPC_RESULTS in
// rpc-results.ts holds for them, on the same terms (looseObject: keys not named here are kept).
import { z } from 'zod';

const count = z.number().int().nonnegative();
const timestamp = z.string();

/** Every outcome an audit row may carry (private.is_valid_audit_row). */
const AUDIT_OUTCOMES = [
  'created',
  'existed',
  'failed',
  'skipped',
  'released',
  'refused',
  'updated',
] as const;
// Keyed by outcome, and only outcomes: code walks these keys (Object.entries), and an outcome
// added in SQL fails the check here rather than vanishing from an answer.
const outcomeCounts = z.partialRecord(z.enum(AUDIT_OUTCOMES), count);

export const SystemStatsSchema = z.looseObject({
  window: z.looseObject({ from: timestamp, to: timestamp, seconds: z.number() }),
  attempts: z.looseObject({
    total: count,
    by_outcome: outcomeCounts,
    by_source: z.record(z.string(), outcomeCounts),
  }),
  success_rate: z.number().nullable(),
  failures_by_sqlstate: z.array(
    z.looseObject({
      sqlstate: z.string(),
      count,
      example: z.string().nullable(),
      last_at: timestamp,
    }),
  ),
  latency_ms: z.looseObject({
    p50: z.number().nullable(),
    p95: z.number().nullable(),
    p99: z.number().nullable(),
    max: z.number().nullable(),
  }),
  missing_profiles: count,
  repair_queue: z.looseObject({
    open: count,
    oldest_failed_at: timestamp.nullable(),
    oldest_age_seconds: z.number().nullable(),
    max_attempts: count,
  }),
});

const check = <T extends z.ZodRawShape>(shape: T) => z.object({ ok: z.boolean(), ...shape });

export const SystemHealthSchema = z.looseObject({
  status: z.enum(['ok', 'degraded', 'down']),
  checked_at: timestamp,
  checks: z.object({
    trigger_installed: check({ value: z.boolean() }),
    trigger_enabled: check({ value: z.boolean() }),
    /**
     * value: users certainly without a profile that nothing is repairing, counted live; queued:
     * open repair-queue entries (retried when due); last_full_scan_at: when the census's
     * safety-net scan last finished a pass over auth.users (null before the first).
     */
    missing_profiles: check({
      value: count,
      threshold: z.number(),
      queued: count,
      counted_at: timestamp,
      last_full_scan_at: timestamp.nullable(),
    }),
    success_rate: check({
      value: z.number().nullable(),
      threshold: z.number(),
      attempts: count,
      window_seconds: z.number(),
    }),
    repair_queue_age: check({ value: z.number().nullable(), threshold: z.number(), open: count }),
  }),
});

export const OperationsStatsSchema = z.looseObject({
  bucket_seconds: z.number(),
  series: z.array(z.looseObject({
    at: timestamp,
    created: count,
    existed: count,
    failed: count,
    skipped: count,
    success_rate: z.number().nullable(),
  })),
  alerts: z.array(z.looseObject({
    name: z.string(),
    firing: z.boolean(),
    since: timestamp.nullable(),
    value: z.unknown(),
    threshold: z.unknown(),
    evaluated_at: timestamp,
  })),
  alert_deliveries: z.looseObject({
    pending: count,
    undeliverable: count,
    last_error: z.string().nullable(),
    last_delivered_at: timestamp.nullable(),
  }),
  reconciler: z.looseObject({ last_run_at: timestamp, last_run: z.record(z.string(), z.unknown()) })
    .nullable(),
});
