-- Layer 3: find auth users without a profile and create them, one short batch at a time.

-- ============================================================================
-- Functions
-- ============================================================================
-- One keyset-paginated batch over auth.users by id: scan p_batch_size users after p_after,
-- insert the missing profiles with one set-based statement, audit each created profile, and
-- resolve the repair-queue entries of every scanned user who now has a profile. Returns
-- {"scanned", "missing", "created", "failed", "last_user_id", "done", "dry_run"}; pass
-- last_user_id back as p_after until done is true. A dry run writes nothing.
-- If the set-based insert fails (a username taken by a concurrent writer, a row some constraint
-- rejects), the batch falls back to the per-user core, which records each failure in the audit
-- and the repair queue instead of failing the whole batch.
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
         coalesce(array_agg(b.id order by b.id) filter (where not b.has_profile), '{}')
    into v_ids, v_missing_ids
  from (
    select u.id,
           exists (select 1 from public.user_profiles p where p.user_id = u.id) as has_profile
    from auth.users u
    where p_after is null or u.id > p_after
    order by u.id
    limit p_batch_size
  ) b;

  v_scanned := cardinality(v_ids);
  v_missing := cardinality(v_missing_ids);
  v_last_user_id := v_ids[v_scanned];

  if not p_dry_run and v_missing > 0 then
    begin
      with candidates as (
        select u.id, u.email, private.profile_fields(u.raw_user_meta_data) as f
        from auth.users u
        where u.id = any (v_missing_ids)
      ),
      ranked as (
        select c.id, c.email, c.f,
               row_number() over (partition by lower(c.f ->> 'username') order by c.id) as username_rank,
               exists (select 1 from public.user_profiles p
                       where lower(p.username) = lower(c.f ->> 'username')) as username_taken
        from candidates c
      ),
      prepared as (
        select r.id, r.email, r.f,
               case when r.username_rank = 1 and not r.username_taken then r.f ->> 'username' end as username,
               r.f -> 'dropped'
                 || case when r.f ->> 'username' is not null and (r.username_rank > 1 or r.username_taken)
                         then '{"username": "taken"}'::jsonb else '{}'::jsonb end as dropped
        from ranked r
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
