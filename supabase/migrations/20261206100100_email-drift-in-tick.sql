-- The reconciler finds and repairs email drift by itself, at a cost per tick that does not grow
-- with the number of users.
--
-- Before: public.sync_profile_emails() joined every profile to its user until it had found
-- p_batch drifted ones, so a run over a project without drift read all of user_profiles and
-- auth.users (about 1 s at 1 M users): too much for every tick, so it was a separate job to
-- schedule by hand. Now:
--   * a copy the email trigger could not make is noted in private.email_drift, in the handler
--     that keeps Auth's update from failing, and the next tick fixes it;
--   * public.sync_profile_emails_step() fixes the noted users, then walks the next slice of
--     user_profiles in primary-key order (census_scan_batch profiles, one primary-key probe of
--     auth.users each), keeping its place in private.profile_census.email_cursor and wrapping
--     at the end, so drift any earlier path left (a change before 20261204130000, a copy made
--     while the trigger was dropped) is found within one pass;
--   * public.run_self_repair() runs one step per tick.
-- public.sync_profile_emails() stays for a one-off sweep by hand.

-- ============================================================================
-- Tables
-- ============================================================================
-- Users whose profile email the trigger could not bring in line. A row is removed when the step
-- looks at it, fixed or not (a user deleted since, or already in line, needs nothing more).
create table if not exists private.email_drift (
  user_id uuid not null constraint email_drift_pkey primary key,
  noted_at timestamptz not null default now(),
  sqlstate text,
  message text
);
alter table private.email_drift enable row level security;
revoke all on table private.email_drift from public, anon, authenticated, service_role;

comment on table private.email_drift is 'Users whose profile email copy failed in the trigger; the next self-repair tick fixes them.';

alter table private.profile_census add column if not exists email_cursor uuid;
alter table private.profile_census add column if not exists email_pass_completed_at timestamptz;

comment on column private.profile_census.email_cursor is
  'Last user_id the email drift step looked at in this pass; null at the start of a pass.';
comment on column private.profile_census.email_pass_completed_at is
  'When the email drift step last finished a pass over every profile.';

-- ============================================================================
-- Functions
-- ============================================================================
-- Replaces the body of 20261204130000_profile-follows-email.sql. Changed: a failed copy is noted
-- in private.email_drift (in a block of its own, so noting cannot fail Auth's update either).
create or replace function private.on_auth_user_email_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_sqlstate text;
  v_message text;
begin
  begin
    update public.user_profiles p set email = new.email
    where p.user_id = new.id and p.email is distinct from new.email;
    if found then
      insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, details)
      values (new.id, 'sync_email', 'trigger', 'updated',
              round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3),
              '{}'::jsonb);
    end if;
  exception when others then
    get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
    begin
      insert into private.email_drift as d (user_id, sqlstate, message)
      values (new.id, v_sqlstate, left(v_message, 2000))
      on conflict (user_id) do update set noted_at = now(), sqlstate = excluded.sqlstate, message = excluded.message;
    exception when others then
      null;
    end;
    raise warning 'profile email of auth user % was not updated: % (SQLSTATE %); the next self-repair tick repairs it',
      new.id, v_message, v_sqlstate;
  end;
  return null;
end;
$$;
revoke execute on function private.on_auth_user_email_changed() from public, anon, authenticated, service_role;

-- One step: the noted users, then the next slice. Each fix is audited ('sync_email', source
-- 'reconcile', outcome 'updated'). Soft-deleted users are left alone, as by the trigger. Returns
-- what it did; {"ran": false} when another step holds the lock.
create or replace function public.sync_profile_emails_step(p_batch integer default null, p_restart boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_batch integer;
  v_cursor uuid;
  v_noted bigint;
  v_noted_fixed bigint;
  v_scanned bigint;
  v_last uuid;
  v_fixed bigint;
  v_completed boolean;
begin
  if p_batch is not null and (p_batch < 1 or p_batch > 1000000) then
    raise exception 'p_batch must be between 1 and 1000000' using errcode = '22023';
  end if;
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.sync_profile_emails_step')::bigint) then
    return '{"ran": false, "reason": "another email sync step is running"}'::jsonb;
  end if;
  v_batch := coalesce(p_batch, (select s.census_scan_batch from private.settings s where s.id), 10000);
  insert into private.profile_census (id) values (true) on conflict (id) do nothing;
  select case when coalesce(p_restart, false) then null else c.email_cursor end into v_cursor
  from private.profile_census c where c.id for update;

  with noted as (
    delete from private.email_drift d
    where d.user_id in (select n.user_id from private.email_drift n order by n.noted_at limit v_batch)
    returning d.user_id
  ), fixed as (
    update public.user_profiles p set email = u.email
    from noted n join auth.users u on u.id = n.user_id
    where p.user_id = n.user_id and p.email is distinct from u.email and u.deleted_at is null
    returning p.user_id
  ), audited as (
    insert into private.audit_logs (user_id, operation, source, outcome, details)
    select f.user_id, 'sync_email', 'reconcile', 'updated', '{"found_by": "trigger_failure"}'::jsonb from fixed f
    returning 1
  )
  select (select count(*) from noted), (select count(*) from audited) into v_noted, v_noted_fixed;

  with slice as (
    select p.user_id, p.email
    from public.user_profiles p
    where v_cursor is null or p.user_id > v_cursor
    order by p.user_id
    limit v_batch
  ), drifted as (
    select s.user_id, u.email
    from slice s join auth.users u on u.id = s.user_id
    where s.email is distinct from u.email and u.deleted_at is null
  ), fixed as (
    update public.user_profiles p set email = d.email
    from drifted d
    where p.user_id = d.user_id and p.email is distinct from d.email
    returning p.user_id
  ), audited as (
    insert into private.audit_logs (user_id, operation, source, outcome, details)
    select f.user_id, 'sync_email', 'reconcile', 'updated', '{"found_by": "scan"}'::jsonb from fixed f
    returning 1
  )
  select (select count(*) from slice), (select s.user_id from slice s order by s.user_id desc limit 1),
         (select count(*) from audited)
    into v_scanned, v_last, v_fixed;

  v_completed := v_scanned < v_batch;
  update private.profile_census c
     set email_cursor = case when v_completed then null else v_last end,
         email_pass_completed_at = case when v_completed then now() else c.email_pass_completed_at end
   where c.id;

  return jsonb_build_object('ran', true, 'noted', v_noted, 'scanned', v_scanned,
                            'fixed', v_noted_fixed + v_fixed, 'pass_completed', v_completed,
                            'duration_ms', round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3));
end;
$$;
revoke execute on function public.sync_profile_emails_step(integer, boolean) from public, anon, authenticated;
grant execute on function public.sync_profile_emails_step(integer, boolean) to service_role;

-- Replaces the body of 20261205100100_scheduled-self-repair.sql. Changed: one email drift step
-- per tick, after the repairs, reported as 'emails'.
create or replace function public.run_self_repair()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_budget interval;
  v_batch jsonb;
  v_batches integer := 0;
  v_census jsonb;
  v_queue jsonb := '{"due": 0, "repaired": 0, "failed": 0, "user_deleted": 0, "probed": 0, "recovered": 0, "made_due": 0}'::jsonb;
  v_sweep jsonb := '{"missing": 0, "created": 0, "failed": 0}'::jsonb;
  v_emails jsonb;
  v_alerts jsonb;
  v_key text;
begin
  v_budget := least(interval '30 seconds',
                    coalesce((select s.self_repair_period from private.settings s where s.id), interval '1 minute') / 2);
  loop
    v_batch := public.reconcile_profiles(500, v_batches = 0);
    exit when not (v_batch ->> 'ran')::boolean;
    v_batches := v_batches + 1;
    v_census := coalesce(v_census, v_batch -> 'census');
    foreach v_key in array array['due', 'repaired', 'failed', 'user_deleted', 'probed', 'recovered', 'made_due'] loop
      v_queue := jsonb_set(v_queue, array[v_key], to_jsonb((v_queue ->> v_key)::integer + (v_batch #>> array['queue', v_key])::integer));
    end loop;
    foreach v_key in array array['missing', 'created', 'failed'] loop
      v_sweep := jsonb_set(v_sweep, array[v_key], to_jsonb((v_sweep ->> v_key)::integer + (v_batch #>> array['sweep', v_key])::integer));
    end loop;
    exit when not (v_batch ->> 'more')::boolean or clock_timestamp() - v_started_at > v_budget;
  end loop;

  v_emails := public.sync_profile_emails_step();
  v_alerts := public.evaluate_alerts();

  return jsonb_build_object(
    'reconcile', case when v_batches = 0 then v_batch
                      else jsonb_build_object('ran', true, 'batches', v_batches, 'census', v_census,
                                              'queue', v_queue, 'sweep', v_sweep,
                                              'missing_profiles', v_batch -> 'missing_profiles',
                                              'queued', v_batch -> 'queued', 'more', v_batch -> 'more') end,
    'emails', v_emails,
    'alerts', jsonb_build_object('status', v_alerts -> 'status', 'transitions', v_alerts -> 'transitions'),
    'delivery', private.deliver_alerts_with_pg_net(),
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3)
  );
end;
$$;
