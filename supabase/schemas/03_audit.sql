-- The audit trail: one row per attempt to ensure a profile, from any layer, and what keeps it
-- bounded (repeated 'existed' answers are counted, old rows are pruned).

-- ============================================================================
-- Functions
-- ============================================================================
-- The rule of an audit row, behind its one check constraint: which sources and outcomes exist,
-- and that attempts count from 1. A function rather than IN lists in the table, so a new source
-- or outcome replaces the function instead of dropping and re-adding a constraint on a large
-- table, and a check calling one function is cheap for PostgreSQL to re-plan on every write.
create or replace function private.is_valid_audit_row(p_source text, p_outcome text, p_attempt integer)
returns boolean
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  return p_source in ('trigger', 'register', 'ensure', 'webhook', 'backfill', 'reconcile', 'hook')
     and p_outcome in ('created', 'existed', 'failed', 'skipped', 'released', 'refused', 'updated')
     and p_attempt >= 1;
end;
$$;
revoke execute on function private.is_valid_audit_row(text, text, integer)
  from public, anon, authenticated, service_role;

-- ============================================================================
-- Tables
-- ============================================================================
-- One row per attempt to ensure a profile, from any layer. No foreign key to auth.users: the
-- trail outlives the user it describes.
create table private.audit_logs (
  id bigint generated always as identity constraint audit_logs_pkey primary key,
  occurred_at timestamptz not null default now(),
  user_id uuid,
  operation text not null,
  source text not null,
  outcome text not null,
  attempt integer not null default 1,
  sqlstate text,
  message text,
  duration_ms numeric(12, 3),
  request_id text,
  details jsonb not null default '{}'::jsonb
);
alter table private.audit_logs enable row level security;
revoke all on table private.audit_logs from public, anon, authenticated, service_role;

-- NOT VALID, as on a live project: the migrations that widened the lists never rescanned the
-- table under the ACCESS EXCLUSIVE lock every signup's trigger would wait on (the lists only
-- grew, so every existing row passed). New rows are checked all the same.
alter table private.audit_logs
  add constraint audit_logs_row_check check (private.is_valid_audit_row(source, outcome, attempt)) not valid;

comment on table private.audit_logs is
  'One row per profile attempt (trigger, functions, backfill); kept after the user is deleted.';

-- Monitoring reads a time window: these make its cost follow the window, not the history.
create index audit_logs_occurred_at_idx on private.audit_logs (occurred_at);
create index audit_logs_failed_occurred_at_idx on private.audit_logs (occurred_at)
  where outcome = 'failed';

-- Repeated 'existed' answers, counted instead of audited: the first answer of a user and source
-- in an hour is an audit row, the others add one here, so neither the audit table nor the
-- success rate moves with a client that asks again and again.
create unlogged table private.existed_repeats (
  user_id uuid not null,
  source text not null,
  hour_start timestamptz not null,
  repeats integer not null default 0 constraint existed_repeats_repeats_check check (repeats >= 0),
  last_at timestamptz not null default now(),
  constraint existed_repeats_pkey primary key (user_id, source, hour_start)
);
alter table private.existed_repeats enable row level security;
revoke all on table private.existed_repeats from public, anon, authenticated, service_role;

comment on table private.existed_repeats is
  'Repeated ''existed'' answers per user, source and hour, counted instead of audited (the first of the hour is an audit row). UNLOGGED: emptied by a crash.';
comment on column private.existed_repeats.repeats is
  'Answers after the first in this hour; 0 when there was only the audited one.';

create index existed_repeats_hour_start_idx on private.existed_repeats (hour_start);

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

-- The counterpart of private.record_profile_failure for the success paths: private.ensure_profile
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

-- An 'existed' answer (ensure_profile_for_caller); true when it was stored as an audit row.
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
-- so a failure to record it is only a warning. On an adopted app table (14_adoption.sql) the
-- trigger passes the key column's name, and the layer comes from the fallback's
-- x-profile-created-via header, the app's table having no created_via.
create or replace function private.on_profile_inserted_directly()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_source text;
  v_headers jsonb;
begin
  begin
    if tg_nargs = 0 then
      v_user_id := new.user_id;
      v_source := new.created_via;
    else
      v_user_id := (to_jsonb(new) ->> tg_argv[0])::uuid;
    end if;
    v_headers := nullif(current_setting('request.headers', true), '')::jsonb;
    if tg_nargs > 0 then
      v_source := v_headers ->> 'x-profile-created-via';
      if v_source is null or not private.is_valid_created_via(v_source) then
        v_source := 'ensure';
      end if;
    end if;
    if tg_when = 'AFTER' then
      perform private.record_profile_outcome(v_user_id, v_source, 'created', statement_timestamp(),
                                             null, 1, left(v_headers ->> 'x-profile-request-id', 200),
                                             '{"via": "direct_insert"}');
    elsif exists (select 1 from public.user_profiles p where p.user_id = v_user_id) then
      perform private.record_profile_outcome(v_user_id, v_source, 'existed', statement_timestamp(),
                                             null, 1, left(v_headers ->> 'x-profile-request-id', 200),
                                             '{"via": "direct_insert"}');
    end if;
  exception when others then
    raise warning 'could not audit the direct insert of the profile of user %: % (SQLSTATE %)',
      v_user_id, sqlerrm, sqlstate;
  end;
  if tg_when = 'BEFORE' then
    return new;
  end if;
  return null;
end;
$$;
revoke execute on function private.on_profile_inserted_directly()
  from public, anon, authenticated, service_role;

-- Retention: the audit trail (and the resolved repair-queue entries, delivered alerts and the
-- counted repeats) is kept for private.settings.audit_retention, then deleted in short batches by
-- an index range scan, so the tables stay bounded however long the system runs. Deletes at most
-- p_batch_size rows of each kind and returns {"audit_logs", "repair_queue", "alert_deliveries",
-- "existed_repeats", "older_than", "done"}; call again until done.
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

-- ============================================================================
-- Triggers
-- ============================================================================
create trigger user_profiles_audit_direct_conflict
  before insert on public.user_profiles
  for each row
  when (current_user = 'service_role')
  execute function private.on_profile_inserted_directly();

create trigger user_profiles_audit_direct_insert
  after insert on public.user_profiles
  for each row
  when (current_user = 'service_role')
  execute function private.on_profile_inserted_directly();
