-- register_preflight without a queue behind one client's counter row, and telling register
-- whether the trigger will make the profile.
--
-- Before this migration every attempt of one client incremented the same counter row, and held
-- its lock until the preflight transaction committed (after a WAL flush and the API's round
-- trips), so all registrations from one address (a server calling register, everyone behind one
-- NAT) queued on that row: at 32 concurrent requests the wait was most of the latency. Now:
--   * a client's count in a window is kept in up to 32 rows ("lanes"); an attempt increments a
--     lane no other attempt holds at that moment (chosen with transaction advisory locks, which
--     never wait) and reads the sum of the lanes. Each lane still holds at most one uncommitted
--     increment, so an attempt misses at most lanes - 1 concurrent ones: the limit is exceeded by
--     at most lanes - 1. With lanes = limit / 100 (at least 1, at most 32) that is under 1 % of
--     the limit, and a limit below 200 has one lane and stays exact;
--   * the counters live in an UNLOGGED table: a transaction that wrote only unlogged rows commits
--     without waiting for a WAL flush. After a crash the table is empty, i.e. every client starts
--     a fresh window: acceptable for a rate limit, never for anything else;
--   * the increment is the last statement of the preflight (the cleanup of stale windows moves
--     before it and skips rows another preflight is already deleting).

-- ============================================================================
-- Tables
-- ============================================================================
-- A no-op when the table is already unlogged, so the migration stays re-runnable.
alter table private.rate_limits set unlogged;
alter table private.rate_limits add column if not exists lane smallint not null default 0;
alter table private.rate_limits drop constraint if exists rate_limits_pkey;
alter table private.rate_limits add constraint rate_limits_pkey primary key (bucket, window_start, lane);
comment on table private.rate_limits is
  'Per-client request counters of the functions (fixed windows, a client''s count spread over lanes). UNLOGGED: emptied by a crash, which only restarts every window.';
comment on column private.rate_limits.lane is 'Which of the client''s counters in the window; the count is the sum over lanes.';

-- ============================================================================
-- Functions
-- ============================================================================
-- One round trip before a registration: is registration switched on, may this client make
-- another attempt in the current window, is the requested username free (case-insensitive), is
-- the email already registered (confirmed or not), and will the auth.users trigger make the
-- profile (switched on in settings and enabled in the catalog)? Username and email are null when
-- not asked. Counts the attempt when registration is on.
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
  v_bucket text := 'register:' || p_client;
  v_lanes integer;
  v_lane integer;
  v_first integer;
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

  select s.register_enabled, s.trigger_enabled into v_enabled, v_trigger_enabled from private.settings s where s.id;
  if not coalesce(v_enabled, true) then
    return jsonb_build_object('enabled', false, 'allowed', false, 'limit', p_limit, 'remaining', 0,
                              'retry_after_seconds', 60, 'username_available', null, 'email_registered', null,
                              'trigger_enabled', null);
  end if;
  v_trigger_enabled := coalesce(v_trigger_enabled, true) and private.profile_trigger_installed();

  v_username_available := case when p_username is null then null else not exists (
    select 1 from public.user_profiles p where lower(p.username) = lower(p_username)) end;
  -- Supabase Auth stores emails lower-cased: equality on lower(p_email) uses users_email_partial_key.
  v_email_registered := case when p_email is null then null else exists (
    select 1 from auth.users u where u.email = lower(p_email) and not u.is_sso_user) end;

  -- Stale windows (no window is longer than a day). SKIP LOCKED: concurrent preflights share the
  -- cleanup instead of waiting for each other's deletes.
  delete from private.rate_limits r
  where r.ctid in (select o.ctid from private.rate_limits o
                   where o.window_start < now() - interval '1 day' limit 100 for update skip locked);

  -- A lane no concurrent attempt of this client holds, starting at a random one; when all are
  -- held, the increment below waits for the holder of the first. The (int, int) advisory key
  -- space is separate from the bigint one the reconciler and the alerts use.
  v_lanes := least(32, greatest(1, p_limit / 100));
  v_first := floor(random() * v_lanes)::integer;
  v_lane := v_first;
  for i in 0 .. v_lanes - 1 loop
    if pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext(v_bucket), (v_first + i) % v_lanes) then
      v_lane := (v_first + i) % v_lanes;
      exit;
    end if;
  end loop;

  -- Last: from here to the commit the lane's row is held.
  v_window_start := to_timestamp(floor(extract(epoch from now()) / p_window_seconds) * p_window_seconds);
  insert into private.rate_limits as r (bucket, window_start, lane)
  values (v_bucket, v_window_start, v_lane)
  on conflict (bucket, window_start, lane) do update set hits = r.hits + 1;
  -- This attempt's increment plus the committed ones of the other lanes.
  select sum(r.hits)::integer into v_hits
  from private.rate_limits r where r.bucket = v_bucket and r.window_start = v_window_start;

  return jsonb_build_object(
    'enabled', true,
    'allowed', v_hits <= p_limit,
    'limit', p_limit,
    'remaining', greatest(p_limit - v_hits, 0),
    'retry_after_seconds', greatest(1, ceil(extract(epoch from
      v_window_start + make_interval(secs => p_window_seconds) - now())))::integer,
    'username_available', v_username_available,
    'email_registered', v_email_registered,
    'trigger_enabled', v_trigger_enabled
  );
end;
$$;
revoke execute on function public.register_preflight(text, integer, integer, text, text) from public, anon, authenticated;
grant execute on function public.register_preflight(text, integer, integer, text, text) to service_role;
