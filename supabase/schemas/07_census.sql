-- Which auth users have no profile, counted at a cost that does not grow with the user count.
--
-- The trigger runs in Auth's own transaction, so once a new auth.users row is visible its signup
-- has committed and the trigger has done one of three things: created the profile, queued a
-- repair (it failed), or skipped (switched off in settings). Every other way to end up without a
-- profile is rare and leaves a trace or is found by a slow scan:
--   * the trigger switched off in settings: it puts the user in private.missing_profiles;
--   * a profile deleted while its user remains: a trigger on user_profiles puts the user there;
--   * users the trigger never saw (they existed before the install, were loaded with triggers
--     off, or the trigger failed and could not even record that): the install seed of
--     20261205100000_incremental-census.sql finds the first, and a batched scan of auth.users in
--     primary-key order, a slice per scheduled run, finds the others (at 10,000 users a minute it
--     covers 10 M users in about a day; `profile_census_step` walks it on demand).
-- A user is then "missing" when it is in private.missing_profiles, still exists, has no profile,
-- and no open repair-queue entry holds it (those are reported as queued, with their age). That
-- count reads only the set, so health counts it live on every call.

-- ============================================================================
-- Tables
-- ============================================================================
-- Users known to have been left without a profile. A row stays until the user has a profile or
-- is gone (pruned by the census step); whether it counts is decided when counting.
create table private.missing_profiles (
  user_id uuid not null constraint missing_profiles_pkey primary key,
  found_at timestamptz not null default now(),
  found_by text not null
    constraint missing_profiles_found_by_check
      check (found_by in ('install', 'trigger_disabled', 'profile_deleted', 'scan'))
);
alter table private.missing_profiles enable row level security;
revoke all on table private.missing_profiles from public, anon, authenticated, service_role;

comment on table private.missing_profiles is
  'Auth users found without a profile and not yet repaired; pruned by private.census_step().';

-- One row: where the safety-net scan of auth.users stands, and where the email drift step of
-- 12_email-sync.sql stands in its own walk over the profiles.
create table private.profile_census (
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
  last_step_ms numeric(12, 3),
  email_cursor uuid,
  email_pass_completed_at timestamptz
);
alter table private.profile_census enable row level security;
revoke all on table private.profile_census from public, anon, authenticated, service_role;

comment on table private.profile_census is
  'Progress of the batched safety-net scan of auth.users (scan_cursor: the last id checked in this pass).';
comment on column private.profile_census.email_cursor is
  'Last user_id the email drift step looked at in this pass; null at the start of a pass.';
comment on column private.profile_census.email_pass_completed_at is
  'When the email drift step last finished a pass over every profile.';

-- The one row. The steps insert it when it is missing; health reads it.
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

-- A profile deleted while its user remains (by hand, by an app bug) leaves that user without
-- one: remember the user. A user's own deletion cascades here after the user is gone, which the
-- lookup sees, so deleting users costs one primary-key probe per profile and records nothing.
-- On an adopted app table (14_adoption.sql) the trigger passes the key column's name; the default
-- table's passes nothing and the key is user_id.
create or replace function private.on_profile_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
begin
  if tg_nargs = 0 then
    v_user_id := old.user_id;
  else
    v_user_id := (to_jsonb(old) ->> tg_argv[0])::uuid;
  end if;
  if exists (select 1 from auth.users u where u.id = v_user_id) then
    insert into private.missing_profiles (user_id, found_by) values (v_user_id, 'profile_deleted')
    on conflict (user_id) do nothing;
  end if;
  return null;
end;
$$;
revoke execute on function private.on_profile_deleted() from public, anon, authenticated, service_role;

-- ============================================================================
-- Triggers
-- ============================================================================
create trigger user_profiles_note_deleted
  after delete on public.user_profiles
  for each row execute function private.on_profile_deleted();
