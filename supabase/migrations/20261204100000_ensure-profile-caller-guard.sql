-- ensure-profile's guard for signed-in users: a per-user rate limit, the user's standing in
-- Supabase Auth, and an audit trail that repeated calls cannot flood.
--
-- Before this migration every call of ensure-profile with a user's access token ran
-- ensure_user_profile, which writes one audit row per answer: 300 calls with one token in 1.6 s
-- wrote 300 'existed' rows, and the success rate that health and the alerts judge counted every
-- one of them. A banned user's unexpired token still had its profile ensured. Now the function
-- asks public.ensure_profile_for_caller first, in one round trip:
--   * the call is counted per user in private.rate_limits, with register's lane counter (now
--     private.count_rate_limit_hit); a call past the limit writes nothing else;
--   * a user Supabase Auth would refuse (banned, soft-deleted, gone) is refused and the refusal
--     is an audit row (outcome 'refused', allowed below together with 'released', which
--     20261204100100_unconfirmed-username-lapse.sql uses);
--   * an existing profile is answered from here: the first 'existed' answer of a user and source
--     in an hour is an audit row as before, later ones in that hour are only counted
--     (private.existed_repeats), so neither the audit table nor the success rate moves with them.
-- A user without a profile gets it from ensure_user_profile afterwards, as before. Service-role,
-- Database Webhook and Auth Hook callers do not come through here.
-- Redefines public.prune_audit_logs (live body was in 20261121140000_audit-retention.sql) so the
-- new counters are kept exactly as long as the audit rows they stand in for.

-- ============================================================================
-- Tables
-- ============================================================================
-- 'refused' for a refused caller; 'released' for the release of a lapsed username claim
-- (20261204100100), allowed here so that the list is changed once. NOT VALID: the new list only
-- adds outcomes, so every existing row already satisfies it, and validating would scan the whole
-- audit table under the ACCESS EXCLUSIVE lock this statement takes, while every signup's trigger
-- waits to write its audit row.
alter table private.audit_logs drop constraint if exists audit_logs_outcome_check;
alter table private.audit_logs add constraint audit_logs_outcome_check
  check (outcome in ('created', 'existed', 'failed', 'skipped', 'released', 'refused')) not valid;

-- The 'existed' answers of a user and source in an hour beyond the first (which is an audit row).
-- UNLOGGED like private.rate_limits: a repeated call then commits without a WAL flush. A crash
-- empties it; that loses a count of answers that changed nothing, and the next answer of each
-- user is an audit row again.
create unlogged table if not exists private.existed_repeats (
  user_id uuid not null,
  source text not null,
  hour_start timestamptz not null,
  repeats integer not null default 0 constraint existed_repeats_repeats_check check (repeats >= 0),
  last_at timestamptz not null default now(),
  constraint existed_repeats_pkey primary key (user_id, source, hour_start)
);
alter table private.existed_repeats enable row level security;
revoke all on table private.existed_repeats from public, anon, authenticated, service_role;
-- Stats read and retention deletes a range of hours, never one user's rows.
create index if not exists existed_repeats_hour_start_idx on private.existed_repeats (hour_start);

comment on table private.existed_repeats is
  'Repeated ''existed'' answers per user, source and hour, counted instead of audited (the first of the hour is an audit row). UNLOGGED: emptied by a crash.';
comment on column private.existed_repeats.repeats is 'Answers after the first in this hour; 0 when there was only the audited one.';

-- ============================================================================
-- Functions
-- ============================================================================
-- Counts one request of p_bucket in the current fixed window of p_window_seconds and says whether
-- it is within p_limit. The algorithm of register_preflight (20261121151000), which is redefined
-- on top of this in 20261204100100: the count is spread over limit / 100 lanes (1 to
-- 32) taken with advisory locks that never wait, so concurrent requests of one bucket do not
-- queue on one row, at the price of passing the limit by at most lanes - 1; a limit below 200
-- has one lane and is exact. Stale windows (older than a day) are deleted as requests pass.
-- The lane row stays locked until the caller's transaction ends.
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
revoke execute on function private.count_rate_limit_hit(text, integer, integer) from public, anon, authenticated, service_role;

-- An 'existed' answer: the first of the user and source in the current hour is an audit row
-- (through record_profile_success, which also resolves an open repair-queue entry), the others
-- add one to private.existed_repeats. Hours are fixed (aligned on the epoch), so concurrent
-- answers agree on which one is first: the upsert inserts for exactly one of them.
-- Returns true when the answer was stored as an audit row.
create or replace function private.record_profile_existed(
  p_user_id uuid,
  p_source text,
  p_started_at timestamptz,
  p_request_id text default null
)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_repeats integer;
begin
  insert into private.existed_repeats as r (user_id, source, hour_start)
  values (p_user_id, p_source, to_timestamp(floor(extract(epoch from now()) / 3600) * 3600))
  on conflict (user_id, source, hour_start) do update set repeats = r.repeats + 1, last_at = now()
  returning r.repeats into v_repeats;
  if v_repeats = 0 then
    perform private.record_profile_success(p_user_id, p_source, 'existed', p_started_at, null, 1, p_request_id);
  end if;
  return v_repeats = 0;
end;
$$;
revoke execute on function private.record_profile_existed(uuid, text, timestamptz, text)
  from public, anon, authenticated, service_role;

-- What ensure-profile asks first for a signed-in user: may this user call again in the window
-- (p_limit calls per p_window_seconds), would Supabase Auth still accept them, and the profile
-- when it exists. Returns {"allowed", "retry_after_seconds", "standing", "profile", "repeat"}:
--   * past the limit: allowed false and retry_after_seconds; nothing else is looked at or written;
--   * standing 'banned' (banned_until in the future), 'deleted' (deleted_at set) or 'missing' (no
--     auth.users row): a 'refused' audit row with the reason in details; profile null;
--   * standing 'active' with the profile: the answer is recorded as 'existed' (repeat false: an
--     audit row; true: counted in private.existed_repeats);
--   * standing 'active' without a profile: nothing written; the caller creates it through
--     ensure_user_profile.
-- Anonymous users (auth.users.is_anonymous) are auth users like any other: 'active'.
create or replace function public.ensure_profile_for_caller(
  p_user_id uuid,
  p_limit integer,
  p_window_seconds integer,
  p_request_id text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_count record;
  v_banned_until timestamptz;
  v_deleted_at timestamptz;
  v_standing text;
  v_profile public.user_profiles;
  v_has_profile boolean;
  v_audited boolean;
begin
  if p_user_id is null then
    raise exception 'p_user_id is required' using errcode = '22023';
  end if;

  select * into v_count from private.count_rate_limit_hit('ensure:' || p_user_id::text, p_limit, p_window_seconds);
  if not v_count.o_allowed then
    return jsonb_build_object('allowed', false, 'retry_after_seconds', v_count.o_retry_after_seconds,
                              'standing', null, 'profile', null, 'repeat', null);
  end if;

  select u.banned_until, u.deleted_at into v_banned_until, v_deleted_at from auth.users u where u.id = p_user_id;
  v_standing := case when not found then 'missing'
                     when v_deleted_at is not null then 'deleted'
                     when v_banned_until > now() then 'banned'
                     else 'active' end;
  if v_standing <> 'active' then
    insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, request_id, details)
    values (p_user_id, 'ensure_profile', 'ensure', 'refused',
            round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3), p_request_id,
            jsonb_build_object('reason', v_standing));
    return jsonb_build_object('allowed', true, 'retry_after_seconds', null,
                              'standing', v_standing, 'profile', null, 'repeat', null);
  end if;

  select * into v_profile from public.user_profiles p where p.user_id = p_user_id;
  v_has_profile := found;
  if v_has_profile then
    v_audited := private.record_profile_existed(p_user_id, 'ensure', v_started_at, p_request_id);
  end if;
  return jsonb_build_object('allowed', true, 'retry_after_seconds', null, 'standing', v_standing,
                            'profile', case when v_has_profile then to_jsonb(v_profile) end,
                            'repeat', case when v_has_profile then not v_audited end);
end;
$$;
revoke execute on function public.ensure_profile_for_caller(uuid, integer, integer, text) from public, anon, authenticated;
grant execute on function public.ensure_profile_for_caller(uuid, integer, integer, text) to service_role;

-- The counted repeats, beside profile_system_stats (which counts audit rows only and is left as
-- it is): {"window": {"from", "to", "seconds"}, "existed_repeats", "by_source"}. Counted by hour,
-- so a window includes the whole of every hour it overlaps. Reads only those hours through the
-- hour_start index.
create or replace function public.profile_existed_repeats(p_window interval default interval '24 hours')
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_since timestamptz;
  v_total bigint;
  v_by_source jsonb;
begin
  if p_window is null or p_window <= interval '0' or p_window > interval '366 days' then
    raise exception 'p_window must be a positive interval of at most 366 days' using errcode = '22023';
  end if;
  v_since := now() - p_window;
  select coalesce(sum(s.n), 0), coalesce(jsonb_object_agg(s.source, s.n order by s.source), '{}'::jsonb)
    into v_total, v_by_source
  from (select r.source, sum(r.repeats)::bigint as n
        from private.existed_repeats r
        where r.hour_start > v_since - interval '1 hour' and r.repeats > 0
        group by r.source) s;
  return jsonb_build_object(
    'window', jsonb_build_object('from', v_since, 'to', now(), 'seconds', round(extract(epoch from p_window)::numeric, 3)),
    'existed_repeats', v_total,
    'by_source', v_by_source
  );
end;
$$;
revoke execute on function public.profile_existed_repeats(interval) from public, anon, authenticated;
grant execute on function public.profile_existed_repeats(interval) to service_role;

-- prune_audit_logs as in 20261121140000, plus the hours of private.existed_repeats that ended
-- before the cutoff. Returns {"audit_logs", "repair_queue", "alert_deliveries", "existed_repeats",
-- "older_than", "done"}.
create or replace function public.prune_audit_logs(p_batch_size integer default 10000)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_cutoff timestamptz;
  v_audit integer;
  v_queue integer;
  v_alerts integer;
  v_repeats integer;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 100000 then
    raise exception 'p_batch_size must be between 1 and 100000' using errcode = '22023';
  end if;
  v_cutoff := now() - coalesce((select s.audit_retention from private.settings s where s.id), interval '90 days');

  delete from private.audit_logs a
  where a.id in (select o.id from private.audit_logs o where o.occurred_at < v_cutoff order by o.occurred_at limit p_batch_size);
  get diagnostics v_audit = row_count;

  delete from private.repair_queue q
  where q.user_id in (select o.user_id from private.repair_queue o where o.resolved_at < v_cutoff order by o.resolved_at limit p_batch_size);
  get diagnostics v_queue = row_count;

  delete from private.alert_deliveries d
  where d.id in (select o.id from private.alert_deliveries o where o.delivered_at < v_cutoff order by o.delivered_at limit p_batch_size);
  get diagnostics v_alerts = row_count;

  delete from private.existed_repeats r
  where r.ctid in (select o.ctid from private.existed_repeats o
                   where o.hour_start < v_cutoff - interval '1 hour' order by o.hour_start limit p_batch_size);
  get diagnostics v_repeats = row_count;

  return jsonb_build_object(
    'audit_logs', v_audit,
    'repair_queue', v_queue,
    'alert_deliveries', v_alerts,
    'existed_repeats', v_repeats,
    'older_than', v_cutoff,
    'done', v_audit < p_batch_size and v_queue < p_batch_size and v_alerts < p_batch_size and v_repeats < p_batch_size
  );
end;
$$;
revoke execute on function public.prune_audit_logs(integer) from public, anon, authenticated;
grant execute on function public.prune_audit_logs(integer) to service_role;
