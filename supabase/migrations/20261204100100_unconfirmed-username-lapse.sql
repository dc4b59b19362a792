-- Username claims of unconfirmed users lapse.
--
-- Until now the profile of a signup that never confirmed held its username forever: a typo'd
-- email, an abandoned signup or a squatter kept `carol` from everyone, case-insensitively. Now a
-- username held by the profile of a user who has not confirmed (auth.users.confirmed_at is null,
-- which covers email and phone) lapses once that user is older than
-- private.settings.unconfirmed_username_ttl. The default, 24 hours, is the default lifetime of
-- Supabase's email links and OTPs (the confirmation link among them): after it, the holder can no
-- longer confirm with the link they were sent.
--
-- A lapsed claim is released only when somebody else wants the name (register_preflight,
-- public.username_available for the before-user-created hook, or a profile being created with
-- it: the trigger, ensure_user_profile) or when public.release_lapsed_usernames() sweeps: the
-- holder's username becomes null and one 'release_username' audit row says who released it.
-- Confirming later does not give the name back; the user picks it again if it is still free.
-- Anonymous users never confirm by design, so their claims do not lapse.
--
-- Supersedes private.create_profile (20261121150000_lean-signup-path.sql) and
-- public.register_preflight (20261121151000_register-preflight-counter.sql): same signatures and
-- results, each also releasing a lapsed claim of the name it meets.

-- ============================================================================
-- Tables
-- ============================================================================
alter table private.settings
  add column if not exists unconfirmed_username_ttl interval not null default interval '24 hours';
alter table private.settings drop constraint if exists settings_unconfirmed_username_ttl_check;
alter table private.settings add constraint settings_unconfirmed_username_ttl_check
  check (unconfirmed_username_ttl >= interval '0');
comment on column private.settings.unconfirmed_username_ttl is
  'How old a user who has not confirmed (auth.users.confirmed_at is null) may be before the username of their profile lapses and goes to the next user who asks for it.';

-- The audit outcome 'released' is allowed since 20261204100000_ensure-profile-caller-guard.sql.

-- ============================================================================
-- Functions
-- ============================================================================
-- The one definition of a lapsed claim and of its release. Releases the claim on p_username
-- (case-insensitive) when its holder has not confirmed and is older than the setting, writing
-- the audit row in the caller's transaction; answers whether it released. The holder's row is
-- locked first, so of two callers wanting the same lapsed name exactly one releases it, and the
-- other sees a name nobody holds any more (or the first caller's new claim).
-- p_claimed_by: the user about to take the name, null when it is not known yet (a check before
-- the signup).
create or replace function private.release_lapsed_username(
  p_username text,
  p_source text,
  p_claimed_by uuid default null
)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_holder uuid;
  v_username text;
begin
  if p_username is null then
    return false;
  end if;
  select p.user_id, p.username into v_holder, v_username
  from public.user_profiles p
  join auth.users u on u.id = p.user_id
  where lower(p.username) = lower(p_username)
    and p.user_id is distinct from p_claimed_by
    and u.confirmed_at is null
    and not u.is_anonymous
    and u.created_at < now() - coalesce((select s.unconfirmed_username_ttl from private.settings s where s.id),
                                        interval '24 hours')
  for update of p;
  if not found then
    return false;
  end if;

  update public.user_profiles p set username = null where p.user_id = v_holder;
  insert into private.audit_logs (user_id, operation, source, outcome, details)
  values (v_holder, 'release_username', p_source, 'released',
          jsonb_build_object('username', v_username, 'claimed_by', p_claimed_by));
  return true;
end;
$$;
revoke execute on function private.release_lapsed_username(text, text, uuid)
  from public, anon, authenticated, service_role;

-- As in 20261121150000_lean-signup-path.sql, but a username another profile holds is first
-- offered to private.release_lapsed_username: when that claim has lapsed, the row goes in with
-- the name. This runs only after the first insert was refused, so a signup whose username is
-- free (or who has none) pays nothing for it. p_created_via names the releasing layer in the
-- audit row, as it names the creating one in the profile (a reconcile repair says 'backfill').
create or replace function private.create_profile(
  p_user_id uuid,
  p_created_via text,
  p_email text,
  p_fields jsonb,
  out o_profile public.user_profiles,
  out o_dropped jsonb
)
language plpgsql
security invoker
set search_path = ''
as $$
begin
  o_dropped := coalesce(p_fields -> 'dropped', '{}'::jsonb);
  insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
  values (p_user_id, p_email, p_fields ->> 'full_name', p_fields ->> 'username', p_fields ->> 'avatar_url',
          p_fields -> 'metadata', p_created_via)
  on conflict do nothing
  returning * into o_profile;
  if found then
    return;
  end if;

  if not exists (select 1 from public.user_profiles p where p.user_id = p_user_id) then
    if p_fields ->> 'username' is not null then
      if private.release_lapsed_username(p_fields ->> 'username', p_created_via, p_user_id) then
        -- Refused again only if a concurrent caller took the name or made this profile first.
        insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
        values (p_user_id, p_email, p_fields ->> 'full_name', p_fields ->> 'username', p_fields ->> 'avatar_url',
                p_fields -> 'metadata', p_created_via)
        on conflict do nothing
        returning * into o_profile;
        if found then
          return;
        end if;
      end if;
      o_dropped := o_dropped || '{"username": "taken"}';
    end if;
    -- Only user_id may still conflict (a concurrent creator of this profile); a row some other
    -- unique index refuses raises 23505 here instead of passing for an existing profile.
    insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
    values (p_user_id, p_email, p_fields ->> 'full_name', null, p_fields ->> 'avatar_url',
            p_fields -> 'metadata', p_created_via)
    on conflict (user_id) do nothing
    returning * into o_profile;
    if found then
      return;
    end if;
  end if;
  o_dropped := null;
end;
$$;
revoke execute on function private.create_profile(uuid, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- The before-user-created hook's question (ensure-profile): may a new user take this username?
-- A lapsed claim on it is released on the way (audited as source 'ensure', the function the hook
-- calls), so the trigger can give the name to the signup the hook then allows.
create or replace function public.username_available(p_username text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_username is null or not private.is_valid_username(p_username) then
    raise exception 'p_username must be 3-39 letters, digits, "_", "." or "-", starting and ending with a letter, digit or "_"'
      using errcode = '22023';
  end if;
  perform private.release_lapsed_username(p_username, 'ensure');
  return not exists (select 1 from public.user_profiles p where lower(p.username) = lower(p_username));
end;
$$;
revoke execute on function public.username_available(text) from public, anon, authenticated;
grant execute on function public.username_available(text) to service_role;

-- The sweep: releases up to p_batch lapsed claims nobody has asked for, oldest holders first,
-- and answers how many it released (call again until it answers less than p_batch). Released
-- claims are audited as source 'reconcile'. Rows another transaction holds are skipped, so
-- concurrent sweeps share the work and never wait for a user editing their profile. Finding the
-- lapsed claims reads auth.users (no index on confirmed_at or created_at), so its cost grows
-- with the number of users, like the missing-profile census: schedule it every few minutes,
-- not every second. Nobody depends on it for correctness: a name somebody wants is released on
-- the spot.
create or replace function public.release_lapsed_usernames(p_batch integer default 500)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_ttl interval := coalesce((select s.unconfirmed_username_ttl from private.settings s where s.id),
                             interval '24 hours');
  v_released integer;
begin
  if p_batch is null or p_batch < 1 or p_batch > 10000 then
    raise exception 'p_batch must be between 1 and 10000' using errcode = '22023';
  end if;

  with lapsed as (
    select p.user_id, p.username
    from public.user_profiles p
    join auth.users u on u.id = p.user_id
    where p.username is not null
      and u.confirmed_at is null
      and not u.is_anonymous
      and u.created_at < now() - v_ttl
    order by u.created_at, p.user_id
    limit p_batch
    for update of p skip locked
  ),
  released as (
    update public.user_profiles p
       set username = null
      from lapsed l
     where p.user_id = l.user_id
    returning l.user_id, l.username
  )
  insert into private.audit_logs (user_id, operation, source, outcome, details)
  select r.user_id, 'release_username', 'reconcile', 'released',
         jsonb_build_object('username', r.username, 'claimed_by', null)
  from released r;
  get diagnostics v_released = row_count;
  return v_released;
end;
$$;
revoke execute on function public.release_lapsed_usernames(integer) from public, anon, authenticated;
grant execute on function public.release_lapsed_usernames(integer) to service_role;

-- register_preflight as in 20261121151000_register-preflight-counter.sql, with two changes: a
-- lapsed claim on the requested username is released before the name is looked up, so the
-- registration that asked gets it; and the attempt is counted by private.count_rate_limit_hit
-- (20261204100000), the same lane algorithm its own copy ran, now in one place. The count stays
-- the last statement, so the lane's row is held only until the commit that follows it.
-- Returns {"enabled", "allowed", "limit", "remaining", "retry_after_seconds",
--          "username_available", "email_registered", "trigger_enabled"}.
create or replace function public.register_preflight(
  p_client text,
  p_limit integer,
  p_window_seconds integer,
  p_username text default null,
  p_email text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_enabled boolean;
  v_trigger_enabled boolean;
  v_username_available boolean;
  v_email_registered boolean;
  v_hit record;
begin
  if p_client is null or char_length(p_client) not between 1 and 200 then
    raise exception 'p_client must be 1-200 characters' using errcode = '22023';
  end if;
  if p_limit is null or p_limit < 1 or p_window_seconds is null or p_window_seconds < 1 or p_window_seconds > 86400 then
    raise exception 'p_limit must be positive and p_window_seconds between 1 and 86400' using errcode = '22023';
  end if;

  select s.register_enabled, s.trigger_enabled into v_enabled, v_trigger_enabled from private.settings s where s.id;
  if not coalesce(v_enabled, true) then
    return jsonb_build_object('enabled', false, 'allowed', false, 'limit', p_limit, 'remaining', 0,
                              'retry_after_seconds', 60, 'username_available', null, 'email_registered', null,
                              'trigger_enabled', null);
  end if;
  v_trigger_enabled := coalesce(v_trigger_enabled, true) and private.profile_trigger_installed();

  if p_username is not null then
    perform private.release_lapsed_username(p_username, 'register');
  end if;
  v_username_available := case when p_username is null then null else not exists (
    select 1 from public.user_profiles p where lower(p.username) = lower(p_username)) end;
  -- Supabase Auth stores emails lower-cased: equality on lower(p_email) uses users_email_partial_key.
  v_email_registered := case when p_email is null then null else exists (
    select 1 from auth.users u where u.email = lower(p_email) and not u.is_sso_user) end;

  v_hit := private.count_rate_limit_hit('register:' || p_client, p_limit, p_window_seconds);

  return jsonb_build_object(
    'enabled', true,
    'allowed', v_hit.o_allowed,
    'limit', p_limit,
    'remaining', v_hit.o_remaining,
    'retry_after_seconds', v_hit.o_retry_after_seconds,
    'username_available', v_username_available,
    'email_registered', v_email_registered,
    'trigger_enabled', v_trigger_enabled
  );
end;
$$;
revoke execute on function public.register_preflight(text, integer, integer, text, text) from public, anon, authenticated;
grant execute on function public.register_preflight(text, integer, integer, text, text) to service_role;
