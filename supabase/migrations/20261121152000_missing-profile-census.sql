-- The missing-profile census: how many auth users past the grace period have no profile is an
-- anti-join of all of auth.users with all of user_profiles, O(users) (about a second per million
-- users). Health checks used to run it on every call, up to three times per privileged call, so
-- their latency grew with the user count and any caller could keep a core busy. Now the count is
-- stored with the time it was taken; health and stats read it and count again only when it is
-- older than private.settings.missing_count_max_age. The reconciler counts at the end of every
-- run, so with it scheduled every minute a health check never pays for the count.

-- ============================================================================
-- Tables
-- ============================================================================
alter table private.settings add column if not exists missing_count_max_age interval not null default interval '1 minute';
alter table private.settings drop constraint if exists settings_missing_count_max_age_check;
alter table private.settings add constraint settings_missing_count_max_age_check
  check (missing_count_max_age between interval '0' and interval '1 day');
comment on column private.settings.missing_count_max_age is 'How old the stored missing-profile count may be before a health or stats call counts again (0: count on every call).';

-- One row: the latest count. Written by whoever counted last (reconciler, health, stats).
create table if not exists private.missing_profile_census (
  id boolean primary key default true constraint missing_profile_census_single_row check (id),
  counted_at timestamptz not null,
  grace_period interval not null,
  missing bigint not null constraint missing_profile_census_missing_check check (missing >= 0),
  duration_ms numeric(12, 3) not null
);
alter table private.missing_profile_census enable row level security;
revoke all on table private.missing_profile_census from public, anon, authenticated, service_role;

comment on table private.missing_profile_census is 'The latest count of auth users past the grace period without a profile, and when it was taken.';

-- ============================================================================
-- Functions
-- ============================================================================
-- Counts now and stores the count (unless p_store is false). In a read-only transaction (a GET
-- through PostgREST, a read replica) it answers the fresh count and stores nothing.
create or replace function private.refresh_missing_profile_census(p_grace_period interval, p_store boolean default true)
returns private.missing_profile_census
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_census private.missing_profile_census;
begin
  v_census.id := true;
  v_census.counted_at := now();
  v_census.grace_period := p_grace_period;
  v_census.missing := private.missing_profile_count(p_grace_period);
  v_census.duration_ms := round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3);
  if not p_store then
    return v_census;
  end if;
  begin
    insert into private.missing_profile_census as c (id, counted_at, grace_period, missing, duration_ms)
    values (true, v_census.counted_at, v_census.grace_period, v_census.missing, v_census.duration_ms)
    on conflict (id) do update
      set counted_at = excluded.counted_at,
          grace_period = excluded.grace_period,
          missing = excluded.missing,
          duration_ms = excluded.duration_ms;
  exception when read_only_sql_transaction then
    null;
  end;
  return v_census;
end;
$$;
revoke execute on function private.refresh_missing_profile_census(interval, boolean) from public, anon, authenticated, service_role;

-- The stored count when it was taken with this grace period at most p_max_age ago; otherwise a
-- new count. One caller counts at a time: while another transaction is counting, the others
-- answer the stored count (if any) instead of queueing behind it or counting too.
create or replace function private.read_missing_profile_census(p_grace_period interval, p_max_age interval)
returns private.missing_profile_census
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_census private.missing_profile_census;
  v_usable boolean;
begin
  select * into v_census from private.missing_profile_census c where c.id;
  v_usable := found and v_census.grace_period = p_grace_period;
  if v_usable and v_census.counted_at >= now() - p_max_age then
    return v_census;
  end if;
  if pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('private.missing_profile_census')::bigint) then
    return private.refresh_missing_profile_census(p_grace_period);
  end if;
  if v_usable then
    return v_census;
  end if;
  -- No count to fall back on (first call, or the grace period changed): count without storing.
  return private.refresh_missing_profile_census(p_grace_period, false);
end;
$$;
revoke execute on function private.read_missing_profile_census(interval, interval) from public, anon, authenticated, service_role;

-- profile_system_stats and profile_system_health as in 20261121100600, reading the census
-- instead of counting on every call. Volatile because a stale census is counted again and stored.
-- Attempts in [now() - p_window, now()]: counts by outcome and source, success rate, failures by
-- SQLSTATE with an example, and latency percentiles. Reads only the window's rows through the
-- occurred_at index, so it costs the same on a 10-row and a 10-million-row audit table.
create or replace function public.profile_system_stats(p_window interval default interval '24 hours')
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_since timestamptz;
  v_settings private.settings;
  v_attempts jsonb;
  v_failures jsonb;
  v_latency jsonb;
  v_created bigint;
  v_existed bigint;
  v_failed bigint;
  v_census private.missing_profile_census;
begin
  if p_window is null or p_window <= interval '0' or p_window > interval '366 days' then
    raise exception 'p_window must be a positive interval of at most 366 days' using errcode = '22023';
  end if;
  v_since := now() - p_window;
  select * into v_settings from private.settings s where s.id;
  v_census := private.read_missing_profile_census(coalesce(v_settings.grace_period, interval '5 minutes'),
                                                  coalesce(v_settings.missing_count_max_age, interval '1 minute'));

  with w as (
    select a.source, a.outcome
    from private.audit_logs a
    where a.occurred_at >= v_since
  ),
  by_outcome as (
    select o.outcome, count(w.outcome) as n
    from unnest(array['created', 'existed', 'failed', 'skipped']) as o(outcome)
    left join w on w.outcome = o.outcome
    group by o.outcome
  ),
  by_source as (
    select w.source, jsonb_object_agg(w.outcome, w.n order by w.outcome) as outcomes
    from (select source, outcome, count(*) as n from w group by source, outcome) w
    group by w.source
  )
  select jsonb_build_object(
    'total', (select coalesce(sum(n), 0) from by_outcome),
    'by_outcome', (select jsonb_object_agg(outcome, n order by outcome) from by_outcome),
    'by_source', coalesce((select jsonb_object_agg(source, outcomes order by source) from by_source), '{}'::jsonb)
  ) into v_attempts;

  v_created := (v_attempts #>> '{by_outcome,created}')::bigint;
  v_existed := (v_attempts #>> '{by_outcome,existed}')::bigint;
  v_failed := (v_attempts #>> '{by_outcome,failed}')::bigint;

  select coalesce(jsonb_agg(jsonb_build_object(
           'sqlstate', f.sqlstate, 'count', f.n, 'example', f.example, 'last_at', f.last_at)
           order by f.n desc, f.sqlstate), '[]'::jsonb)
    into v_failures
  from (
    select coalesce(a.sqlstate, 'unknown') as sqlstate, count(*) as n,
           (array_agg(a.message order by a.occurred_at desc))[1] as example,
           max(a.occurred_at) as last_at
    from private.audit_logs a
    where a.outcome = 'failed' and a.occurred_at >= v_since
    group by coalesce(a.sqlstate, 'unknown')
    order by n desc, sqlstate
    limit 20
  ) f;

  select jsonb_build_object(
           'p50', round(percentile_cont(0.50) within group (order by a.duration_ms)::numeric, 3),
           'p95', round(percentile_cont(0.95) within group (order by a.duration_ms)::numeric, 3),
           'p99', round(percentile_cont(0.99) within group (order by a.duration_ms)::numeric, 3),
           'max', max(a.duration_ms))
    into v_latency
  from private.audit_logs a
  where a.occurred_at >= v_since and a.duration_ms is not null;

  return jsonb_build_object(
    'window', jsonb_build_object('from', v_since, 'to', now(),
                                 'seconds', round(extract(epoch from p_window)::numeric, 3)),
    'attempts', v_attempts,
    'success_rate', case when v_created + v_existed + v_failed = 0 then null
                         else round((v_created + v_existed)::numeric / (v_created + v_existed + v_failed), 4) end,
    'failures_by_sqlstate', v_failures,
    'latency_ms', v_latency,
    'missing_profiles', v_census.missing,
    'repair_queue', private.repair_queue_summary()
  );
end;
$$;
revoke execute on function public.profile_system_stats(interval) from public, anon, authenticated;
grant execute on function public.profile_system_stats(interval) to service_role;

-- The verdict uptime monitors and alerting read: {"status": "ok" | "degraded" | "down",
-- "checks": {...}}. "down" means profiles are being lost (missing profiles above the threshold,
-- or the trigger is not installed); "degraded" means a safety net is weakened (trigger switched
-- off, success rate below the threshold, repair queue older than allowed).
create or replace function public.profile_system_health()
returns jsonb
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  v_settings private.settings;
  v_installed boolean;
  v_census private.missing_profile_census;
  v_missing bigint;
  v_queue jsonb;
  v_created bigint;
  v_existed bigint;
  v_failed bigint;
  v_rate numeric;
  v_checks jsonb;
  v_status text;
begin
  select * into v_settings from private.settings s where s.id;
  if not found then
    -- Someone deleted the settings row: judge against the defaults rather than against nulls.
    -- Field by field, so a column added to settings later cannot shift these.
    v_settings.trigger_enabled := true;
    v_settings.grace_period := interval '5 minutes';
    v_settings.health_window := interval '15 minutes';
    v_settings.alert_min_success_rate := 0.99;
    v_settings.alert_max_missing_profiles := 0;
    v_settings.alert_max_queue_age := interval '15 minutes';
    v_settings.missing_count_max_age := interval '1 minute';
  end if;

  v_installed := private.profile_trigger_installed();
  v_census := private.read_missing_profile_census(v_settings.grace_period, v_settings.missing_count_max_age);
  v_missing := v_census.missing;
  v_queue := private.repair_queue_summary();

  select count(*) filter (where a.outcome = 'created'),
         count(*) filter (where a.outcome = 'existed'),
         count(*) filter (where a.outcome = 'failed')
    into v_created, v_existed, v_failed
  from private.audit_logs a
  where a.occurred_at >= now() - v_settings.health_window;
  v_rate := case when v_created + v_existed + v_failed = 0 then null
                 else round((v_created + v_existed)::numeric / (v_created + v_existed + v_failed), 4) end;

  v_checks := jsonb_build_object(
    'trigger_installed', jsonb_build_object('ok', v_installed, 'value', v_installed),
    'trigger_enabled', jsonb_build_object('ok', v_settings.trigger_enabled, 'value', v_settings.trigger_enabled),
    'missing_profiles', jsonb_build_object(
      'ok', v_missing <= v_settings.alert_max_missing_profiles,
      'value', v_missing,
      'threshold', v_settings.alert_max_missing_profiles,
      'grace_period_seconds', extract(epoch from v_settings.grace_period),
      'counted_at', v_census.counted_at),
    'success_rate', jsonb_build_object(
      'ok', v_rate is null or v_rate >= v_settings.alert_min_success_rate,
      'value', v_rate,
      'threshold', v_settings.alert_min_success_rate,
      'attempts', v_created + v_existed + v_failed,
      'window_seconds', extract(epoch from v_settings.health_window)),
    'repair_queue_age', jsonb_build_object(
      'ok', coalesce((v_queue ->> 'oldest_age_seconds')::numeric <= extract(epoch from v_settings.alert_max_queue_age), true),
      'value', v_queue -> 'oldest_age_seconds',
      'threshold', extract(epoch from v_settings.alert_max_queue_age),
      'open', v_queue -> 'open')
  );

  v_status := case
    when not v_installed or v_missing > v_settings.alert_max_missing_profiles then 'down'
    when not v_settings.trigger_enabled
      or not (v_checks #>> '{success_rate,ok}')::boolean
      or not (v_checks #>> '{repair_queue_age,ok}')::boolean then 'degraded'
    else 'ok'
  end;

  return jsonb_build_object('status', v_status, 'checked_at', now(), 'checks', v_checks);
end;
$$;
revoke execute on function public.profile_system_health() from public, anon, authenticated;
grant execute on function public.profile_system_health() to service_role;

-- reconcile_profiles as in 20261121130000, plus a census at the end of every run.
-- Returns {"ran": true, "queue": {"due", "repaired", "failed", "user_deleted"},
--          "sweep": {"missing", "created", "failed"}, "missing_profiles", "duration_ms"}
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
  v_census private.missing_profile_census;
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

  -- 3. The census health reads: what is still missing after this run. Waits for a health check
  -- that is counting right now rather than skipping, so every run leaves a fresh count.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('private.missing_profile_census')::bigint);
  v_census := private.refresh_missing_profile_census(v_grace);

  v_summary := jsonb_build_object(
    'ran', true,
    'queue', jsonb_build_object('due', v_due, 'repaired', v_repaired, 'failed', v_queue_failed, 'user_deleted', v_deleted),
    'sweep', jsonb_build_object('missing', v_missing, 'created', v_created, 'failed', v_sweep_failed),
    'missing_profiles', v_census.missing,
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
