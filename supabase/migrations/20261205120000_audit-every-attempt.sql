-- Every attempt in the audit trail, correlated with the request that made it.
--
-- Before this migration three kinds of attempt left no audit row, and one kind left too many:
--   * register read the profile the auth.users trigger had made with a plain select, so a
--     registration's own request id was in no audit row (register now asks ensure_user_profile
--     directly, which reads or creates the profile and writes its row in the same call);
--   * the functions' direct-insert fallback (a plain INSERT into public.user_profiles when
--     ensure_user_profile is missing or broken) wrote nothing: triggers on user_profiles now write
--     its row, in the same statement;
--   * a signup the before-user-created hook refused wrote nothing: the hook now records it
--     through public.record_signup_refusal (source 'hook', outcome 'refused');
--   * ensure_user_profile stored every 'existed' answer, so concurrent calls for a user without a
--     profile wrote one 'created' row and an 'existed' row for every other caller, and duplicate
--     webhook deliveries one per copy. The rule ensure_profile_for_caller already applied (the
--     first 'existed' answer of a user and source in an hour is an audit row, the rest are
--     counted in private.existed_repeats) now lives in private.record_profile_outcome, which
--     every success path goes through; register's answers are exempt, so that every register
--     request that reaches the profile stage leaves exactly one row with its request id.
-- Redefines private.record_profile_success (20261121150000_lean-signup-path.sql) and
-- private.record_profile_existed (20261204100000_ensure-profile-caller-guard.sql) on top of the
-- new private.record_profile_outcome; same signatures and results.

-- ============================================================================
-- Tables
-- ============================================================================
-- 'hook': Supabase Auth's before-user-created hook (ensure-profile's fourth caller). NOT VALID,
-- as the outcome list in 20261204100000: the list only grows, and validating would scan the whole
-- audit table under the ACCESS EXCLUSIVE lock this statement takes, while signups wait.
alter table private.audit_logs drop constraint if exists audit_logs_source_check;
alter table private.audit_logs add constraint audit_logs_source_check
  check (source in ('trigger', 'register', 'ensure', 'webhook', 'backfill', 'reconcile', 'hook')) not valid;

-- ============================================================================
-- Functions
-- ============================================================================
-- The audit row of a successful attempt (created or existed) and the resolution of the user's
-- open repair-queue entry, in the caller's transaction, with one exception: an 'existed' answer
-- from any source but register is stored only when it is the first of its user and source in
-- the current hour; later ones add one to private.existed_repeats and write nothing else. Hours
-- are fixed (aligned on the epoch), so concurrent answers agree on which one is first: the
-- upsert inserts for exactly one of them, and a racer that waited on it counts. p_details is
-- merged into the row's details (the fallback's {"via": "direct_insert"}).
-- Returns true when the attempt was stored as an audit row.
create or replace function private.record_profile_outcome(
  p_user_id uuid,
  p_source text,
  p_outcome text,
  p_started_at timestamptz,
  p_dropped jsonb default null,
  p_attempt integer default 1,
  p_request_id text default null,
  p_details jsonb default '{}'::jsonb
)
returns boolean
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_repeats integer;
begin
  if p_outcome = 'existed' and p_source <> 'register' then
    insert into private.existed_repeats as r (user_id, source, hour_start)
    values (p_user_id, p_source, to_timestamp(floor(extract(epoch from now()) / 3600) * 3600))
    on conflict (user_id, source, hour_start) do update set repeats = r.repeats + 1, last_at = now()
    returning r.repeats into v_repeats;
    if v_repeats > 0 then
      return false;
    end if;
  end if;

  insert into private.audit_logs (user_id, operation, source, outcome, attempt, duration_ms, request_id, details)
  values (p_user_id, 'ensure_profile', p_source, p_outcome, p_attempt,
          round((extract(epoch from clock_timestamp() - p_started_at) * 1000)::numeric, 3), p_request_id,
          coalesce(p_details, '{}'::jsonb)
            || case when p_dropped is null or p_dropped = '{}'::jsonb then '{}'::jsonb
                    else jsonb_build_object('dropped', p_dropped) end);

  update private.repair_queue q
     set resolved_at = now(), resolution = p_source
   where q.user_id = p_user_id and q.resolved_at is null;
  return true;
end;
$$;
revoke execute on function private.record_profile_outcome(uuid, text, text, timestamptz, jsonb, integer, text, jsonb)
  from public, anon, authenticated, service_role;

-- Replaces the body of 20261121150000_lean-signup-path.sql. Changed: the row is written by
-- private.record_profile_outcome, so an 'existed' answer (but register's) is counted instead of
-- stored after the first of its user and source in the hour. Callers: private.ensure_profile
-- (every ensure_user_profile call, backfill and the reconciler) and the auth.users trigger.
create or replace function private.record_profile_success(
  p_user_id uuid,
  p_source text,
  p_outcome text,
  p_started_at timestamptz,
  p_dropped jsonb default null,
  p_attempt integer default 1,
  p_request_id text default null
)
returns void
language plpgsql
security invoker
set search_path = ''
as $$
begin
  perform private.record_profile_outcome(p_user_id, p_source, p_outcome, p_started_at, p_dropped,
                                         p_attempt, p_request_id);
end;
$$;
revoke execute on function private.record_profile_success(uuid, text, text, timestamptz, jsonb, integer, text)
  from public, anon, authenticated, service_role;

-- Replaces the body of 20261204100000_ensure-profile-caller-guard.sql. Changed: the counting
-- moved into private.record_profile_outcome (before, this function counted and then called
-- record_profile_success, which now counts by itself). Same answer: true when the answer was
-- stored as an audit row.
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
begin
  return private.record_profile_outcome(p_user_id, p_source, 'existed', p_started_at, null, 1, p_request_id);
end;
$$;
revoke execute on function private.record_profile_existed(uuid, text, timestamptz, text)
  from public, anon, authenticated, service_role;

-- The audit row of the functions' direct-insert fallback (shared/profile-service.ts), which
-- inserts into public.user_profiles over the API as service_role when ensure_user_profile is
-- missing or keeps failing. Only such inserts reach it (the triggers' WHEN clause): every insert
-- of ours runs inside a SECURITY DEFINER function, as its owner. The fallback is
-- `INSERT … ON CONFLICT (user_id) DO NOTHING`, so:
--   * BEFORE INSERT: a profile that is already there is the answer 'existed' (the insert will be
--     skipped, and an AFTER trigger would never hear of it);
--   * AFTER INSERT (fires only for a row really inserted): 'created'.
-- A profile made by someone else between the two (a race of milliseconds) leaves no row. The
-- source is the layer the row names (created_via), the request id the x-profile-request-id
-- header PostgREST exposes in request.headers, the duration that of the insert statement.
-- Never fails the insert: the fallback exists to make the profile when other things are broken,
-- so a failure to record it is only a warning.
create or replace function private.on_profile_inserted_directly()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_request_id text;
begin
  begin
    v_request_id := left(nullif(current_setting('request.headers', true), '')::jsonb ->> 'x-profile-request-id', 200);
    if tg_when = 'AFTER' then
      perform private.record_profile_outcome(new.user_id, new.created_via, 'created', statement_timestamp(),
                                             null, 1, v_request_id, '{"via": "direct_insert"}');
    elsif exists (select 1 from public.user_profiles p where p.user_id = new.user_id) then
      perform private.record_profile_outcome(new.user_id, new.created_via, 'existed', statement_timestamp(),
                                             null, 1, v_request_id, '{"via": "direct_insert"}');
    end if;
  exception when others then
    raise warning 'could not audit the direct insert of the profile of user %: % (SQLSTATE %)',
      new.user_id, sqlerrm, sqlstate;
  end;
  if tg_when = 'BEFORE' then
    return new;
  end if;
  return null;
end;
$$;
revoke execute on function private.on_profile_inserted_directly() from public, anon, authenticated, service_role;

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
revoke execute on function public.record_signup_refusal(uuid, text, integer, text, numeric) from public, anon, authenticated;
grant execute on function public.record_signup_refusal(uuid, text, integer, text, numeric) to service_role;

-- ============================================================================
-- Triggers
-- ============================================================================
-- current_user is service_role only for a write made through the API with the service key: the
-- functions' fallback. Every other insert skips both triggers at the cost of the WHEN test.
drop trigger if exists user_profiles_audit_direct_conflict on public.user_profiles;
create trigger user_profiles_audit_direct_conflict
  before insert on public.user_profiles
  for each row
  when (current_user = 'service_role')
  execute function private.on_profile_inserted_directly();

drop trigger if exists user_profiles_audit_direct_insert on public.user_profiles;
create trigger user_profiles_audit_direct_insert
  after insert on public.user_profiles
  for each row
  when (current_user = 'service_role')
  execute function private.on_profile_inserted_directly();
