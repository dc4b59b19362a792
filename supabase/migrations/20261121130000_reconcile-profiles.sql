-- The reconciler: repair without a human. One call processes the due entries of the repair
-- queue (each with its own backoff), then sweeps recently created users for missing profiles.
-- Safe to schedule every minute (pg_cron) and to run concurrently: one call at a time wins.

-- ============================================================================
-- Tables
-- ============================================================================
-- One row per reconcile run, so operators and the dashboard can see when it last ran and what
-- it did. Kept small: the reconciler deletes runs older than 30 days.
create table if not exists private.reconcile_runs (
  id bigint generated always as identity constraint reconcile_runs_pkey primary key,
  started_at timestamptz not null,
  finished_at timestamptz not null default clock_timestamp(),
  summary jsonb not null
);
alter table private.reconcile_runs enable row level security;
revoke all on table private.reconcile_runs from public, anon, authenticated, service_role;
create index if not exists reconcile_runs_started_at_idx on private.reconcile_runs (started_at);

comment on table private.reconcile_runs is 'What each reconcile_profiles() run did.';

-- ============================================================================
-- Functions
-- ============================================================================
-- Returns {"ran": true, "queue": {"due", "repaired", "failed", "user_deleted"},
--          "sweep": {"missing", "created", "failed"}, "duration_ms"}
-- or {"ran": false, "reason": "another reconcile is running"}.
-- Each user is repaired in its own subtransaction through the same core as every layer, so a
-- user that still fails is recorded (audit + queue, with its next attempt pushed back) and the
-- run goes on.
create or replace function public.reconcile_profiles(
  p_batch_size integer default 200,
  p_sweep_window interval default interval '1 day'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_grace interval;
  v_entry record;
  v_user_id uuid;
  v_row_started_at timestamptz;
  v_sqlstate text;
  v_message text;
  v_due integer := 0;
  v_repaired integer := 0;
  v_queue_failed integer := 0;
  v_deleted integer := 0;
  v_missing integer := 0;
  v_created integer := 0;
  v_sweep_failed integer := 0;
  v_summary jsonb;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 10000 then
    raise exception 'p_batch_size must be between 1 and 10000' using errcode = '22023';
  end if;
  if p_sweep_window is null or p_sweep_window < interval '0' or p_sweep_window > interval '366 days' then
    raise exception 'p_sweep_window must be between 0 and 366 days' using errcode = '22023';
  end if;
  -- Transaction-scoped: released at commit or rollback, even if the caller dies.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.reconcile_profiles')::bigint) then
    return '{"ran": false, "reason": "another reconcile is running"}'::jsonb;
  end if;
  v_grace := coalesce((select s.grace_period from private.settings s where s.id), interval '5 minutes');

  -- 1. The repair queue: entries whose backoff has passed, oldest due first.
  for v_entry in
    select q.user_id, q.attempts
    from private.repair_queue q
    where q.resolved_at is null and q.next_attempt_at <= now()
    order by q.next_attempt_at
    limit p_batch_size
  loop
    v_due := v_due + 1;
    if not exists (select 1 from auth.users u where u.id = v_entry.user_id) then
      update private.repair_queue q set resolved_at = now(), resolution = 'user_deleted'
      where q.user_id = v_entry.user_id;
      v_deleted := v_deleted + 1;
      continue;
    end if;
    v_row_started_at := clock_timestamp();
    begin
      perform private.ensure_profile(v_entry.user_id, 'reconcile', null, v_entry.attempts + 1);
      v_repaired := v_repaired + 1;
    exception when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(v_entry.user_id, 'reconcile', v_sqlstate, v_message,
                                             v_row_started_at, v_entry.attempts + 1);
      v_queue_failed := v_queue_failed + 1;
    end;
  end loop;

  -- 2. The sweep: users created within the window, past the grace period, with no profile and
  -- no open queue entry (those wait for their backoff above).
  for v_user_id in
    select u.id
    from auth.users u
    where u.created_at >= now() - p_sweep_window
      and u.created_at < now() - v_grace
      and not exists (select 1 from public.user_profiles p where p.user_id = u.id)
      and not exists (select 1 from private.repair_queue q where q.user_id = u.id and q.resolved_at is null)
    order by u.created_at
    limit p_batch_size
  loop
    v_missing := v_missing + 1;
    v_row_started_at := clock_timestamp();
    begin
      perform private.ensure_profile(v_user_id, 'reconcile');
      v_created := v_created + 1;
    exception when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(v_user_id, 'reconcile', v_sqlstate, v_message, v_row_started_at);
      v_sweep_failed := v_sweep_failed + 1;
    end;
  end loop;

  v_summary := jsonb_build_object(
    'ran', true,
    'queue', jsonb_build_object('due', v_due, 'repaired', v_repaired, 'failed', v_queue_failed, 'user_deleted', v_deleted),
    'sweep', jsonb_build_object('missing', v_missing, 'created', v_created, 'failed', v_sweep_failed),
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3)
  );
  insert into private.reconcile_runs (started_at, summary) values (v_started_at, v_summary);
  delete from private.reconcile_runs r
  where r.ctid in (select o.ctid from private.reconcile_runs o where o.started_at < now() - interval '30 days' limit 100);
  return v_summary;
end;
$$;
revoke execute on function public.reconcile_profiles(integer, interval) from public, anon, authenticated;
grant execute on function public.reconcile_profiles(integer, interval) to service_role;

-- How much work a backfill faces, for progress bars: auth users and how many lack a profile.
-- Costs a count over auth.users (not the audit history); meant for the start of a run.
create or replace function public.profile_backfill_estimate()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'users', (select count(*) from auth.users),
    'missing', private.missing_profile_count(interval '0')
  )
$$;
revoke execute on function public.profile_backfill_estimate() from public, anon, authenticated;
grant execute on function public.profile_backfill_estimate() to service_role;
