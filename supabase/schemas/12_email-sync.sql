-- The profile's email follows its user. Supabase Auth's email-change flow sets auth.users.email
-- to the new address once it is confirmed; a trigger on that UPDATE copies the address in the
-- same transaction, and the self-repair tick fixes what the trigger could not copy and drift any
-- earlier path left, at a cost per tick that does not grow with the number of users.
-- Only email follows auth.users: full_name, username, avatar_url and metadata are taken from the
-- user's metadata once, at creation, and belong to the user afterwards.

-- ============================================================================
-- Tables
-- ============================================================================
-- Users whose profile email the trigger could not bring in line. A row is removed when the step
-- looks at it, fixed or not (a user deleted since, or already in line, needs nothing more).
-- The step's place in its walk over the profiles is private.profile_census.email_cursor.
create table private.email_drift (
  user_id uuid not null constraint email_drift_pkey primary key,
  noted_at timestamptz not null default now(),
  sqlstate text,
  message text
);
alter table private.email_drift enable row level security;
revoke all on table private.email_drift from public, anon, authenticated, service_role;

comment on table private.email_drift is
  'Users whose profile email copy failed in the trigger; the next self-repair tick fixes them.';

-- ============================================================================
-- Functions
-- ============================================================================
-- Never fails Auth's update: a failure to copy is only a warning, and it is noted in
-- private.email_drift (in a block of its own, so noting cannot fail Auth's update either) for the
-- next self-repair tick. No profile (yet) means nothing to copy; the profile made later takes
-- the email auth.users has then.
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
revoke execute on function private.on_auth_user_email_changed()
  from public, anon, authenticated, service_role;

-- The sweep by hand: profiles whose email differs from their (not soft-deleted) user's, fixed in
-- batches of at most p_batch, each fix audited ('sync_email', source 'reconcile', outcome
-- 'updated'). Rows another transaction holds are skipped for the next run. Returns how many it
-- fixed. It joins every profile to its user until it has found p_batch drifted ones, so it reads
-- everything on a project without drift: the tick runs sync_profile_emails_step instead.
create or replace function public.sync_profile_emails(p_batch integer default 500)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_fixed integer;
begin
  if p_batch is null or p_batch < 1 or p_batch > 100000 then
    raise exception 'p_batch must be between 1 and 100000' using errcode = '22023';
  end if;
  with drifted as (
    select p.user_id, u.email
    from public.user_profiles p
    join auth.users u on u.id = p.user_id
    where p.email is distinct from u.email and u.deleted_at is null
    limit p_batch
    for update of p skip locked
  ), fixed as (
    update public.user_profiles p set email = d.email
    from drifted d where p.user_id = d.user_id
    returning p.user_id
  ), audited as (
    insert into private.audit_logs (user_id, operation, source, outcome, details)
    select f.user_id, 'sync_email', 'reconcile', 'updated', '{}'::jsonb from fixed f
    returning 1
  )
  select count(*)::integer into v_fixed from audited;
  return v_fixed;
end;
$$;
revoke execute on function public.sync_profile_emails(integer) from public, anon, authenticated;
grant execute on function public.sync_profile_emails(integer) to service_role;

-- One step of the tick: the noted users, then the next slice of user_profiles in primary-key
-- order (census_scan_batch profiles, one primary-key probe of auth.users each), keeping its place
-- in private.profile_census.email_cursor and wrapping at the end. Each fix is audited
-- ('sync_email', source 'reconcile', outcome 'updated'). Soft-deleted users are left alone, as by
-- the trigger. Returns what it did; {"ran": false} when another step holds the lock.
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

-- ============================================================================
-- Triggers
-- ============================================================================
create trigger users_sync_profile_email
  after update of email on auth.users
  for each row
  -- A soft delete obfuscates the email in the same UPDATE that sets deleted_at: the profile
  -- keeps the address it had, as deleting a user always left it.
  when (old.email is distinct from new.email and new.deleted_at is null)
  execute function private.on_auth_user_email_changed();
