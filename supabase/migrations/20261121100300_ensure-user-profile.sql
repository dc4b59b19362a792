-- ensure_user_profile: the single idempotent entry point every layer uses.

-- ============================================================================
-- Functions
-- ============================================================================
-- The first non-blank string among p_keys in a metadata object. Providers disagree on names
-- (email signup sends full_name; OAuth sends name, user_name, preferred_username, picture...),
-- and users control user_metadata, so anything that is not a string is ignored.
create or replace function private.metadata_text(p_metadata jsonb, p_keys text[])
returns text
language sql
immutable
security invoker
set search_path = ''
as $$
  select btrim(p_metadata ->> k.key)
  from unnest(p_keys) with ordinality as k(key, ord)
  where jsonb_typeof(p_metadata) = 'object'
    and jsonb_typeof(p_metadata -> k.key) = 'string'
    and btrim(p_metadata ->> k.key) <> ''
  order by k.ord
  limit 1
$$;
revoke execute on function private.metadata_text(jsonb, text[]) from public, anon, authenticated, service_role;

-- Maps raw_user_meta_data (plus explicit overrides) to profile columns. Never raises: a value
-- that would violate the table's checks is dropped and named in "dropped", so bad metadata can
-- never cost a user their profile.
create or replace function private.profile_fields(
  p_raw_user_meta_data jsonb,
  p_full_name text default null,
  p_username text default null,
  p_avatar_url text default null,
  p_metadata jsonb default null
)
returns jsonb
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  v_full_name text := coalesce(p_full_name,
    private.metadata_text(p_raw_user_meta_data, array['full_name', 'name']));
  v_username text := coalesce(p_username,
    private.metadata_text(p_raw_user_meta_data, array['username', 'user_name', 'preferred_username']));
  v_avatar_url text := coalesce(p_avatar_url,
    private.metadata_text(p_raw_user_meta_data, array['avatar_url', 'picture']));
  v_metadata jsonb := coalesce(p_metadata,
    case when jsonb_typeof(p_raw_user_meta_data) = 'object' then p_raw_user_meta_data -> 'metadata' end,
    '{}'::jsonb);
  v_dropped jsonb := '{}'::jsonb;
begin
  if char_length(v_full_name) > 200 then
    v_dropped := v_dropped || '{"full_name": "too_long"}';
    v_full_name := null;
  end if;
  if v_username is not null and not private.is_valid_username(v_username) then
    v_dropped := v_dropped || '{"username": "invalid_format"}';
    v_username := null;
  end if;
  if v_avatar_url is not null and not private.is_valid_avatar_url(v_avatar_url) then
    v_dropped := v_dropped || '{"avatar_url": "invalid_url"}';
    v_avatar_url := null;
  end if;
  if jsonb_typeof(v_metadata) <> 'object' or octet_length(v_metadata::text) > 16384 then
    v_dropped := v_dropped || '{"metadata": "not_an_object_or_too_large"}';
    v_metadata := '{}'::jsonb;
  end if;
  return jsonb_build_object(
    'full_name', v_full_name,
    'username', v_username,
    'avatar_url', v_avatar_url,
    'metadata', v_metadata,
    'dropped', v_dropped
  );
end;
$$;
revoke execute on function private.profile_fields(jsonb, text, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- The core, shared by the public entry point, the auth.users trigger and the backfill. Returns
-- {"outcome": "created" | "existed", "profile": {...}} and writes its audit row in the same
-- transaction; raises on any failure (callers decide how to record it).
-- Race-safe: concurrent callers for one user serialise on the primary key (ON CONFLICT), exactly
-- one of them creates the row and the others read it back.
create or replace function private.ensure_profile(
  p_user_id uuid,
  p_source text,
  p_request_id text default null,
  p_attempt integer default 1,
  p_full_name text default null,
  p_username text default null,
  p_avatar_url text default null,
  p_metadata jsonb default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_profile public.user_profiles;
  v_email text;
  v_raw_user_meta_data jsonb;
  v_fields jsonb;
  v_dropped jsonb := '{}'::jsonb;
  v_username text;
  v_outcome text;
  v_constraint text;
  -- The reconciler is an audit source of its own, but the profile records the repair layer.
  v_created_via text := case when p_source = 'reconcile' then 'backfill' else p_source end;
begin
  select * into v_profile from public.user_profiles p where p.user_id = p_user_id;

  if found then
    v_outcome := 'existed';
  else
    select u.email, u.raw_user_meta_data into v_email, v_raw_user_meta_data
    from auth.users u where u.id = p_user_id;
    if not found then
      raise exception 'auth user % does not exist', p_user_id
        using errcode = 'UP404',
              hint = 'Create the user through Supabase Auth first; profiles are only made for existing auth users.';
    end if;

    v_fields := private.profile_fields(v_raw_user_meta_data, p_full_name, p_username, p_avatar_url, p_metadata);
    v_dropped := v_fields -> 'dropped';
    v_username := v_fields ->> 'username';
    -- Cheap pre-check for the common case; the unique index still decides under races.
    if v_username is not null and exists (
      select 1 from public.user_profiles p where lower(p.username) = lower(v_username)
    ) then
      v_dropped := v_dropped || '{"username": "taken"}';
      v_username := null;
    end if;

    begin
      insert into public.user_profiles as p (user_id, email, full_name, username, avatar_url, metadata, created_via)
      values (p_user_id, v_email, v_fields ->> 'full_name', v_username, v_fields ->> 'avatar_url',
              v_fields -> 'metadata', v_created_via)
      on conflict (user_id) do nothing
      returning * into v_profile;
    exception when unique_violation then
      get stacked diagnostics v_constraint = constraint_name;
      if v_constraint is distinct from 'user_profiles_username_key' then
        raise;
      end if;
      v_dropped := v_dropped || '{"username": "taken"}';
      insert into public.user_profiles as p (user_id, email, full_name, username, avatar_url, metadata, created_via)
      values (p_user_id, v_email, v_fields ->> 'full_name', null, v_fields ->> 'avatar_url',
              v_fields -> 'metadata', v_created_via)
      on conflict (user_id) do nothing
      returning * into v_profile;
    end;

    if v_profile.user_id is not null then
      v_outcome := 'created';
    else
      -- Another transaction created it first and has committed: read its row.
      select * into v_profile from public.user_profiles p where p.user_id = p_user_id;
      if not found then
        raise exception 'auth user % was deleted while its profile was being created', p_user_id
          using errcode = 'UP404';
      end if;
      v_outcome := 'existed';
      v_dropped := '{}'::jsonb;
    end if;
  end if;

  insert into private.audit_logs (user_id, operation, source, outcome, attempt, duration_ms, request_id, details)
  values (p_user_id, 'ensure_profile', p_source, v_outcome, p_attempt,
          round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3), p_request_id,
          case when v_dropped = '{}'::jsonb then '{}'::jsonb else jsonb_build_object('dropped', v_dropped) end);

  update private.repair_queue q
     set resolved_at = now(), resolution = p_source
   where q.user_id = p_user_id and q.resolved_at is null;

  return jsonb_build_object('outcome', v_outcome, 'profile', to_jsonb(v_profile));
end;
$$;
revoke execute on function private.ensure_profile(uuid, text, text, integer, text, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- The public, service-role-only entry point (PostgREST: POST /rest/v1/rpc/ensure_user_profile).
--   * invalid arguments raise 22023 naming the parameter (PostgREST answers 400);
--   * an auth user that does not exist raises UP404;
--   * any other failure is recorded (audit row + repair queue) in this same call and answered as
--     {"outcome": "failed", "error": {"sqlstate", "message"}, "queued": true}, because a raise
--     would roll the record back with it. Callers retry on the SQLSTATE.
create or replace function public.ensure_user_profile(
  p_user_id uuid,
  p_source text default 'ensure',
  p_request_id text default null,
  p_attempt integer default 1,
  p_full_name text default null,
  p_username text default null,
  p_avatar_url text default null,
  p_metadata jsonb default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_sqlstate text;
  v_message text;
begin
  if p_user_id is null then
    raise exception 'p_user_id is required' using errcode = '22023';
  end if;
  if p_source is null or p_source not in ('register', 'ensure', 'webhook', 'backfill', 'reconcile') then
    raise exception 'p_source must be one of register, ensure, webhook, backfill, reconcile (got %)',
      coalesce(quote_literal(p_source), 'null') using errcode = '22023';
  end if;
  if p_attempt is null or p_attempt < 1 then
    raise exception 'p_attempt must be a positive integer' using errcode = '22023';
  end if;
  if char_length(p_request_id) > 200 then
    raise exception 'p_request_id must be at most 200 characters' using errcode = '22023';
  end if;
  if char_length(p_full_name) > 200 then
    raise exception 'p_full_name must be at most 200 characters' using errcode = '22023';
  end if;
  if p_username is not null and not private.is_valid_username(p_username) then
    raise exception 'p_username must be 3-39 letters, digits, "_", "." or "-", starting and ending with a letter, digit or "_"'
      using errcode = '22023';
  end if;
  if p_avatar_url is not null and not private.is_valid_avatar_url(p_avatar_url) then
    raise exception 'p_avatar_url must be an http(s) URL of at most 2048 characters' using errcode = '22023';
  end if;
  if p_metadata is not null and (jsonb_typeof(p_metadata) <> 'object' or octet_length(p_metadata::text) > 16384) then
    raise exception 'p_metadata must be a JSON object of at most 16384 bytes' using errcode = '22023';
  end if;

  begin
    return private.ensure_profile(p_user_id, p_source, p_request_id, p_attempt,
                                  p_full_name, p_username, p_avatar_url, p_metadata);
  exception
    when sqlstate 'UP404' then
      raise;
    when others then
      get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
      perform private.record_profile_failure(p_user_id, p_source, v_sqlstate, v_message, v_started_at,
                                             p_attempt, p_request_id);
      return jsonb_build_object(
        'outcome', 'failed',
        'error', jsonb_build_object('sqlstate', v_sqlstate, 'message', v_message),
        'queued', true
      );
  end;
end;
$$;
revoke execute on function public.ensure_user_profile(uuid, text, text, integer, text, text, text, jsonb)
  from public, anon, authenticated;
grant execute on function public.ensure_user_profile(uuid, text, text, integer, text, text, text, jsonb)
  to service_role;
