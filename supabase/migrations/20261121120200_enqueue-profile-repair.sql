-- The last fallback of the functions: when neither ensure_user_profile nor a direct insert made
-- the profile, record the user in the repair queue so the reconciler finishes the job.

-- ============================================================================
-- Functions
-- ============================================================================
create or replace function public.enqueue_profile_repair(
  p_user_id uuid,
  p_source text,
  p_reason text,
  p_sqlstate text default null,
  p_request_id text default null,
  p_attempt integer default 1
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_user_id is null then
    raise exception 'p_user_id is required' using errcode = '22023';
  end if;
  if p_source is null or p_source not in ('register', 'ensure', 'webhook', 'backfill', 'reconcile') then
    raise exception 'p_source must be one of register, ensure, webhook, backfill, reconcile' using errcode = '22023';
  end if;
  if p_reason is null or char_length(p_reason) not between 1 and 2000 then
    raise exception 'p_reason must be 1-2000 characters' using errcode = '22023';
  end if;
  if p_sqlstate is not null and p_sqlstate !~ '^[0-9A-Z]{5}$|^PGRST[0-9]{3}$' then
    raise exception 'p_sqlstate must be a SQLSTATE or a PGRST code' using errcode = '22023';
  end if;
  if p_attempt is null or p_attempt < 1 then
    raise exception 'p_attempt must be a positive integer' using errcode = '22023';
  end if;
  if exists (select 1 from public.user_profiles p where p.user_id = p_user_id) then
    return; -- already repaired by someone else: nothing to queue
  end if;
  perform private.record_profile_failure(p_user_id, p_source, p_sqlstate, p_reason, clock_timestamp(),
                                         p_attempt, left(p_request_id, 200));
end;
$$;
revoke execute on function public.enqueue_profile_repair(uuid, text, text, text, text, integer) from public, anon, authenticated;
grant execute on function public.enqueue_profile_repair(uuid, text, text, text, text, integer) to service_role;
