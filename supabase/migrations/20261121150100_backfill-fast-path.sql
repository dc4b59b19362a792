-- Layer 3, faster: the same batches, the same result and the same audit rows, in about the time
-- of writing the profiles.
--
-- What it cost before (tests/bench/backfill.ts, BENCHMARKS.md "Backfill"):
--   * both `exists` probes (has the user a profile? is the username taken?) were planned as hashed
--     subplans, i.e. a sequential scan of all of user_profiles in every batch: the cost of a batch
--     grew with the profiles made so far, so a large backfill was quadratic;
--   * the CTE chain inlined candidates into the window query, so private.profile_fields ran twice
--     per user (once for the sort key, once for the row);
--   * the keyset condition `p_after is null or u.id > p_after` only becomes an index range when
--     the plan is made for the value; a generic plan scans the index from the start.
-- Every user still gets one audit row (profile_system_stats and profile_system_health count them).

-- ============================================================================
-- Functions
-- ============================================================================
-- One keyset-paginated batch over auth.users by id, as in 20261121100500_backfill-missing-profiles.sql:
-- scan p_batch_size users after p_after, insert the missing profiles with one set-based statement,
-- audit each created profile, and resolve the repair-queue entries of every scanned user who now
-- has a profile. Returns {"scanned", "missing", "created", "failed", "last_user_id", "done",
-- "dry_run"}; pass last_user_id back as p_after until done is true. A dry run writes nothing.
-- A username that is taken (by an existing profile, or by a user earlier in the batch) is left
-- out and named in details.dropped. If the set-based insert fails (a username taken by a
-- concurrent writer, a row some constraint rejects), the batch falls back to the per-user core,
-- which records each failure in the audit and the repair queue instead of failing the batch.
-- The per-user lookups are LATERAL subqueries with LIMIT 1: always an index probe per user, never
-- a scan of the whole profiles table, so a batch costs the same at the first user and the millionth.
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
revoke execute on function public.backfill_missing_profiles(integer, uuid, boolean) from public, anon, authenticated;
grant execute on function public.backfill_missing_profiles(integer, uuid, boolean) to service_role;
