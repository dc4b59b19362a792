-- ensure_user_profile: the single idempotent entry point every layer uses, and the core it
-- shares with the auth.users trigger, the backfill and the reconciler.

-- ============================================================================
-- Functions
-- ============================================================================
-- Maps raw_user_meta_data (plus explicit overrides) to profile columns. Providers disagree on
-- names (email signup sends full_name; OAuth sends name, user_name, preferred_username,
-- picture...), and users control user_metadata, so anything that is not a string is ignored.
-- Never raises: a value that would violate the table's checks is dropped and named in
-- "dropped", so bad metadata can never cost a user their profile; metadata with reserved keys is
-- kept without them, and "dropped" says so (checked after the size limit, so a value that is
-- dropped anyway is never walked). The rules are the validators the checks use.
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
  -- Each field is the first of its keys holding a JSON string that is not blank once trimmed.
  v_raw jsonb := case when jsonb_typeof(p_raw_user_meta_data) = 'object' then p_raw_user_meta_data end;
  v_full_name text := coalesce(p_full_name,
    nullif(btrim(case when jsonb_typeof(v_raw -> 'full_name') = 'string' then v_raw ->> 'full_name' end), ''),
    nullif(btrim(case when jsonb_typeof(v_raw -> 'name') = 'string' then v_raw ->> 'name' end), ''));
  v_username text := coalesce(p_username,
    nullif(btrim(case when jsonb_typeof(v_raw -> 'username') = 'string' then v_raw ->> 'username' end), ''),
    nullif(btrim(case when jsonb_typeof(v_raw -> 'user_name') = 'string' then v_raw ->> 'user_name' end), ''),
    nullif(btrim(case when jsonb_typeof(v_raw -> 'preferred_username') = 'string'
                      then v_raw ->> 'preferred_username' end), ''));
  v_avatar_url text := coalesce(p_avatar_url,
    nullif(btrim(case when jsonb_typeof(v_raw -> 'avatar_url') = 'string' then v_raw ->> 'avatar_url' end), ''),
    nullif(btrim(case when jsonb_typeof(v_raw -> 'picture') = 'string' then v_raw ->> 'picture' end), ''));
  v_metadata jsonb := coalesce(p_metadata, v_raw -> 'metadata', '{}'::jsonb);
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
  -- Most signups carry no metadata: '{}' is valid and holds no reserved key.
  if v_metadata is distinct from '{}'::jsonb then
    if not coalesce(private.is_valid_profile_metadata(v_metadata), false) then
      v_dropped := v_dropped || '{"metadata": "not_an_object_or_too_large"}';
      v_metadata := '{}'::jsonb;
    elsif private.jsonb_has_reserved_key(v_metadata) then
      v_dropped := v_dropped || '{"metadata": "reserved_keys_removed"}';
      v_metadata := private.jsonb_strip_reserved_keys(v_metadata);
    end if;
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

-- Inserts the profile of p_user_id from its email and mapped fields (private.profile_fields)
-- unless the user has one already. No exception block, so no subtransaction: ON CONFLICT DO
-- NOTHING without a target covers the user_id key and the case-insensitive username index alike,
-- and a refused row is then told apart by looking: the user's own profile means it existed; else
-- the username is taken (also when a concurrent signup took it a moment ago). A username another
-- profile holds is first offered to private.release_lapsed_username: when that claim has lapsed,
-- the row goes in with the name; otherwise it goes in without it, the username named in
-- o_dropped. This runs only after the first insert was refused, so a signup whose username is
-- free (or who has none) pays nothing for it. p_created_via names the releasing layer in the
-- audit row, as it names the creating one in the profile (a reconcile repair says 'backfill').
-- Any other failure raises for the caller to record. Returns the new row and the fields left
-- out; both are null when the profile already existed.
create or replace function private.create_profile(
  p_user_id uuid,
  p_created_via text,
  p_email text,
  p_fields jsonb,
  out o_profile public.user_profiles,
  out o_dropped jsonb
)
language plpgsql
security invoker
set search_path = ''
as $$
begin
  o_dropped := coalesce(p_fields -> 'dropped', '{}'::jsonb);
  insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
  values (p_user_id, p_email, p_fields ->> 'full_name', p_fields ->> 'username', p_fields ->> 'avatar_url',
          p_fields -> 'metadata', p_created_via)
  on conflict do nothing
  returning * into o_profile;
  if found then
    return;
  end if;

  if not exists (select 1 from public.user_profiles p where p.user_id = p_user_id) then
    if p_fields ->> 'username' is not null then
      if private.release_lapsed_username(p_fields ->> 'username', p_created_via, p_user_id) then
        -- Refused again only if a concurrent caller took the name or made this profile first.
        insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
        values (p_user_id, p_email, p_fields ->> 'full_name', p_fields ->> 'username', p_fields ->> 'avatar_url',
                p_fields -> 'metadata', p_created_via)
        on conflict do nothing
        returning * into o_profile;
        if found then
          return;
        end if;
      end if;
      o_dropped := o_dropped || '{"username": "taken"}';
    end if;
    -- Only user_id may still conflict (a concurrent creator of this profile); a row some other
    -- unique index refuses raises 23505 here instead of passing for an existing profile.
    insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
    values (p_user_id, p_email, p_fields ->> 'full_name', null, p_fields ->> 'avatar_url',
            p_fields -> 'metadata', p_created_via)
    on conflict (user_id) do nothing
    returning * into o_profile;
    if found then
      return;
    end if;
  end if;
  o_dropped := null;
end;
$$;
revoke execute on function private.create_profile(uuid, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- The core, shared by the public entry point, the auth.users trigger's slow path, the backfill's
-- fallback and the reconciler. Returns {"outcome": "created" | "existed", "profile": {...}} and
-- writes its audit row in the same transaction; raises on any failure (callers decide how to
-- record it). Race-safe: concurrent callers for one user serialise on the primary key (ON
-- CONFLICT), exactly one of them creates the row and the others read it back.
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
  v_created record;
  v_dropped jsonb;
  v_outcome text := 'existed';
  -- The reconciler is an audit source of its own, but the profile records the repair layer.
  v_created_via text := case when p_source = 'reconcile' then 'backfill' else p_source end;
begin
  select * into v_profile from public.user_profiles p where p.user_id = p_user_id;

  if not found then
    select u.email, u.raw_user_meta_data into v_email, v_raw_user_meta_data
    from auth.users u where u.id = p_user_id;
    if not found then
      raise exception 'auth user % does not exist', p_user_id
        using errcode = 'UP404',
              hint = 'Create the user through Supabase Auth first; profiles are only made for existing auth users.';
    end if;

    v_created := private.create_profile(p_user_id, v_created_via, v_email,
      private.profile_fields(v_raw_user_meta_data, p_full_name, p_username, p_avatar_url, p_metadata));
    if v_created.o_dropped is not null then
      v_outcome := 'created';
      v_profile := v_created.o_profile;
      v_dropped := v_created.o_dropped;
    else
      -- Another transaction created it first and has committed: read its row.
      select * into v_profile from public.user_profiles p where p.user_id = p_user_id;
      if not found then
        raise exception 'auth user % was deleted while its profile was being created', p_user_id
          using errcode = 'UP404';
      end if;
    end if;
  end if;

  perform private.record_profile_success(p_user_id, p_source, v_outcome, v_started_at, v_dropped,
                                         p_attempt, p_request_id);
  return jsonb_build_object('outcome', v_outcome, 'profile', to_jsonb(v_profile));
end;
$$;
revoke execute on function private.ensure_profile(uuid, text, text, integer, text, text, text, jsonb)
  from public, anon, authenticated, service_role;

-- The public, service-role-only entry point (PostgREST: POST /rest/v1/rpc/ensure_user_profile).
--   * invalid arguments raise 22023 naming the parameter (PostgREST answers 400), including a
--     p_metadata with a reserved key;
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
  if p_metadata is not null and private.jsonb_has_reserved_key(p_metadata) then
    raise exception 'p_metadata must not contain the keys %, at any depth',
      array_to_string(private.reserved_metadata_keys(), ', ') using errcode = '22023';
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
revoke execute on function public.ensure_profile_for_caller(uuid, integer, integer, text)
  from public, anon, authenticated;
grant execute on function public.ensure_profile_for_caller(uuid, integer, integer, text) to service_role;
