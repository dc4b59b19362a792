-- Monitoring: statistics over a time window and a health verdict against the settings, at a cost
-- that follows the window (index range scans), never the size of the audit history.

-- ============================================================================
-- Functions
-- ============================================================================
-- Open repair-queue entries: how many, and the oldest (read from a partial index).
create or replace function private.repair_queue_summary()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'open', count(*),
    'oldest_failed_at', min(q.first_failed_at),
    'oldest_age_seconds', round(extract(epoch from now() - min(q.first_failed_at))::numeric, 3),
    'max_attempts', coalesce(max(q.attempts), 0)
  )
  from private.repair_queue q
  where q.resolved_at is null
$$;
revoke execute on function private.repair_queue_summary() from public, anon, authenticated, service_role;

-- Whether the auth.users trigger is installed and enabled at the database level (tgenabled 'D'
-- means someone ran ALTER TABLE ... DISABLE TRIGGER).
create or replace function private.profile_trigger_installed()
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from pg_catalog.pg_trigger t
    where t.tgrelid = 'auth.users'::regclass
      and t.tgname = 'users_ensure_profile'
      and t.tgenabled <> 'D'
  )
$$;
revoke execute on function private.profile_trigger_installed() from public, anon, authenticated, service_role;

-- Attempts in [now() - p_window, now()]: counts by outcome and source, success rate, failures by
-- SQLSTATE with an example, and latency percentiles, plus the live count of missing profiles and
-- the repair queue. Reads only the window's rows through the occurred_at index, so it costs the
-- same on a 10-row and a 10-million-row audit table.
create or replace function public.profile_system_stats(p_window interval default interval '24 hours')
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_since timestamptz;
  v_attempts jsonb;
  v_failures jsonb;
  v_latency jsonb;
  v_created bigint;
  v_existed bigint;
  v_failed bigint;
begin
  if p_window is null or p_window <= interval '0' or p_window > interval '366 days' then
    raise exception 'p_window must be a positive interval of at most 366 days' using errcode = '22023';
  end if;
  v_since := now() - p_window;

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
    'missing_profiles', private.count_missing_profiles(),
    'repair_queue', private.repair_queue_summary()
  );
end;
$$;
revoke execute on function public.profile_system_stats(interval) from public, anon, authenticated;
grant execute on function public.profile_system_stats(interval) to service_role;

-- The verdict uptime monitors and alerting read: {"status": "ok" | "degraded" | "down",
-- "checks": {...}}. "down" means profiles are being lost (users without a profile that nothing
-- is repairing above the threshold, or the trigger is not installed); "degraded" means a safety
-- net is weakened (trigger switched off, success rate below the threshold, repair queue older
-- than allowed). The missing_profiles check carries the queued users and the scan's progress.
create or replace function public.profile_system_health()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_settings private.settings;
  v_installed boolean;
  v_missing jsonb;
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
    v_settings.health_window := interval '15 minutes';
    v_settings.alert_min_success_rate := 0.99;
    v_settings.alert_max_missing_profiles := 0;
    v_settings.alert_max_queue_age := interval '15 minutes';
  end if;

  v_installed := private.profile_trigger_installed();
  v_missing := private.missing_profiles_summary();
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
      'ok', (v_missing ->> 'missing')::bigint <= v_settings.alert_max_missing_profiles,
      'value', (v_missing ->> 'missing')::bigint,
      'threshold', v_settings.alert_max_missing_profiles,
      'queued', (v_queue ->> 'open')::bigint,
      'counted_at', v_missing -> 'counted_at',
      'last_full_scan_at', v_missing #> '{scan,last_pass_completed_at}'),
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
    when not v_installed or (v_missing ->> 'missing')::bigint > v_settings.alert_max_missing_profiles then 'down'
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

-- What an operator's dashboard needs beyond profile_system_stats: attempts over time, the
-- alerts, the alert outbox and the reconciler's last run. Returns {"bucket_seconds", "series":
-- [{"at", "created", "existed", "failed", "skipped", "success_rate"}], "alerts": [...],
-- "alert_deliveries": {"pending", "undeliverable", "last_error", "last_delivered_at"},
-- "reconciler": {"last_run_at", "last_run"}}. Buckets are the smallest of 1m, 5m, 15m, 30m, 1h,
-- 3h, 6h, 1d that gives at most 60 of them.
create or replace function public.profile_operations_stats(p_window interval default interval '24 hours')
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_since timestamptz;
  v_bucket interval;
  v_series jsonb;
begin
  if p_window is null or p_window <= interval '0' or p_window > interval '366 days' then
    raise exception 'p_window must be a positive interval of at most 366 days' using errcode = '22023';
  end if;
  select b into v_bucket
  from unnest(array[interval '1 minute', interval '5 minutes', interval '15 minutes', interval '30 minutes',
                    interval '1 hour', interval '3 hours', interval '6 hours', interval '1 day']) b
  where extract(epoch from p_window) / extract(epoch from b) <= 60
  order by b
  limit 1;
  v_bucket := coalesce(v_bucket, interval '7 days');
  v_since := pg_catalog.date_bin(v_bucket, now() - p_window, timestamptz '2000-01-01');

  select coalesce(jsonb_agg(jsonb_build_object(
           'at', s.at, 'created', s.created, 'existed', s.existed, 'failed', s.failed, 'skipped', s.skipped,
           'success_rate', case when s.created + s.existed + s.failed = 0 then null
                                else round((s.created + s.existed)::numeric / (s.created + s.existed + s.failed), 4) end)
           order by s.at), '[]'::jsonb)
    into v_series
  from (
    select pg_catalog.date_bin(v_bucket, a.occurred_at, timestamptz '2000-01-01') as at,
           count(*) filter (where a.outcome = 'created') as created,
           count(*) filter (where a.outcome = 'existed') as existed,
           count(*) filter (where a.outcome = 'failed') as failed,
           count(*) filter (where a.outcome = 'skipped') as skipped
    from private.audit_logs a
    where a.occurred_at >= v_since
    group by 1
  ) s;

  return jsonb_build_object(
    'bucket_seconds', extract(epoch from v_bucket)::integer,
    'series', v_series,
    'alerts', (select coalesce(jsonb_agg(jsonb_build_object('name', a.name, 'firing', a.firing, 'since', a.since,
                                                            'value', a.value, 'threshold', a.threshold,
                                                            'evaluated_at', a.evaluated_at) order by a.name), '[]'::jsonb)
               from private.alert_state a),
    'alert_deliveries', (
      select jsonb_build_object(
        'pending', count(*) filter (where d.delivered_at is null and d.attempts < private.alert_max_attempts()),
        'undeliverable', count(*) filter (where d.delivered_at is null and d.attempts >= private.alert_max_attempts()),
        'last_error', (select e.last_error from private.alert_deliveries e
                       where e.delivered_at is null and e.last_error is not null order by e.id desc limit 1),
        'last_delivered_at', max(d.delivered_at))
      from private.alert_deliveries d),
    'reconciler', (
      select jsonb_build_object('last_run_at', r.started_at, 'last_run', r.summary)
      from private.reconcile_runs r order by r.started_at desc limit 1)
  );
end;
$$;
revoke execute on function public.profile_operations_stats(interval) from public, anon, authenticated;
grant execute on function public.profile_operations_stats(interval) to service_role;

-- The counted repeats, beside profile_system_stats (which counts audit rows only):
-- {"window": {"from", "to", "seconds"}, "existed_repeats", "by_source"}. Counted by hour, so a
-- window includes the whole of every hour it overlaps. Reads only those hours through the
-- hour_start index.
create or replace function public.profile_existed_repeats(p_window interval default interval '24 hours')
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_since timestamptz;
  v_total bigint;
  v_by_source jsonb;
begin
  if p_window is null or p_window <= interval '0' or p_window > interval '366 days' then
    raise exception 'p_window must be a positive interval of at most 366 days' using errcode = '22023';
  end if;
  v_since := now() - p_window;
  select coalesce(sum(s.n), 0), coalesce(jsonb_object_agg(s.source, s.n order by s.source), '{}'::jsonb)
    into v_total, v_by_source
  from (select r.source, sum(r.repeats)::bigint as n
        from private.existed_repeats r
        where r.hour_start > v_since - interval '1 hour' and r.repeats > 0
        group by r.source) s;
  return jsonb_build_object(
    'window', jsonb_build_object('from', v_since, 'to', now(), 'seconds', round(extract(epoch from p_window)::numeric, 3)),
    'existed_repeats', v_total,
    'by_source', v_by_source
  );
end;
$$;
revoke execute on function public.profile_existed_repeats(interval) from public, anon, authenticated;
grant execute on function public.profile_existed_repeats(interval) to service_role;
