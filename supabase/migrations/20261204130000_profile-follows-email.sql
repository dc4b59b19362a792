-- The profile's email follows its user. Supabase Auth's email-change flow sets auth.users.email
-- to the new address once it is confirmed; until now the profile kept the address it was made
-- with. A trigger on that UPDATE copies the address in the same transaction, and a sweep repairs
-- drift any earlier path left (a change before this migration, or one whose copy failed).
-- Only email follows auth.users: full_name, username, avatar_url and metadata are taken from the
-- user's metadata once, at creation, and belong to the user afterwards.

-- ============================================================================
-- Tables
-- ============================================================================
-- 'updated': the profile's email was brought in line with auth.users. Not counted by the success
-- rate, which judges attempts to ensure a profile. NOT VALID, as in 20261204100000: the list
-- only grows, and validating would scan the audit table under a lock signups wait for.
alter table private.audit_logs drop constraint if exists audit_logs_outcome_check;
alter table private.audit_logs add constraint audit_logs_outcome_check
  check (outcome in ('created', 'existed', 'failed', 'skipped', 'released', 'refused', 'updated')) not valid;

-- ============================================================================
-- Functions
-- ============================================================================
-- Never fails Auth's update: a failure to copy is only a warning, and the drift it leaves is
-- what public.sync_profile_emails() repairs. No profile (yet) means nothing to copy; the profile
-- made later takes the email auth.users has then.
create or replace function private.on_auth_user_email_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
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
    raise warning 'profile email of auth user % was not updated: % (SQLSTATE %); the sync sweep repairs it',
      new.id, sqlerrm, sqlstate;
  end;
  return null;
end;
$$;
revoke execute on function private.on_auth_user_email_changed() from public, anon, authenticated, service_role;

drop trigger if exists users_sync_profile_email on auth.users;
create trigger users_sync_profile_email
  after update of email on auth.users
  for each row
  -- A soft delete obfuscates the email in the same UPDATE that sets deleted_at: the profile
  -- keeps the address it had, as deleting a user always left it.
  when (old.email is distinct from new.email and new.deleted_at is null)
  execute function private.on_auth_user_email_changed();

-- The sweep: profiles whose email differs from their (not soft-deleted) user's, fixed in batches of at most
-- p_batch, each fix audited ('sync_email', source 'reconcile', outcome 'updated'). Rows another
-- transaction holds are skipped for the next run. Returns how many it fixed.
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
