-- The repair queue: users whose profile could not be made, until something makes it.

-- ============================================================================
-- Tables
-- ============================================================================
-- Users whose profile creation failed, one row per user. Resolved rows are kept (resolution and
-- time say who fixed it) until the retention prunes them; a new failure reopens the row.
create table private.repair_queue (
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

comment on table private.repair_queue is
  'Users whose profile could not be created; the reconciler and backfill resolve them.';

create index repair_queue_open_idx on private.repair_queue (first_failed_at)
  where resolved_at is null;
create index repair_queue_due_idx on private.repair_queue (next_attempt_at)
  where resolved_at is null;
-- What the retention deletes (public.prune_audit_logs).
create index repair_queue_resolved_at_idx on private.repair_queue (resolved_at)
  where resolved_at is not null;

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

-- The last fallback of the functions: when neither ensure_user_profile nor a direct insert made
-- the profile, record the user in the repair queue so the reconciler finishes the job.
create or replace function public.enqueue_profile_repair(
  p_user_id uuid,
  p_source text,
  p_reason text,
  p_sqlstate text default null,
  p_request_id text default null,
  p_attempt integer default 1
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_user_id is null then
    raise exception 'p_user_id is required' using errcode = '22023';
  end if;
  if p_source is null or p_source not in ('register', 'ensure', 'webhook', 'backfill', 'reconcile') then
    raise exception 'p_source must be one of register, ensure, webhook, backfill, reconcile' using errcode = '22023';
  end if;
  if p_reason is null or char_length(p_reason) not between 1 and 2000 then
    raise exception 'p_reason must be 1-2000 characters' using errcode = '22023';
  end if;
  if p_sqlstate is not null and p_sqlstate !~ '^[0-9A-Z]{5}$|^PGRST[0-9]{3}$' then
    raise exception 'p_sqlstate must be a SQLSTATE or a PGRST code' using errcode = '22023';
  end if;
  if p_attempt is null or p_attempt < 1 then
    raise exception 'p_attempt must be a positive integer' using errcode = '22023';
  end if;
  if exists (select 1 from public.user_profiles p where p.user_id = p_user_id) then
    return; -- already repaired by someone else: nothing to queue
  end if;
  perform private.record_profile_failure(p_user_id, p_source, p_sqlstate, p_reason, clock_timestamp(),
                                         p_attempt, left(p_request_id, 200));
end;
$$;
revoke execute on function public.enqueue_profile_repair(uuid, text, text, text, text, integer)
  from public, anon, authenticated;
grant execute on function public.enqueue_profile_repair(uuid, text, text, text, text, integer)
  to service_role;
