// What each database function answers, checked when the answer arrives. The generated Database
// type says a jsonb function returns Json; these schemas say which Json, once, so a key renamed in
// SQL fails loudly at the call instead of flowing on as undefined. Objects keep keys the schema
// does not name (looseObject): an answer passed through to a caller is never trimmed.
import { z } from 'zod';
import type { Database } from './database.types.ts';
import { OperationsStatsSchema, SystemHealthSchema, SystemStatsSchema } from './health-results.ts';
import { PROFILE_CREATORS } from './profile-contract.ts';

const count = z.number().int().nonnegative();
const timestamp = z.string();

export const UserProfileSchema = z.looseObject({
  user_id: z.string(),
  email: z.string().nullable(),
  full_name: z.string().nullable(),
  username: z.string().nullable(),
  avatar_url: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  // null on an adopted table that has no such column (docs/DEPLOYMENT.md §5.1.1): the view of it
  // answers a constant, and the quickstart's updated_at is nullable.
  created_via: z.enum(PROFILE_CREATORS).nullable(),
  created_at: timestamp.nullable(),
  updated_at: timestamp.nullable(),
});

const EnsureProfileResultSchema = z.discriminatedUnion('outcome', [
  z.looseObject({ outcome: z.enum(['created', 'existed']), profile: UserProfileSchema }),
  z.looseObject({
    outcome: z.literal('failed'),
    error: z.object({ sqlstate: z.string(), message: z.string() }),
    queued: z.literal(true),
  }),
]);

const CallerVerdictSchema = z.looseObject({
  allowed: z.boolean(),
  retry_after_seconds: z.number().nullable(),
  standing: z.enum(['active', 'banned', 'deleted', 'missing']).nullable(),
  profile: UserProfileSchema.nullable(),
  /** With a profile: false when this answer is an 'existed' audit row, true when only counted. */
  repeat: z.boolean().nullable(),
});

const RegisterPreflightSchema = z.looseObject({
  enabled: z.boolean(),
  allowed: z.boolean(),
  retry_after_seconds: z.number(),
  username_available: z.boolean().nullable(),
  email_registered: z.boolean().nullable(),
});

const AuthUserByEmailSchema = z.looseObject({
  id: z.string(),
  email_confirmed_at: timestamp.nullable(),
  registration_attempt: z.string().nullable(),
}).nullable();

const IdempotencyClaimSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('claimed') }),
  z.object({ state: z.literal('replay'), status: z.number().int(), response: z.unknown() }),
  z.object({ state: z.literal('in_progress') }),
  z.object({ state: z.literal('mismatch') }),
]);

const BackfillBatchSchema = z.looseObject({
  scanned: count,
  missing: count,
  created: count,
  failed: count,
  /** Pass back as p_after for the next batch; null when the batch was empty. */
  last_user_id: z.string().nullable(),
  done: z.boolean(),
  dry_run: z.boolean(),
});

const BackfillEstimateSchema = z.looseObject({ users: count, missing: count });

const RepairCountsSchema = z.looseObject({
  /**
   * probed: waiting entries tried early, one per shared failure cause; recovered: probes that
   * succeeded; made_due: waiting entries made due because an entry with their SQLSTATE was repaired.
   */
  queue: z.object({
    due: count,
    repaired: count,
    failed: count,
    user_deleted: count,
    probed: count,
    recovered: count,
    made_due: count,
  }),
  sweep: z.object({ missing: count, created: count, failed: count }),
});

const NotRunSchema = z.looseObject({ ran: z.literal(false), reason: z.string() });

const ReconcileBatchSchema = z.discriminatedUnion('ran', [
  RepairCountsSchema.extend({
    ran: z.literal(true),
    /** Whether a batch was full: more may be due. */
    more: z.boolean(),
    /** Users still without a profile that nothing is repairing, after the batch. */
    missing_profiles: count,
    /** Open repair-queue entries after the batch (retried when due). */
    queued: count,
    duration_ms: z.number(),
  }),
  NotRunSchema,
]);

const CensusStepSchema = z.looseObject({
  ran: z.boolean(),
  scanned: count,
  found: count,
  pass_completed: z.boolean(),
});

const EmailStepSchema = z.looseObject({
  ran: z.boolean(),
  noted: count,
  scanned: count,
  fixed: count,
  pass_completed: z.boolean(),
  duration_ms: z.number(),
});

const AlertDeliverySchema = z.looseObject({
  id: z.number().int(),
  alert: z.string(),
  state: z.enum(['firing', 'resolved']),
  attempt: z.number().int(),
  /** What evaluate_alerts recorded; only the message below is posted. */
  payload: z.record(z.string(), z.unknown()),
  /** The body to post, built in SQL (private.alert_message) so pg_net and this module send the same. */
  message: z.record(z.string(), z.unknown()),
});

const AlertEvaluationSchema = z.looseObject({
  status: z.string(),
  transitions: z.array(z.looseObject({ name: z.string(), state: z.string() })),
});

type Functions = Database['public']['Functions'];
export type RpcName = keyof Functions;

// Every function the API can call has an entry, so a function added in SQL and called from
// TypeScript cannot skip this table: the ones answering jsonb that TypeScript reads get a
// schema; the others keep the generated type (`null` here means: trust Returns as generated).
export const RPC_RESULTS = {
  alert_deliveries_claim: z.array(AlertDeliverySchema),
  alert_delivery_result: null,
  backfill_missing_profiles: BackfillBatchSchema,
  enqueue_profile_repair: null,
  ensure_profile_for_caller: CallerVerdictSchema,
  ensure_user_profile: EnsureProfileResultSchema,
  evaluate_alerts: AlertEvaluationSchema,
  find_auth_user_by_email: AuthUserByEmailSchema,
  idempotency_claim: IdempotencyClaimSchema,
  idempotency_complete: null,
  idempotency_release: null,
  profile_backfill_estimate: BackfillEstimateSchema,
  profile_census_step: CensusStepSchema,
  profile_existed_repeats: null,
  profile_operations_stats: OperationsStatsSchema,
  profile_system_health: SystemHealthSchema,
  profile_system_stats: SystemStatsSchema,
  prune_audit_logs: null,
  reconcile_profiles: ReconcileBatchSchema,
  record_signup_refusal: null,
  register_preflight: RegisterPreflightSchema,
  release_lapsed_usernames: null,
  run_self_repair: null,
  self_repair_schedule: null,
  sync_profile_emails: null,
  sync_profile_emails_step: EmailStepSchema,
  username_available: null,
} as const satisfies { [F in RpcName]: z.ZodType | null };

export type RpcResult<F extends RpcName> = (typeof RPC_RESULTS)[F] extends z.ZodType<infer T> ? T
  : Functions[F]['Returns'];

export type UserProfile = z.output<typeof UserProfileSchema>;
export type CallerVerdict = RpcResult<'ensure_profile_for_caller'>;
export type Claim = RpcResult<'idempotency_claim'>;
export type BackfillBatch = RpcResult<'backfill_missing_profiles'>;
export type ReconcileBatch = RpcResult<'reconcile_profiles'>;
export type RepairCounts = z.output<typeof RepairCountsSchema>;
export type AlertDelivery = z.output<typeof AlertDeliverySchema>;
export type SystemStats = RpcResult<'profile_system_stats'>;
export type SystemHealth = RpcResult<'profile_system_health'>;
export type OperationsStats = RpcResult<'profile_operations_stats'>;
