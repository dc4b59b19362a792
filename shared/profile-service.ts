// ensureProfile: the guarantee every function gives, in three layers.
//   1. ensure_user_profile over RPC, retried on transient failures. It reads or creates the
//      profile and records the attempt (audit row with the request id, repair queue on failure)
//      in the same call; an attempt that cannot reach the database is recorded in our log instead.
//   2. If the RPC keeps failing, a direct insert of the bare profile (ON CONFLICT DO NOTHING):
//      a missing or broken function must not cost the user their profile. Triggers on
//      user_profiles record it (created, or existed) in the same statement, with the request id
//      sent in AUDIT_REQUEST_ID_HEADER.
//   3. If that fails too, enqueue_profile_repair, so the reconciler finishes the job; and if even
//      the queue is unreachable, the backfill sweep finds the user later. The caller learns the
//      profile is pending, never that it was lost.
// register calls it right after Auth created the user, even when the trigger has made the
// profile already: the one RPC answers `existed` with the profile and leaves the request's audit
// row, one round trip like the plain read it replaces.
import type { Json } from './database.types.ts';
import type { Logger } from './logger.ts';
import type { EnsureSource, ProfileCreator, UserProfile } from './profile-contract.ts';
import { SQLSTATE } from './profile-contract.ts';
import { AppError } from './errors.ts';
import { retry, RetryExhausted, type RetryPolicy } from './retry.ts';
import { UserProfileSchema } from './rpc-results.ts';
import { RpcError, rpcErrorOf, rpcOnce, rpcResult } from './rpc.ts';
import type { SupabaseClient } from './supabase-client.ts';

interface EnsureContext {
  source: EnsureSource;
  requestId: string;
  log: Logger;
  /** Used by the direct-insert fallback, which cannot read auth.users. */
  email?: string | null;
  fullName?: string;
  username?: string;
  avatarUrl?: string;
  metadata?: { [key: string]: Json };
}

export type EnsureOutcome =
  | {
    status: 'created' | 'existed';
    profile: UserProfile;
    attempts: number;
    via: 'read' | 'rpc' | 'insert';
  }
  | { status: 'pending'; attempts: number; queued: boolean; reason: string };

/**
 * The header the direct-insert fallback sends its request id in; PostgREST exposes it to the
 * audit triggers on user_profiles as request.headers (see 20261205120000_audit-every-attempt.sql).
 */
const AUDIT_REQUEST_ID_HEADER = 'x-profile-request-id';
/**
 * The layer the fallback creates for, which an adopted table has no created_via column to carry
 * (private.on_profile_inserted_directly reads it there; docs/DEPLOYMENT.md §5.1.1).
 */
const AUDIT_CREATED_VIA_HEADER = 'x-profile-created-via';

// enqueue_profile_repair refuses a reason over 2000 characters (the queue's and the audit log's
// limit): a long error message is cut rather than costing the user the repair.
const REPAIR_REASON_MAX_LENGTH = 2000;

interface ProfileServiceDeps {
  supabase: SupabaseClient;
  retry: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  /** The request's deadline, shared with its other retried calls (see retry.ts). */
  deadlineAt?: number;
}

/** What the access log line says about an outcome. */
export function outcomeFields(outcome: EnsureOutcome): Record<string, unknown> {
  return outcome.status === 'pending'
    ? { profile_status: 'pending', attempts: outcome.attempts, queued: outcome.queued }
    : { profile_status: outcome.status, attempts: outcome.attempts, via: outcome.via };
}

export async function ensureProfile(
  deps: ProfileServiceDeps,
  userId: string,
  ctx: EnsureContext,
): Promise<EnsureOutcome> {
  const log = ctx.log.child({ user_id: userId, source: ctx.source });
  let attempts = 0;
  let lastFailure: RpcError | undefined;

  try {
    const result = await retry(
      async (attempt) => {
        attempts = attempt;
        const started = performance.now();
        const { data, error, status } = await rpcOnce(deps.supabase, 'ensure_user_profile', {
          p_user_id: userId,
          p_source: ctx.source,
          p_request_id: ctx.requestId,
          p_attempt: attempt,
          ...(ctx.fullName !== undefined ? { p_full_name: ctx.fullName } : {}),
          ...(ctx.username !== undefined ? { p_username: ctx.username } : {}),
          ...(ctx.avatarUrl !== undefined ? { p_avatar_url: ctx.avatarUrl } : {}),
          ...(ctx.metadata !== undefined ? { p_metadata: ctx.metadata } : {}),
        });
        const duration_ms = Math.round(performance.now() - started);
        if (error) {
          if (error.code === SQLSTATE.AUTH_USER_NOT_FOUND) {
            throw new AppError(404, 'user_not_found', `No auth user has id ${userId}`);
          }
          // The database did not answer, so nothing recorded this attempt: the log does.
          log.warn(
            { attempt, duration_ms, code: error.code, status, err: error.message },
            'ensure_user_profile call failed',
          );
          throw (lastFailure = rpcErrorOf('ensure_user_profile', error, status));
        }
        const answer = rpcResult('ensure_user_profile', data);
        if (answer.outcome === 'failed') {
          log.warn(
            { attempt, duration_ms, code: answer.error.sqlstate },
            'ensure_user_profile recorded a failure',
          );
          throw (lastFailure = new RpcError(
            'ensure_user_profile',
            answer.error.sqlstate,
            200,
            answer.error.message,
            true,
          ));
        }
        log.debug({ attempt, duration_ms, outcome: answer.outcome }, 'profile ensured');
        return answer;
      },
      deps.retry,
      {
        ...(deps.sleep ? { sleep: deps.sleep } : {}),
        ...(deps.deadlineAt !== undefined ? { deadlineAt: deps.deadlineAt } : {}),
      },
    );
    return { status: result.outcome, profile: result.profile, attempts, via: 'rpc' };
  } catch (error) {
    if (error instanceof AppError) throw error;
    if (error instanceof RetryExhausted && error.lastError instanceof AppError) {
      throw error.lastError;
    }
    if (!(error instanceof RetryExhausted)) throw error;
  }

  const inserted = await insertDirectly(deps.supabase, userId, ctx, log);
  if (inserted) return { ...inserted, attempts, via: 'insert' };

  // A 202 must mean the profile is not there. The failures above may hide one that exists (a
  // trigger that made it while the database was answering nothing else): look once more.
  const last = await readProfile(deps.supabase, userId, { retry: false });
  if (last.data) {
    log.info(
      { outcome: 'existed' },
      'profile found by the last read after ensure_user_profile failed',
    );
    return { status: 'existed', profile: last.data, attempts, via: 'read' };
  }

  const reason = `ensure_user_profile failed after ${attempts} attempt(s): ${
    lastFailure?.message ?? 'unknown'
  }`;
  // An RPC failure the database recorded is already queued; otherwise queue it now.
  const queued = lastFailure?.recorded === true ||
    (await enqueueRepair(deps.supabase, userId, ctx, reason, lastFailure, attempts, log));
  log.error(
    { attempts, queued, code: lastFailure?.code },
    'profile pending: the reconciler will create it',
  );
  return { status: 'pending', attempts, queued, reason };
}

/** The user's profile, null when there is none; an error when it could not be read. */
async function readProfile(supabase: SupabaseClient, userId: string, options: { retry: boolean }) {
  const { data, error } = await supabase.from('user_profiles').select().eq('user_id', userId)
    .maybeSingle().retry(options.retry);
  return { data: data ? UserProfileSchema.parse(data) : null, error };
}

const CREATED_VIA: Record<EnsureSource, ProfileCreator> = {
  register: 'register',
  ensure: 'ensure',
  webhook: 'webhook',
  backfill: 'backfill',
  reconcile: 'backfill',
};

const NOT_INSERTABLE = /^cannot insert into column "(\w+)" of view "user_profiles"$/;

/** The column an insert into an adopted table's view refused, if that was the refusal. */
function notInsertable(
  error: { code?: string; message?: string } | null,
): keyof UserProfile | null {
  if (error?.code !== '0A000') return null;
  const column = NOT_INSERTABLE.exec(error.message ?? '')?.[1];
  return column && column !== 'user_id' && column in UserProfileSchema.shape
    ? column as keyof UserProfile
    : null;
}

async function insertDirectly(
  supabase: SupabaseClient,
  userId: string,
  ctx: EnsureContext,
  log: Logger,
): Promise<{ status: 'created' | 'existed'; profile: UserProfile } | null> {
  const row: Partial<Record<keyof UserProfile, unknown>> = {
    user_id: userId,
    email: ctx.email ?? null,
    full_name: ctx.fullName ?? null,
    username: ctx.username ?? null,
    avatar_url: ctx.avatarUrl ?? null,
    metadata: ctx.metadata ?? {},
    created_via: CREATED_VIA[ctx.source],
  };
  const insertRow = () =>
    supabase
      .from('user_profiles')
      .upsert(row as never, { onConflict: 'user_id', ignoreDuplicates: true })
      .select()
      .setHeader(AUDIT_REQUEST_ID_HEADER, ctx.requestId)
      .setHeader(AUDIT_CREATED_VIA_HEADER, CREATED_VIA[ctx.source]);
  let insert = await insertRow();
  // On an adopted table (docs/DEPLOYMENT.md §5.1.1) user_profiles is a view whose columns the
  // app's table lacks are constants, which PostgreSQL will not insert into (0A000, naming the
  // column): leave each one out and insert the rest. Each round removes a key, so it ends.
  for (;;) {
    const column = notInsertable(insert.error);
    if (column === null || !(column in row)) break;
    delete row[column];
    insert = await insertRow();
  }
  if (insert.error) {
    log.warn(
      { code: insert.error.code, status: insert.status, err: insert.error.message },
      'direct profile insert failed',
    );
    return null;
  }
  const created = insert.data[0] ? UserProfileSchema.parse(insert.data[0]) : undefined;
  if (created) {
    log.warn(
      { outcome: 'created' },
      'profile created by direct insert after ensure_user_profile failed',
    );
    return { status: 'created', profile: created };
  }
  const existing = await readProfile(supabase, userId, { retry: true });
  if (existing.error || !existing.data) {
    log.warn({ code: existing.error?.code }, 'profile existed but could not be read back');
    return null;
  }
  log.info({ outcome: 'existed' }, 'profile found by the direct-insert fallback');
  return { status: 'existed', profile: existing.data };
}

async function enqueueRepair(
  supabase: SupabaseClient,
  userId: string,
  ctx: EnsureContext,
  reason: string,
  failure: RpcError | undefined,
  attempts: number,
  log: Logger,
): Promise<boolean> {
  const sqlstate = failure && /^[0-9A-Z]{5}$|^PGRST[0-9]{3}$/.test(failure.code)
    ? failure.code
    : null;
  const { error } = await rpcOnce(supabase, 'enqueue_profile_repair', {
    p_user_id: userId,
    p_source: ctx.source,
    p_reason: reason.slice(0, REPAIR_REASON_MAX_LENGTH),
    ...(sqlstate !== null ? { p_sqlstate: sqlstate } : {}),
    p_request_id: ctx.requestId,
    p_attempt: Math.max(attempts, 1),
  });
  if (error) {
    log.error(
      { code: error.code, err: error.message },
      'could not queue the profile repair; the backfill sweep will find the user',
    );
    return false;
  }
  return true;
}
