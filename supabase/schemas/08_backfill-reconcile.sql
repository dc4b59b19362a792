-- Layer 3: repair without a human. The backfill creates the profiles of users who have none, one
-- short batch at a time; the reconciler works the repair queue and the missing-profile set and
-- is safe to schedule every minute and to run concurrently (one call at a time wins).

-- ============================================================================
-- Tables
-- ============================================================================
-- One row per reconcile run, so operators and the dashboard can see when it last ran and what
-- it did. Kept small: the reconciler deletes runs older than 30 days.
create table private.reconcile_runs (
  id bigint generated always as identity constraint reconcile_runs_pkey primary key,
  started_at timestamptz not null,
  finished_at timestamptz not null default clock_timestamp(),
  summary jsonb not null
);
alter table private.reconcile_runs enable row level security;
revoke all on table private.reconcile_runs from public, anon, authenticated, service_role;

comment on table private.reconcile_runs is 'What each reconcile_profiles() run did.';

create index reconcile_runs_started_at_idx on private.reconcile_runs (started_at);

-- ============================================================================
-- Functions
-- ============================================================================
-- One keyset-paginated batch over auth.users by id: scan p_batch_size users after p_after,
-- insert the missing profiles with one set-based statement, audit each created profile, and
-- resolve the repair-queue entries of every scanned user who now has a profile. Returns
-- {"scanned", "missing", "created", "failed", "last_user_id", "done", "dry_run"}; pass
-- last_user_id back as p_after until done is true. A dry run writes nothing.
-- A username that is taken (by an existing profile, or by a user earlier in the batch) is left
-- out and named in details.dropped. If the set-based insert fails (a username taken by a
-- concurrent writer, a row some constraint rejects), the batch falls back to the per-user core,
-- which records each failure in the audit and the repair queue instead of failing the batch.
-- Costs about the time of writing the profiles (tests/bench/backfill.ts, BENCHMARKS.md
-- "Backfill"): the per-user lookups are LATERAL subqueries with LIMIT 1, always an index probe
-- per user and never a scan of the whole profiles table, so a batch costs the same at the first
-- user and the millionth; the candidates are materialized, so private.profile_fields runs once
-- per user; and the keyset bound is an index range whatever the plan.
create or replace function public.backfill_missing_profiles(
  p_batch_size integer default 500,
  p_after uuid default null,
  p_dry_run boolean default false
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  -- Keyset lower bound that is an index range whatever the plan: ids >= v_from except p_after.
  v_from uuid := coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid);
  v_ids uuid[];
  v_missing_ids uuid[];
  v_last_user_id uuid;
  v_scanned integer;
  v_missing integer;
  v_created integer := 0;
  v_failed integer := 0;
  v_user_id uuid;
  v_result jsonb;
  v_sqlstate text;
  v_message text;
  v_row_started_at timestamptz;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 10000 then
    raise exception 'p_batch_size must be between 1 and 10000 (got %)', coalesce(p_batch_size::text, 'null')
      using errcode = '22023';
  end if;
  if p_dry_run is null then
    raise exception 'p_dry_run must be true or false' using errcode = '22023';
  end if;

  select coalesce(array_agg(b.id order by b.id), '{}'),
         coalesce(array_agg(b.id order by b.id) filter (where b.has_profile is null), '{}')
    into v_ids, v_missing_ids
  from (
    select u.id, p.has_profile
    from auth.users u
    left join lateral (
      select true as has_profile from public.user_profiles p where p.user_id = u.id limit 1
    ) p on true
    where u.id >= v_from and u.id is distinct from p_after
    order by u.id
    limit p_batch_size
  ) b;

  v_scanned := cardinality(v_ids);
  v_missing := cardinality(v_missing_ids);
  v_last_user_id := v_ids[v_scanned];

  if not p_dry_run and v_missing > 0 then
    begin
      with candidates as materialized (
        select u.id, u.email, f
        from auth.users u
        cross join lateral private.profile_fields(u.raw_user_meta_data) as f
        where u.id = any (v_missing_ids)
      ),
      -- Only users with a username need a rank among equal names and a look at existing ones.
      taken as (
        select n.id
        from (
          select c.id, lower(c.f ->> 'username') as name,
                 row_number() over (partition by lower(c.f ->> 'username') order by c.id) as name_rank
          from candidates c
          where c.f ->> 'username' is not null
        ) n
        left join lateral (
          select true as exists_already from public.user_profiles p where lower(p.username) = n.name limit 1
        ) e on true
        where n.name_rank > 1 or e.exists_already
      ),
      prepared as (
        select c.id, c.email, c.f,
               case when t.id is null then c.f ->> 'username' end as username,
               c.f -> 'dropped'
                 || case when t.id is null then '{}'::jsonb else '{"username": "taken"}'::jsonb end as dropped
        from candidates c
        left join taken t on t.id = c.id
      ),
      inserted as (
        insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
        select p.id, p.email, p.f ->> 'full_name', p.username, p.f ->> 'avatar_url', p.f -> 'metadata', 'backfill'
        from prepared p
        order by p.id
        on conflict (user_id) do nothing
        returning user_id
      ),
      audited as (
        insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, details)
        select i.user_id, 'ensure_profile', 'backfill', 'created',
               round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3),
               case when p.dropped = '{}'::jsonb then '{}'::jsonb else jsonb_build_object('dropped', p.dropped) end
        from inserted i join prepared p on p.id = i.user_id
        returning 1
      )
      select count(*) into v_created from audited;
    exception when others then
      v_created := 0;
      foreach v_user_id in array v_missing_ids loop
        v_row_started_at := clock_timestamp();
        begin
          v_result := private.ensure_profile(v_user_id, 'backfill');
          if v_result ->> 'outcome' = 'created' then
            v_created := v_created + 1;
          end if;
        exception
          when sqlstate 'UP404' then
            null; -- deleted since the scan: nothing to repair
          when others then
            get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
            perform private.record_profile_failure(v_user_id, 'backfill', v_sqlstate, v_message, v_row_started_at);
            v_failed := v_failed + 1;
        end;
      end loop;
    end;
  end if;

  -- Also when nobody in the batch was missing: a queued user may have been repaired elsewhere.
  if not p_dry_run then
    update private.repair_queue q
       set resolved_at = now(), resolution = 'backfill'
     where q.user_id = any (v_ids)
       and q.resolved_at is null
       and exists (select 1 from public.user_profiles p where p.user_id = q.user_id);
  end if;

  return jsonb_build_object(
    'scanned', v_scanned,
    'missing', v_missing,
    'created', v_created,
    'failed', v_failed,
    'last_user_id', v_last_user_id,
    'done', v_scanned < p_batch_size,
    'dry_run', p_dry_run
  );
end;
$$;
revoke execute on function public.backfill_missing_profiles(integer, uuid, boolean)
  from public, anon, authenticated;
grant execute on function public.backfill_missing_profiles(integer, uuid, boolean) to service_role;

-- One reconcile run. Returns {"ran": true, "census", "queue": {"due", "repaired", "failed",
-- "user_deleted", "probed", "recovered", "made_due"}, "sweep": {"missing", "created", "failed"},
-- "more", "missing_profiles", "queued", "duration_ms"} or {"ran": false, "reason"} while another
-- run holds the lock. In order:
--   * a census step (p_scan), so the sweep sees what it found;
--   * the probe: entries back off exponentially (up to an hour), so once the cause of a failure
--     is gone (a constraint fixed, a lock released) its entries would wait out their backoff.
--     Each run tries one waiting entry early for each SQLSTATE that several entries share, and
--     when that succeeds makes the others due at once, so an outage is repaired on the next run
--     after it ends (a user failing alone keeps its backoff);
--   * the due entries of the repair queue, oldest due first; a repaired one makes the waiting
--     entries that failed with its SQLSTATE due too;
--   * the sweep: members of private.missing_profiles that no open queue entry holds.
-- Each user is repaired in its own subtransaction through the same core as every layer, so a
-- user that still fails is recorded (audit + queue, with its next attempt pushed back) and the
-- run goes on. `more` says a full batch was left: call again to repair everything due.
create or replace function public.reconcile_profiles(
  p_batch_size integer default 500,
  p_scan boolean default true
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_entry record;
  v_user_id uuid;
  v_row_started_at timestamptz;
  v_sqlstate text;
  v_message text;
  v_due integer := 0;
  v_repaired integer := 0;
  v_queue_failed integer := 0;
  v_deleted integer := 0;
  v_missing integer := 0;
  v_created integer := 0;
  v_sweep_failed integer := 0;
  v_census jsonb;
  v_probe record;
  v_probed integer := 0;
  v_recovered integer := 0;
  v_healed text[] := '{}';
  v_pulled integer := 0;
  v_summary jsonb;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 10000 then
    raise exception 'p_batch_size must be between 1 and 10000' using errcode = '22023';
  end if;
  if p_scan is null then
    raise exception 'p_scan must be true or false' using errcode = '22023';
  end if;
  -- Transaction-scoped: released at commit or rollback, even if the caller dies.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('public.reconcile_profiles')::bigint) then
    return '{"ran": false, "reason": "another reconcile is running"}'::jsonb;
  end if;

  if p_scan then
    v_census := public.profile_census_step();
  end if;

  -- 0. The probe: per shared failure cause (at most five), the waiting entry due soonest.
  for v_probe in
    select w.user_id, w.attempts, w.sqlstate
    from (
      select q.user_id, q.attempts, q.sqlstate,
             row_number() over (partition by q.sqlstate order by q.next_attempt_at, q.user_id) as n,
             count(*) over (partition by q.sqlstate) as waiting
      from private.repair_queue q
      where q.resolved_at is null and q.next_attempt_at > now()
    ) w
    where w.n = 1 and w.waiting >= 2
    order by w.waiting desc
    limit 5
  loop
    continue when not exists (select 1 from auth.users u where u.id = v_probe.user_id);
    v_probed := v_probed + 1;
    v_row_started_at := clock_timestamp();
    begin
      perform private.ensure_profile(v_probe.user_id, 'reconcile', null, v_probe.attempts + 1);
      v_repaired := v_repaired + 1;
      update private.repair_queue q set next_attempt_at = now()
      where q.resolved_at is null and q.next_attempt_at > now() and q.sqlstate is not distinct from v_probe.sqlstate;
      v_recovered := v_recovered + 1;
    exception when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(v_probe.user_id, 'reconcile', v_sqlstate, v_message,
                                             v_row_started_at, v_probe.attempts + 1);
      v_queue_failed := v_queue_failed + 1;
    end;
  end loop;

  -- 1. The repair queue: entries whose backoff has passed, oldest due first.
  for v_entry in
    select q.user_id, q.attempts, q.sqlstate
    from private.repair_queue q
    where q.resolved_at is null and q.next_attempt_at <= now()
    order by q.next_attempt_at
    limit p_batch_size
  loop
    v_due := v_due + 1;
    if not exists (select 1 from auth.users u where u.id = v_entry.user_id) then
      update private.repair_queue q set resolved_at = now(), resolution = 'user_deleted'
      where q.user_id = v_entry.user_id;
      v_deleted := v_deleted + 1;
      continue;
    end if;
    v_row_started_at := clock_timestamp();
    begin
      perform private.ensure_profile(v_entry.user_id, 'reconcile', null, v_entry.attempts + 1);
      v_repaired := v_repaired + 1;
      if v_entry.sqlstate is not null and not v_entry.sqlstate = any(v_healed) then
        v_healed := v_healed || v_entry.sqlstate;
      end if;
    exception when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(v_entry.user_id, 'reconcile', v_sqlstate, v_message,
                                             v_row_started_at, v_entry.attempts + 1);
      v_queue_failed := v_queue_failed + 1;
    end;
  end loop;

  if cardinality(v_healed) > 0 then
    update private.repair_queue q set next_attempt_at = now()
    where q.resolved_at is null and q.next_attempt_at > now() and q.sqlstate = any(v_healed);
    get diagnostics v_pulled = row_count;
  end if;

  -- 2. The sweep: users known to be without a profile that no open queue entry holds (those wait
  -- for their backoff above). A failure here opens a queue entry, which then holds the user.
  for v_user_id in
    select m.user_id
    from private.missing_profiles m
    where not exists (select 1 from public.user_profiles p where p.user_id = m.user_id)
      and not exists (select 1 from private.repair_queue q where q.user_id = m.user_id and q.resolved_at is null)
      and exists (select 1 from auth.users u where u.id = m.user_id)
    order by m.found_at, m.user_id
    limit p_batch_size
  loop
    v_missing := v_missing + 1;
    v_row_started_at := clock_timestamp();
    begin
      perform private.ensure_profile(v_user_id, 'reconcile');
      v_created := v_created + 1;
    exception when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(v_user_id, 'reconcile', v_sqlstate, v_message, v_row_started_at);
      v_sweep_failed := v_sweep_failed + 1;
    end;
  end loop;

  v_summary := jsonb_build_object(
    'ran', true,
    'census', v_census,
    'queue', jsonb_build_object('due', v_due, 'repaired', v_repaired, 'failed', v_queue_failed, 'user_deleted', v_deleted,
                                'probed', v_probed, 'recovered', v_recovered, 'made_due', v_pulled),
    'sweep', jsonb_build_object('missing', v_missing, 'created', v_created, 'failed', v_sweep_failed),
    'more', v_due = p_batch_size or v_missing = p_batch_size or v_pulled > 0,
    'missing_profiles', private.count_missing_profiles(),
    'queued', (private.repair_queue_summary() ->> 'open')::bigint,
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3)
  );
  insert into private.reconcile_runs (started_at, summary) values (v_started_at, v_summary);
  delete from private.reconcile_runs r
  where r.ctid in (select o.ctid from private.reconcile_runs o where o.started_at < now() - interval '30 days' limit 100);
  return v_summary;
end;
$$;
revoke execute on function public.reconcile_profiles(integer, boolean) from public, anon, authenticated;
grant execute on function public.reconcile_profiles(integer, boolean) to service_role;

-- How much work a backfill faces, for progress bars: auth users and how many lack a profile.
-- One anti-join over auth.users (a backfill reads all of it anyway); meant for the start of a run.
create or replace function public.profile_backfill_estimate()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'users', (select count(*) from auth.users),
    'missing', (select count(*) from auth.users u
                where not exists (select 1 from public.user_profiles p where p.user_id = u.id))
  )
$$;
revoke execute on function public.profile_backfill_estimate() from public, anon, authenticated;
grant execute on function public.profile_backfill_estimate() to service_role;
