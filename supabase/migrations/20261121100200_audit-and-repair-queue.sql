-- The audit trail and the repair queue.

-- ============================================================================
-- Tables
-- ============================================================================
-- One row per attempt to ensure a profile, from any layer. No foreign key to auth.users: the
-- trail outlives the user it describes.
create table if not exists private.audit_logs (
  id bigint generated always as identity constraint audit_logs_pkey primary key,
  occurred_at timestamptz not null default now(),
  user_id uuid,
  operation text not null,
  source text not null
    constraint audit_logs_source_check
      check (source in ('trigger', 'register', 'ensure', 'webhook', 'backfill', 'reconcile')),
  outcome text not null
    constraint audit_logs_outcome_check check (outcome in ('created', 'existed', 'failed', 'skipped')),
  attempt integer not null default 1 constraint audit_logs_attempt_check check (attempt >= 1),
  sqlstate text,
  message text,
  duration_ms numeric(12, 3),
  request_id text,
  details jsonb not null default '{}'::jsonb
);
alter table private.audit_logs enable row level security;
revoke all on table private.audit_logs from public, anon, authenticated, service_role;

comment on table private.audit_logs is 'One row per profile attempt (trigger, functions, backfill); kept after the user is deleted.';

-- Monitoring reads a time window: these make its cost follow the window, not the history.
create index if not exists audit_logs_occurred_at_idx on private.audit_logs (occurred_at);
create index if not exists audit_logs_failed_occurred_at_idx on private.audit_logs (occurred_at)
  where outcome = 'failed';
create index if not exists audit_logs_user_id_idx on private.audit_logs (user_id, occurred_at);

-- Users whose profile creation failed, one row per user. Resolved rows are kept (resolution and
-- time say who fixed it); a new failure reopens the row.
create table if not exists private.repair_queue (
  user_id uuid not null constraint repair_queue_pkey primary key,
  source text not null,
  reason text not null,
  sqlstate text,
  attempts integer not null default 1 constraint repair_queue_attempts_check check (attempts >= 1),
  first_failed_at timestamptz not null default now(),
  last_failed_at timestamptz not null default now(),
  next_attempt_at timestamptz not null default now(),
  resolved_at timestamptz,
  resolution text
);
alter table private.repair_queue enable row level security;
revoke all on table private.repair_queue from public, anon, authenticated, service_role;

comment on table private.repair_queue is 'Users whose profile could not be created; the reconciler and backfill resolve them.';

create index if not exists repair_queue_open_idx on private.repair_queue (first_failed_at)
  where resolved_at is null;
create index if not exists repair_queue_due_idx on private.repair_queue (next_attempt_at)
  where resolved_at is null;

-- ============================================================================
-- Functions
-- ============================================================================
-- Records one failed attempt: an audit row and an open repair-queue entry, in the caller's
-- transaction. Retries back off exponentially per entry (capped at an hour).
create or replace function private.record_profile_failure(
  p_user_id uuid,
  p_source text,
  p_sqlstate text,
  p_message text,
  p_started_at timestamptz,
  p_attempt integer default 1,
  p_request_id text default null,
  p_details jsonb default '{}'::jsonb
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.audit_logs
    (user_id, operation, source, outcome, attempt, sqlstate, message, duration_ms, request_id, details)
  values
    (p_user_id, 'ensure_profile', p_source, 'failed', p_attempt, p_sqlstate, left(p_message, 2000),
     round((extract(epoch from clock_timestamp() - p_started_at) * 1000)::numeric, 3), p_request_id,
     coalesce(p_details, '{}'::jsonb));

  insert into private.repair_queue as q (user_id, source, reason, sqlstate)
  values (p_user_id, p_source, left(p_message, 2000), p_sqlstate)
  on conflict (user_id) do update
    set attempts = case when q.resolved_at is null then q.attempts + 1 else 1 end,
        source = excluded.source,
        reason = excluded.reason,
        sqlstate = excluded.sqlstate,
        first_failed_at = case when q.resolved_at is null then q.first_failed_at else now() end,
        last_failed_at = now(),
        next_attempt_at = now() + least(interval '1 hour',
          interval '1 second' * power(2, least(case when q.resolved_at is null then q.attempts else 0 end, 12))),
        resolved_at = null,
        resolution = null;
end;
$$;
revoke execute on function private.record_profile_failure(uuid, text, text, text, timestamptz, integer, text, jsonb)
  from public, anon, authenticated, service_role;
