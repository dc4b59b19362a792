-- What the register and ensure-profile functions need besides the core: Idempotency-Key
-- support, per-client rate limits, the registration preflight, the lapse of usernames claimed by
-- users who never confirmed, and the audit row of a signup the Auth Hook refused.

-- ============================================================================
-- Idempotency keys
-- ============================================================================
-- A retried request returns the first answer instead of doing the work twice (a second auth
-- user, a 409 for the user's own retry). One row per (scope, key). request_hash is an HMAC of the
-- request body keyed with a server secret, so a replay with a different body is recognised
-- without storing (or exposing to offline guessing) the body's password. status/response are
-- null while the first request runs.
create table private.idempotency_keys (
  scope text not null,
  key text not null,
  request_hash text not null,
  status integer,
  response jsonb,
  locked_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  constraint idempotency_keys_pkey primary key (scope, key)
);
alter table private.idempotency_keys enable row level security;
revoke all on table private.idempotency_keys from public, anon, authenticated, service_role;

comment on table private.idempotency_keys is
  'Idempotency-Key of requests to the functions; rows expire after their TTL.';

create index idempotency_keys_expires_at_idx on private.idempotency_keys (expires_at);

create or replace function private.check_idempotency_arguments(p_scope text, p_key text, p_request_hash text)
returns void
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  if p_scope is null or p_scope !~ '^[a-z][a-z0-9_-]{0,39}$' then
    raise exception 'p_scope must be a lower-case name of at most 40 characters' using errcode = '22023';
  end if;
  if p_key is null or p_key !~ '^[\x21-\x7e]{1,255}$' then
    raise exception 'p_key must be 1-255 printable ASCII characters' using errcode = '22023';
  end if;
  if p_request_hash is null or p_request_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'p_request_hash must be 64 lower-case hex digits' using errcode = '22023';
  end if;
end;
$$;
revoke execute on function private.check_idempotency_arguments(text, text, text)
  from public, anon, authenticated, service_role;

-- Claims a key for a request. Returns {"state": ...}:
--   "claimed"     this caller owns the key and must finish with idempotency_complete/release;
--   "replay"      the first request finished: answer its {"status", "response"} again;
--   "in_progress" another request holds the key right now (retry shortly);
--   "mismatch"    the key was used for a different request body.
-- A holder that has not finished within p_lock_seconds is presumed dead and the key is reclaimed.
create or replace function public.idempotency_claim(
  p_scope text,
  p_key text,
  p_request_hash text,
  p_ttl_seconds integer default 86400,
  p_lock_seconds integer default 60
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row private.idempotency_keys;
begin
  perform private.check_idempotency_arguments(p_scope, p_key, p_request_hash);
  if p_ttl_seconds is null or p_ttl_seconds < 60 or p_lock_seconds is null or p_lock_seconds < 1 then
    raise exception 'p_ttl_seconds must be at least 60 and p_lock_seconds at least 1' using errcode = '22023';
  end if;

  -- Keep the table bounded without a scheduler: every claim removes a few expired keys.
  delete from private.idempotency_keys k
  where k.ctid in (select e.ctid from private.idempotency_keys e where e.expires_at <= now() limit 100);

  insert into private.idempotency_keys (scope, key, request_hash, expires_at)
  values (p_scope, p_key, p_request_hash, now() + make_interval(secs => p_ttl_seconds))
  on conflict (scope, key) do nothing
  returning * into v_row;
  if found then
    return '{"state": "claimed"}'::jsonb;
  end if;

  select * into v_row from private.idempotency_keys k
  where k.scope = p_scope and k.key = p_key
  for update;
  if not found then
    -- Expired and deleted by someone else between our insert and select: claim it now.
    insert into private.idempotency_keys (scope, key, request_hash, expires_at)
    values (p_scope, p_key, p_request_hash, now() + make_interval(secs => p_ttl_seconds))
    on conflict (scope, key) do nothing;
    return '{"state": "in_progress"}'::jsonb;
  end if;
  if v_row.request_hash <> p_request_hash then
    return '{"state": "mismatch"}'::jsonb;
  end if;
  if v_row.status is not null then
    return jsonb_build_object('state', 'replay', 'status', v_row.status, 'response', v_row.response);
  end if;
  if v_row.locked_at < now() - make_interval(secs => p_lock_seconds) then
    update private.idempotency_keys k set locked_at = now() where k.scope = p_scope and k.key = p_key;
    return '{"state": "claimed"}'::jsonb;
  end if;
  return '{"state": "in_progress"}'::jsonb;
end;
$$;
revoke execute on function public.idempotency_claim(text, text, text, integer, integer)
  from public, anon, authenticated;
grant execute on function public.idempotency_claim(text, text, text, integer, integer) to service_role;

-- Stores the final answer of a claimed key so later requests replay it.
create or replace function public.idempotency_complete(
  p_scope text,
  p_key text,
  p_request_hash text,
  p_status integer,
  p_response jsonb
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_idempotency_arguments(p_scope, p_key, p_request_hash);
  if p_status is null or p_status < 200 or p_status > 499 then
    raise exception 'p_status must be a final 2xx-4xx status; release the key on a 5xx' using errcode = '22023';
  end if;
  update private.idempotency_keys k
     set status = p_status, response = p_response
   where k.scope = p_scope and k.key = p_key and k.request_hash = p_request_hash and k.status is null;
end;
$$;
revoke execute on function public.idempotency_complete(text, text, text, integer, jsonb)
  from public, anon, authenticated;
grant execute on function public.idempotency_complete(text, text, text, integer, jsonb) to service_role;

-- Gives a claimed key back (the request failed in a way worth retrying), so the next retry runs.
create or replace function public.idempotency_release(p_scope text, p_key text, p_request_hash text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_idempotency_arguments(p_scope, p_key, p_request_hash);
  delete from private.idempotency_keys k
  where k.scope = p_scope and k.key = p_key and k.request_hash = p_request_hash and k.status is null;
end;
$$;
revoke execute on function public.idempotency_release(text, text, text) from public, anon, authenticated;
grant execute on function public.idempotency_release(text, text, text) to service_role;

-- ============================================================================
-- Rate limits
-- ============================================================================
-- Admin user creation bypasses Supabase Auth's own signup rate limits, so register needs one;
-- ensure-profile limits each signed-in user. A client's count in a window is kept in up to 32
-- rows ("lanes"), so concurrent requests of one client never queue on one row. UNLOGGED: a
-- transaction that wrote only unlogged rows commits without waiting for a WAL flush; after a
-- crash the table is empty, i.e. every client starts a fresh window: acceptable for a rate
-- limit, never for anything else.
create unlogged table private.rate_limits (
  bucket text not null,
  window_start timestamptz not null,
  hits integer not null default 1,
  lane smallint not null default 0,
  constraint rate_limits_pkey primary key (bucket, window_start, lane)
);
alter table private.rate_limits enable row level security;
revoke all on table private.rate_limits from public, anon, authenticated, service_role;

comment on table private.rate_limits is
  'Per-client request counters of the functions (fixed windows, a client''s count spread over lanes). UNLOGGED: emptied by a crash, which only restarts every window.';
comment on column private.rate_limits.lane is
  'Which of the client''s counters in the window; the count is the sum over lanes.';

create index rate_limits_window_start_idx on private.rate_limits (window_start);

-- Counts one request of p_bucket in the current fixed window of p_window_seconds and says whether
-- it is within p_limit. The count is spread over limit / 100 lanes (1 to 32) taken with advisory
-- locks that never wait, so concurrent requests of one bucket do not queue on one row, at the
-- price of passing the limit by at most lanes - 1 (under 1 % of the limit); a limit below 200
-- has one lane and is exact. Stale windows (older than a day) are deleted as requests pass.
-- The lane row stays locked until the caller's transaction ends, so callers count last.
create or replace function private.count_rate_limit_hit(
  p_bucket text,
  p_limit integer,
  p_window_seconds integer,
  out o_allowed boolean,
  out o_remaining integer,
  out o_retry_after_seconds integer
)
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_lanes integer;
  v_first integer;
  v_lane integer;
  v_window_start timestamptz;
  v_hits integer;
begin
  if p_bucket is null or char_length(p_bucket) not between 1 and 300 then
    raise exception 'p_bucket must be 1-300 characters' using errcode = '22023';
  end if;
  if p_limit is null or p_limit < 1 or p_window_seconds is null or p_window_seconds < 1 or p_window_seconds > 86400 then
    raise exception 'p_limit must be positive and p_window_seconds between 1 and 86400' using errcode = '22023';
  end if;

  delete from private.rate_limits r
  where r.ctid in (select o.ctid from private.rate_limits o
                   where o.window_start < now() - interval '1 day' limit 100 for update skip locked);

  v_lanes := least(32, greatest(1, p_limit / 100));
  v_first := floor(random() * v_lanes)::integer;
  v_lane := v_first;
  for i in 0 .. v_lanes - 1 loop
    if pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext(p_bucket), (v_first + i) % v_lanes) then
      v_lane := (v_first + i) % v_lanes;
      exit;
    end if;
  end loop;

  v_window_start := to_timestamp(floor(extract(epoch from now()) / p_window_seconds) * p_window_seconds);
  insert into private.rate_limits as r (bucket, window_start, lane)
  values (p_bucket, v_window_start, v_lane)
  on conflict (bucket, window_start, lane) do update set hits = r.hits + 1;
  select sum(r.hits)::integer into v_hits
  from private.rate_limits r where r.bucket = p_bucket and r.window_start = v_window_start;

  o_allowed := v_hits <= p_limit;
  o_remaining := greatest(p_limit - v_hits, 0);
  o_retry_after_seconds := greatest(1, ceil(extract(epoch from
    v_window_start + make_interval(secs => p_window_seconds) - now())))::integer;
end;
$$;
revoke execute on function private.count_rate_limit_hit(text, integer, integer)
  from public, anon, authenticated, service_role;

-- ============================================================================
-- Registration
-- ============================================================================
-- One round trip before a registration: is registration switched on, may this client make
-- another attempt in the current window, is the requested username free (case-insensitive; a
-- lapsed claim on it is released first, so the registration that asked gets it), is the email
-- already registered (confirmed or not), and will the auth.users trigger make the profile
-- (switched on in settings and enabled in the catalog)? Username and email are null when not
-- asked. Counts the attempt when registration is on, as the last statement, so the lane's row is
-- held only until the commit that follows it.
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
revoke execute on function public.register_preflight(text, integer, integer, text, text)
  from public, anon, authenticated;
grant execute on function public.register_preflight(text, integer, integer, text, text) to service_role;

-- Which request created an auth user. register puts a random attempt id (or one derived from the
-- request's Idempotency-Key) into the signup's user metadata as "registration_attempt"; when
-- Supabase Auth later answers that the email exists (a retry after a lost answer, a concurrent
-- registration of the same address), this tells register whether the existing user is the one
-- its own attempt made. Creation times cannot tell: two registrations a few milliseconds apart
-- look alike, and the second would be handed the first one's account.
create or replace function public.find_auth_user_by_email(p_email text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('id', u.id, 'created_at', u.created_at, 'email_confirmed_at', u.email_confirmed_at,
                            'registration_attempt', u.raw_user_meta_data ->> 'registration_attempt')
  from auth.users u
  -- Supabase Auth stores emails lower-cased: equality on lower(p_email) uses users_email_partial_key.
  where u.email = lower(p_email) and not u.is_sso_user
  limit 1
$$;
revoke execute on function public.find_auth_user_by_email(text) from public, anon, authenticated;
grant execute on function public.find_auth_user_by_email(text) to service_role;

-- What ensure-profile calls when, as Supabase Auth's before-user-created hook, it refuses a
-- signup (the username, name or avatar would not fit the profile, or the username is taken):
-- one 'refused' audit row, source 'hook', with the reason and the status the hook answered
-- Auth. p_user_id is the id Auth gave the pending user (it never comes to exist), p_duration_ms
-- the time the hook took to decide. The hook's own validation errors (400 to a payload that is
-- not a before-user-created call) write nothing.
create or replace function public.record_signup_refusal(
  p_user_id uuid,
  p_reason text,
  p_http_code integer,
  p_request_id text default null,
  p_duration_ms numeric default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_reason is null or p_reason !~ '^[a-z][a-z_]{0,63}$' then
    raise exception 'p_reason must be 1-64 lower-case letters and "_"' using errcode = '22023';
  end if;
  if p_http_code is null or p_http_code not between 400 and 599 then
    raise exception 'p_http_code must be an HTTP error status (400-599)' using errcode = '22023';
  end if;
  if char_length(p_request_id) > 200 then
    raise exception 'p_request_id must be at most 200 characters' using errcode = '22023';
  end if;
  if p_duration_ms < 0 or p_duration_ms >= 1000000000 then
    raise exception 'p_duration_ms must be between 0 and 999999999.999' using errcode = '22023';
  end if;
  insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, request_id, details)
  values (p_user_id, 'before_user_created', 'hook', 'refused', round(p_duration_ms, 3), p_request_id,
          jsonb_build_object('reason', p_reason, 'http_code', p_http_code));
end;
$$;
revoke execute on function public.record_signup_refusal(uuid, text, integer, text, numeric)
  from public, anon, authenticated;
grant execute on function public.record_signup_refusal(uuid, text, integer, text, numeric) to service_role;

-- ============================================================================
-- Username lapse
-- ============================================================================
-- A user who never confirms (auth.users.confirmed_at is null) holds their username only for
-- private.settings.unconfirmed_username_ttl; then the next user who asks for it gets it.

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
