-- Detection without a grace period, and a census whose cost does not grow with the user count.
--
-- Before: a user counted as missing only once older than the settings' grace_period (5
-- minutes), and the count was an anti-join of all of auth.users against the profiles (about a
-- second per million users), taken at most once a minute. Neither is needed. The trigger runs in
-- Auth's own transaction, so once a new auth.users row is visible its signup has committed and
-- the trigger has done one of three things: created the profile, queued a repair (it failed), or
-- skipped (switched off in settings). Every other way to end up without a profile is rare and
-- leaves a trace or is found by a slow scan:
--   * the trigger switched off in settings: it now also puts the user in private.missing_profiles;
--   * a profile deleted while its user remains: a trigger on user_profiles puts the user there;
--   * users that were never seen by the trigger (they existed before this migration, were loaded
--     with triggers off, or the trigger failed and could not even record that): the install seed
--     below finds the first, and a batched scan of auth.users in primary-key order, a slice per
--     scheduled run, finds the others (at 10,000 users a minute it covers 10 M users in about a
--     day; `profile_census_step` walks it on demand).
-- A user is then "missing" when it is in private.missing_profiles, still exists, has no profile,
-- and no open repair-queue entry holds it (those are reported as queued, with their age). That
-- count reads only the set, so health counts it live on every call: no stored census, no max age.

-- ============================================================================
-- Settings
-- ============================================================================
-- Neither setting is read any more. The columns stay, because the earlier migrations that
-- comment on them must still apply again after a rollback (ROLLBACK.md §4).
comment on column private.settings.grace_period is 'Not read since 20261205100000_incremental-census.sql: a missing profile counts as soon as its signup commits.';
comment on column private.settings.missing_count_max_age is 'Not read since 20261205100000_incremental-census.sql: health counts missing profiles live.';
alter table private.settings add column if not exists census_scan_batch integer not null default 10000;
alter table private.settings drop constraint if exists settings_census_scan_batch_check;
alter table private.settings add constraint settings_census_scan_batch_check
  check (census_scan_batch between 100 and 1000000);
comment on column private.settings.census_scan_batch is 'How many auth users each census step re-checks in the safety-net scan (primary-key order, wrapping around).';

-- ============================================================================
-- Tables
-- ============================================================================
drop function if exists private.read_missing_profile_census(interval, interval);
drop function if exists private.refresh_missing_profile_census(interval, boolean);
drop function if exists private.missing_profile_count(interval);
drop table if exists private.missing_profile_census;

-- Users known to have been left without a profile. A row stays until the user has a profile or
-- is gone (pruned by the census step); whether it counts is decided when counting.
create table if not exists private.missing_profiles (
  user_id uuid not null constraint missing_profiles_pkey primary key,
  found_at timestamptz not null default now(),
  found_by text not null
    constraint missing_profiles_found_by_check
      check (found_by in ('install', 'trigger_disabled', 'profile_deleted', 'scan'))
);
alter table private.missing_profiles enable row level security;
revoke all on table private.missing_profiles from public, anon, authenticated, service_role;
comment on table private.missing_profiles is 'Auth users found without a profile and not yet repaired; pruned by private.census_step().';

-- One row: where the safety-net scan of auth.users stands.
create table if not exists private.profile_census (
  id boolean not null default true constraint profile_census_pkey primary key
    constraint profile_census_single_row check (id),
  scan_cursor uuid,
  pass_started_at timestamptz,
  pass_scanned bigint not null default 0,
  pass_found bigint not null default 0,
  last_pass_completed_at timestamptz,
  last_pass_scanned bigint,
  last_pass_found bigint,
  last_step_at timestamptz,
  last_step_ms numeric(12, 3)
);
alter table private.profile_census enable row level security;
revoke all on table private.profile_census from public, anon, authenticated, service_role;
comment on table private.profile_census is 'Progress of the batched safety-net scan of auth.users (scan_cursor: the last id checked in this pass).';
insert into private.profile_census (id) values (true) on conflict (id) do nothing;

-- ============================================================================
-- Functions
-- ============================================================================
-- Users certainly without a profile that nothing is repairing: members of the set that still
-- exist, have no profile and no open repair-queue entry. Three primary-key probes per member.
create or replace function private.count_missing_profiles()
returns bigint
language sql
stable
security definer
set search_path = ''
as $$
  select count(*)
  from private.missing_profiles m
  where not exists (select 1 from public.user_profiles p where p.user_id = m.user_id)
    and not exists (select 1 from private.repair_queue q where q.user_id = m.user_id and q.resolved_at is null)
    and exists (select 1 from auth.users u where u.id = m.user_id)
$$;
revoke execute on function private.count_missing_profiles() from public, anon, authenticated, service_role;

-- One census step: drops the set's members that have a profile or are gone, then checks the
-- next p_batch auth users (primary-key order) and adds those without a profile and without an
-- open repair-queue entry. At the end of auth.users the pass is recorded and the next one starts
-- from the beginning; p_restart starts a new pass now (the reconcile CLI's --full-scan). One step
-- at a time; a concurrent caller gets {"ran": false}.
create or replace function public.profile_census_step(p_batch integer default null, p_restart boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_batch integer;
  v_census private.profile_census;
  v_pruned bigint;
  v_scanned bigint;
  v_found bigint;
  v_last uuid;
  v_completed boolean;
  v_ms numeric;
begin
  if p_batch is not null and (p_batch < 1 or p_batch > 1000000) then
    raise exception 'p_batch must be between 1 and 1000000' using errcode = '22023';
  end if;
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.profile_census_step')::bigint) then
    return '{"ran": false, "reason": "another census step is running"}'::jsonb;
  end if;
  v_batch := coalesce(p_batch, (select s.census_scan_batch from private.settings s where s.id), 10000);
  select * into v_census from private.profile_census c where c.id for update;
  if not found then
    insert into private.profile_census (id) values (true) returning * into v_census;
  end if;
  if coalesce(p_restart, false) then
    update private.profile_census c set scan_cursor = null, pass_started_at = null, pass_scanned = 0, pass_found = 0
    where c.id returning * into v_census;
  end if;

  delete from private.missing_profiles m
  where exists (select 1 from public.user_profiles p where p.user_id = m.user_id)
     or not exists (select 1 from auth.users u where u.id = m.user_id);
  get diagnostics v_pruned = row_count;

  with slice as (
    select u.id
    from auth.users u
    where v_census.scan_cursor is null or u.id > v_census.scan_cursor
    order by u.id
    limit v_batch
  ),
  added as (
    insert into private.missing_profiles (user_id, found_by)
    select s.id, 'scan'
    from slice s
    where not exists (select 1 from public.user_profiles p where p.user_id = s.id)
      and not exists (select 1 from private.repair_queue q where q.user_id = s.id and q.resolved_at is null)
    on conflict (user_id) do nothing
    returning 1
  )
  select (select count(*) from slice), (select max(slice.id::text)::uuid from slice), (select count(*) from added)
    into v_scanned, v_last, v_found;

  v_completed := v_scanned < v_batch;
  v_ms := round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3);
  update private.profile_census c
     set scan_cursor = case when v_completed then null else v_last end,
         pass_started_at = case when v_completed then null else coalesce(c.pass_started_at, now()) end,
         pass_scanned = case when v_completed then 0 else c.pass_scanned + v_scanned end,
         pass_found = case when v_completed then 0 else c.pass_found + v_found end,
         last_pass_completed_at = case when v_completed then now() else c.last_pass_completed_at end,
         last_pass_scanned = case when v_completed then c.pass_scanned + v_scanned else c.last_pass_scanned end,
         last_pass_found = case when v_completed then c.pass_found + v_found else c.last_pass_found end,
         last_step_at = now(),
         last_step_ms = v_ms
   where c.id;

  return jsonb_build_object('ran', true, 'pruned', v_pruned, 'scanned', v_scanned, 'found', v_found,
                            'pass_completed', v_completed, 'duration_ms', v_ms);
end;
$$;
revoke execute on function public.profile_census_step(integer, boolean) from public, anon, authenticated;
grant execute on function public.profile_census_step(integer, boolean) to service_role;

-- public.profile_backfill_estimate as in 20261121130000_reconcile-profiles.sql, with the
-- anti-join inline (the function it called is gone): the backfill's progress bar needs every
-- user without a profile, and a backfill reads all of auth.users anyway.
create or replace function public.profile_backfill_estimate()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'users', (select count(*) from auth.users),
    'missing', (select count(*) from auth.users u
                where not exists (select 1 from public.user_profiles p where p.user_id = u.id))
  )
$$;
revoke execute on function public.profile_backfill_estimate() from public, anon, authenticated;
grant execute on function public.profile_backfill_estimate() to service_role;

-- What health and stats report about missing profiles.
create or replace function private.missing_profiles_summary()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'missing', private.count_missing_profiles(),
    'counted_at', now(),
    'scan', (select jsonb_build_object(
               'last_pass_completed_at', c.last_pass_completed_at,
               'last_pass_scanned', c.last_pass_scanned,
               'last_pass_found', c.last_pass_found,
               'pass_scanned', c.pass_scanned,
               'last_step_at', c.last_step_at)
             from private.profile_census c where c.id)
  )
$$;
revoke execute on function private.missing_profiles_summary() from public, anon, authenticated, service_role;

-- A profile deleted while its user remains (by hand, by an app bug) leaves that user without
-- one: remember the user. A user's own deletion cascades here after the user is gone, which the
-- lookup sees, so deleting users costs one primary-key probe per profile and records nothing.
create or replace function private.on_profile_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from auth.users u where u.id = old.user_id) then
    insert into private.missing_profiles (user_id, found_by) values (old.user_id, 'profile_deleted')
    on conflict (user_id) do nothing;
  end if;
  return null;
end;
$$;
revoke execute on function private.on_profile_deleted() from public, anon, authenticated, service_role;

drop trigger if exists user_profiles_note_deleted on public.user_profiles;
create trigger user_profiles_note_deleted
  after delete on public.user_profiles
  for each row execute function private.on_profile_deleted();

-- private.on_auth_user_created as in 20261121150000_lean-signup-path.sql; only the switched-off
-- branch changed: besides its `skipped` audit row it puts the user in private.missing_profiles,
-- so health counts it at once and the reconciler's next run creates the profile (register,
-- ensure-profile or the Auth Hook usually do so first).
create or replace function private.on_auth_user_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_fields jsonb;
  v_dropped jsonb;
  v_sqlstate text;
  v_message text;
begin
  begin
    v_fields := private.profile_fields(new.raw_user_meta_data);
    insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
    select new.id, new.email, v_fields ->> 'full_name', v_fields ->> 'username', v_fields ->> 'avatar_url',
           v_fields -> 'metadata', 'trigger'
    where coalesce((select s.trigger_enabled from private.settings s where s.id), true)
    on conflict do nothing;
    if found then
      insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, details)
      values (new.id, 'ensure_profile', 'trigger', 'created',
              round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3),
              case when v_fields -> 'dropped' = '{}'::jsonb then '{}'::jsonb
                   else jsonb_build_object('dropped', v_fields -> 'dropped') end);
    elsif coalesce((select s.trigger_enabled from private.settings s where s.id), true) then
      -- A unique index refused the row: the username is taken, or the profile exists.
      v_dropped := (private.create_profile(new.id, 'trigger', new.email, v_fields)).o_dropped;
      perform private.record_profile_success(new.id, 'trigger',
                                             case when v_dropped is null then 'existed' else 'created' end,
                                             v_started_at, v_dropped);
    else
      insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, details)
      values (new.id, 'ensure_profile', 'trigger', 'skipped',
              round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3),
              '{"reason": "trigger_disabled"}');
      insert into private.missing_profiles (user_id, found_by) values (new.id, 'trigger_disabled')
      on conflict (user_id) do nothing;
    end if;
  exception when others then
    get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
    begin
      perform private.record_profile_failure(new.id, 'trigger', v_sqlstate, v_message, v_started_at);
    exception when others then
      raise warning 'profile trigger could not record its failure for auth user %: % (SQLSTATE %)',
        new.id, sqlerrm, sqlstate;
    end;
  end;
  return null;
end;
$$;
revoke execute on function private.on_auth_user_created() from public, anon, authenticated, service_role;

-- public.profile_system_stats as in 20261121152000_missing-profile-census.sql; missing_profiles
-- is now the live count (no grace period, no stored census).
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

-- public.profile_system_health as in 20261121152000_missing-profile-census.sql; the
-- missing_profiles check is the live count, with the queued users and the scan's progress
-- beside it ("down" only for users nothing is repairing; the queue has its own age check).
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

-- public.reconcile_profiles as in 20261121152000_missing-profile-census.sql, with these changes:
-- the sweep repairs the members of private.missing_profiles instead of anti-joining a window of
-- auth.users (so no p_sweep_window, and no grace period); a census step runs first (p_scan)
-- so the sweep sees what it found; the result says whether a full batch was left (`more`: call
-- again to repair everything due) and what is still without a profile: `missing_profiles`
-- (nothing is repairing them) and `queued` (open repair-queue entries, retried when due); and a
-- probe: entries back off exponentially (up to an hour), so once the cause of a failure is gone
-- (a constraint fixed, a lock released) its entries would wait out their backoff. Each run tries
-- one waiting entry early for each SQLSTATE that several entries share, and when that succeeds
-- makes the others due at once, so an outage is repaired on the next run after it ends, at the
-- cost of one extra attempt per shared failure cause per run (a user failing alone keeps its
-- backoff). A due entry repaired in the batch is the same evidence: the waiting entries that
-- failed with its SQLSTATE are made due too, and `more` says to call again for them.
drop function if exists public.reconcile_profiles(integer, interval);
create or replace function public.reconcile_profiles(
  p_batch_size integer default 500,
  p_scan boolean default true
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
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
  v_census jsonb;
  v_probe record;
  v_probed integer := 0;
  v_recovered integer := 0;
  v_healed text[] := '{}';
  v_pulled integer := 0;
  v_summary jsonb;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 10000 then
    raise exception 'p_batch_size must be between 1 and 10000' using errcode = '22023';
  end if;
  if p_scan is null then
    raise exception 'p_scan must be true or false' using errcode = '22023';
  end if;
  -- Transaction-scoped: released at commit or rollback, even if the caller dies.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.reconcile_profiles')::bigint) then
    return '{"ran": false, "reason": "another reconcile is running"}'::jsonb;
  end if;

  if p_scan then
    v_census := public.profile_census_step();
  end if;

  -- 0. The probe: per shared failure cause (at most five), the waiting entry due soonest.
  for v_probe in
    select w.user_id, w.attempts, w.sqlstate
    from (
      select q.user_id, q.attempts, q.sqlstate,
             row_number() over (partition by q.sqlstate order by q.next_attempt_at, q.user_id) as n,
             count(*) over (partition by q.sqlstate) as waiting
      from private.repair_queue q
      where q.resolved_at is null and q.next_attempt_at > now()
    ) w
    where w.n = 1 and w.waiting >= 2
    order by w.waiting desc
    limit 5
  loop
    continue when not exists (select 1 from auth.users u where u.id = v_probe.user_id);
    v_probed := v_probed + 1;
    v_row_started_at := clock_timestamp();
    begin
      perform private.ensure_profile(v_probe.user_id, 'reconcile', null, v_probe.attempts + 1);
      v_repaired := v_repaired + 1;
      update private.repair_queue q set next_attempt_at = now()
      where q.resolved_at is null and q.next_attempt_at > now() and q.sqlstate is not distinct from v_probe.sqlstate;
      v_recovered := v_recovered + 1;
    exception when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(v_probe.user_id, 'reconcile', v_sqlstate, v_message,
                                             v_row_started_at, v_probe.attempts + 1);
      v_queue_failed := v_queue_failed + 1;
    end;
  end loop;

  -- 1. The repair queue: entries whose backoff has passed, oldest due first.
  for v_entry in
    select q.user_id, q.attempts, q.sqlstate
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
      if v_entry.sqlstate is not null and not v_entry.sqlstate = any(v_healed) then
        v_healed := v_healed || v_entry.sqlstate;
      end if;
    exception when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(v_entry.user_id, 'reconcile', v_sqlstate, v_message,
                                             v_row_started_at, v_entry.attempts + 1);
      v_queue_failed := v_queue_failed + 1;
    end;
  end loop;

  if cardinality(v_healed) > 0 then
    update private.repair_queue q set next_attempt_at = now()
    where q.resolved_at is null and q.next_attempt_at > now() and q.sqlstate = any(v_healed);
    get diagnostics v_pulled = row_count;
  end if;

  -- 2. The sweep: users known to be without a profile that no open queue entry holds (those wait
  -- for their backoff above). A failure here opens a queue entry, which then holds the user.
  for v_user_id in
    select m.user_id
    from private.missing_profiles m
    where not exists (select 1 from public.user_profiles p where p.user_id = m.user_id)
      and not exists (select 1 from private.repair_queue q where q.user_id = m.user_id and q.resolved_at is null)
      and exists (select 1 from auth.users u where u.id = m.user_id)
    order by m.found_at, m.user_id
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
    'census', v_census,
    'queue', jsonb_build_object('due', v_due, 'repaired', v_repaired, 'failed', v_queue_failed, 'user_deleted', v_deleted,
                                'probed', v_probed, 'recovered', v_recovered, 'made_due', v_pulled),
    'sweep', jsonb_build_object('missing', v_missing, 'created', v_created, 'failed', v_sweep_failed),
    'more', v_due = p_batch_size or v_missing = p_batch_size or v_pulled > 0,
    'missing_profiles', private.count_missing_profiles(),
    'queued', (private.repair_queue_summary() ->> 'open')::bigint,
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3)
  );
  insert into private.reconcile_runs (started_at, summary) values (v_started_at, v_summary);
  delete from private.reconcile_runs r
  where r.ctid in (select o.ctid from private.reconcile_runs o where o.started_at < now() - interval '30 days' limit 100);
  return v_summary;
end;
$$;
revoke execute on function public.reconcile_profiles(integer, boolean) from public, anon, authenticated;
grant execute on function public.reconcile_profiles(integer, boolean) to service_role;

-- ============================================================================
-- Data
-- ============================================================================
-- The install seed: the users this database already has without a profile (a project that had
-- users before this system, or signups while it was switched off). One full anti-join, here only.
insert into private.missing_profiles (user_id, found_by)
select u.id, 'install'
from auth.users u
where not exists (select 1 from public.user_profiles p where p.user_id = u.id)
  and not exists (select 1 from private.repair_queue q where q.user_id = u.id and q.resolved_at is null)
on conflict (user_id) do nothing;
