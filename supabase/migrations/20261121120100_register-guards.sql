-- Guards in front of the register function: a runtime switch and a per-client rate limit.
-- Admin user creation bypasses Supabase Auth's own signup rate limits, so register needs one.

-- ============================================================================
-- Tables
-- ============================================================================
alter table private.settings add column if not exists register_enabled boolean not null default true;
comment on column private.settings.register_enabled is 'When false the register function answers 503 registration_disabled; existing users are unaffected.';

-- Fixed-window counters, one row per (bucket, window). Old windows are deleted as calls pass.
create table if not exists private.rate_limits (
  bucket text not null,
  window_start timestamptz not null,
  hits integer not null default 1,
  constraint rate_limits_pkey primary key (bucket, window_start)
);
alter table private.rate_limits enable row level security;
revoke all on table private.rate_limits from public, anon, authenticated, service_role;
create index if not exists rate_limits_window_start_idx on private.rate_limits (window_start);

comment on table private.rate_limits is 'Per-client request counters of the functions (fixed windows).';

-- ============================================================================
-- Functions
-- ============================================================================
-- One round trip before a registration: is registration switched on, may this client make
-- another attempt in the current window, is the requested username free (case-insensitive), and
-- is the email already registered (confirmed or not)? The last two are null when not asked.
-- Counts the attempt when registration is on.
-- Returns {"enabled", "allowed", "limit", "remaining", "retry_after_seconds",
--          "username_available", "email_registered"}.
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
  v_window_start timestamptz;
  v_hits integer;
  v_username_available boolean;
  v_email_registered boolean;
begin
  if p_client is null or char_length(p_client) not between 1 and 200 then
    raise exception 'p_client must be 1-200 characters' using errcode = '22023';
  end if;
  if p_limit is null or p_limit < 1 or p_window_seconds is null or p_window_seconds < 1 or p_window_seconds > 86400 then
    raise exception 'p_limit must be positive and p_window_seconds between 1 and 86400' using errcode = '22023';
  end if;

  v_enabled := coalesce((select s.register_enabled from private.settings s where s.id), true);
  if not v_enabled then
    return jsonb_build_object('enabled', false, 'allowed', false, 'limit', p_limit, 'remaining', 0,
                              'retry_after_seconds', 60, 'username_available', null, 'email_registered', null);
  end if;

  -- The reads first, the client's counter row last: that row lock serialises one client's
  -- registrations, so it is held for as short a time as possible.
  v_username_available := case when p_username is null then null else not exists (
    select 1 from public.user_profiles p where lower(p.username) = lower(p_username)) end;
  -- Supabase Auth stores emails lower-cased: equality on lower(p_email) uses users_email_partial_key.
  v_email_registered := case when p_email is null then null else exists (
    select 1 from auth.users u where u.email = lower(p_email) and not u.is_sso_user) end;

  v_window_start := to_timestamp(floor(extract(epoch from now()) / p_window_seconds) * p_window_seconds);
  insert into private.rate_limits as r (bucket, window_start)
  values ('register:' || p_client, v_window_start)
  on conflict (bucket, window_start) do update set hits = r.hits + 1
  returning r.hits into v_hits;

  delete from private.rate_limits r
  where r.ctid in (select o.ctid from private.rate_limits o
                   where o.window_start < now() - interval '1 day' limit 100);

  return jsonb_build_object(
    'enabled', true,
    'allowed', v_hits <= p_limit,
    'limit', p_limit,
    'remaining', greatest(p_limit - v_hits, 0),
    'retry_after_seconds', greatest(1, ceil(extract(epoch from
      v_window_start + make_interval(secs => p_window_seconds) - now())))::integer,
    'username_available', v_username_available,
    'email_registered', v_email_registered
  );
end;
$$;
revoke execute on function public.register_preflight(text, integer, integer, text, text) from public, anon, authenticated;
grant execute on function public.register_preflight(text, integer, integer, text, text) to service_role;

-- The auth user registered under an email, for register's one ambiguous case: an attempt to
-- create the user timed out, the retry says the email exists, and only the creation time tells
-- whether that user is the one the timed-out attempt made.
create or replace function public.find_auth_user_by_email(p_email text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('id', u.id, 'created_at', u.created_at, 'email_confirmed_at', u.email_confirmed_at)
  from auth.users u
  -- Supabase Auth stores emails lower-cased: equality on lower(p_email) uses users_email_partial_key.
  where u.email = lower(p_email) and not u.is_sso_user
  limit 1
$$;
revoke execute on function public.find_auth_user_by_email(text) from public, anon, authenticated;
grant execute on function public.find_auth_user_by_email(text) to service_role;
