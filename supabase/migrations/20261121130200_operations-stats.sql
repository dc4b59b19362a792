-- What an operator's dashboard needs beyond profile_system_stats: attempts over time, the
-- alerts, the alert outbox and the reconciler's last run. Like the stats, its cost follows the
-- window (index range scans), not the history.

-- ============================================================================
-- Functions
-- ============================================================================
-- Returns {"bucket_seconds", "series": [{"at", "created", "existed", "failed", "skipped",
-- "success_rate"}], "alerts": [...], "alert_deliveries": {"pending", "undeliverable",
-- "last_error", "last_delivered_at"}, "reconciler": {"last_run_at", "last_run"}}.
-- Buckets are the smallest of 1m, 5m, 15m, 30m, 1h, 3h, 6h, 1d that gives at most 60 of them.
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
