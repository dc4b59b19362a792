-- Reserved metadata keys: an object key named __proto__, constructor or prototype, at any depth
-- of profile metadata (inside objects and inside arrays), is never stored.
--
-- JavaScript gives these keys meaning: an app that merges profile metadata into an object
-- (Object.assign, spread into a defaults object, a deep-merge helper) lets a user who controls
-- the metadata reach the prototype chain of every object in that app. The register function
-- already refuses them (shared/profile-contract.ts, RESERVED_METADATA_KEYS, the same list);
-- here the database enforces the rule for every other way in:
--   * private.profile_fields, which maps raw_user_meta_data for the trigger and the backfill,
--     strips them and names it in "dropped" ({"metadata": "reserved_keys_removed"}): metadata
--     never costs a user their profile, nor a signup;
--   * public.ensure_user_profile refuses a p_metadata that contains one with 22023, as it
--     refuses every other invalid argument.
-- Rows stored before this migration keep what they have.
--
-- Supersedes private.profile_fields and public.ensure_user_profile
-- (20261121100300_ensure-user-profile.sql): same signatures and results, plus the rule above.

-- ============================================================================
-- Functions
-- ============================================================================
-- The list, in one place for the SQL side.
create or replace function private.reserved_metadata_keys()
returns text[]
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  return array['__proto__', 'constructor', 'prototype'];
end;
$$;
revoke execute on function private.reserved_metadata_keys() from public, anon, authenticated, service_role;

-- Whether p_value has a reserved key at any depth. One jsonpath query, built from the list: it
-- walks the value in C, so a deep value costs no PL/pgSQL stack, and a metadata-sized one well
-- under a millisecond. exists(@."key") rather than .keyvalue(), which copies every value it
-- lists and made a deep value cost a second.
create or replace function private.jsonb_has_reserved_key(p_value jsonb)
returns boolean
language plpgsql
immutable
strict
security invoker
set search_path = ''
as $$
begin
  return jsonb_path_exists(p_value, ('strict $.** ? (@.type() == "object" && (exists(@."'
    || array_to_string(private.reserved_metadata_keys(), '") || exists(@."') || '")))')::jsonpath);
end;
$$;
revoke execute on function private.jsonb_has_reserved_key(jsonb) from public, anon, authenticated, service_role;

-- p_value without its reserved keys (and what they held), at any depth; everything else as it
-- was. Iterative, not recursive: metadata within the 16 KiB limit can be nested thousands of
-- levels deep, deeper than PL/pgSQL recursion (or jsonb_set and #- on so long a path) may go.
-- A first pass visits the containers depth-first, numbering each after its parent, and cuts each
-- into pieces of JSON text: a key, a separator and a scalar are written out at once, a nested
-- container is a reference to its number; reserved keys and what they hold are left out. A
-- second pass assembles the texts, children before parents; the root's text is the result.
-- A container's value is kept only until it is visited: keeping every one of them (a chain of
-- 8,000 arrays holds 8,000 ever longer copies) made a deep value cost a second. Array variables
-- are written by element, which PL/pgSQL does in place.
create or replace function private.jsonb_strip_reserved_keys(p_value jsonb)
returns jsonb
language plpgsql
immutable
strict
security invoker
set search_path = ''
as $$
declare
  v_reserved text[] := private.reserved_metadata_keys();
  -- Containers still to visit, as a stack of (number, value); p_value is number 1.
  v_todo_node integer[] := array[1];
  v_todo_value jsonb[] := array[p_value];
  v_top integer := 1;
  v_count integer := 1;
  -- Per container: object or array, and its pieces v_piece[v_first[n] .. v_last[n]], each a
  -- text followed by the text of container v_piece_child[i] (0: none).
  v_is_object boolean[] := array[false];
  v_first integer[] := array[0];
  v_last integer[] := array[0];
  v_piece text[] := '{}';
  v_piece_child integer[] := '{}';
  v_pieces integer := 0;
  -- Per container, its text once assembled (dropped once its parent has it).
  v_text text[];
  v_node integer;
  v_container jsonb;
  v_object boolean;
  v_keys text[];
  v_length integer;
  v_key text;
  v_child jsonb;
  v_prefix text;
  v_parts text[];
begin
  if not private.jsonb_has_reserved_key(p_value) then
    return p_value;
  end if;

  while v_top > 0 loop
    v_node := v_todo_node[v_top];
    v_container := v_todo_value[v_top];
    v_todo_value[v_top] := null;
    v_top := v_top - 1;
    v_object := jsonb_typeof(v_container) = 'object';
    v_is_object[v_node] := v_object;
    v_first[v_node] := v_pieces + 1;
    if v_object then
      v_keys := array(select jsonb_object_keys(v_container));
      v_length := cardinality(v_keys);
    else
      v_length := jsonb_array_length(v_container);
    end if;
    v_prefix := '';
    for i in 1 .. v_length loop
      if v_object then
        v_key := v_keys[i];
        continue when v_key = any (v_reserved);
        v_child := v_container -> v_key;
        v_prefix := v_prefix || to_jsonb(v_key)::text || ':';
      else
        v_child := v_container -> (i - 1);
      end if;
      v_pieces := v_pieces + 1;
      if jsonb_typeof(v_child) in ('object', 'array') then
        v_count := v_count + 1;
        v_piece[v_pieces] := v_prefix;
        v_piece_child[v_pieces] := v_count;
        v_top := v_top + 1;
        v_todo_node[v_top] := v_count;
        v_todo_value[v_top] := v_child;
      else
        v_piece[v_pieces] := v_prefix || v_child::text;
        v_piece_child[v_pieces] := 0;
      end if;
      v_prefix := ',';
    end loop;
    v_last[v_node] := v_pieces;
  end loop;

  v_text := array_fill(null::text, array[v_count]);
  for v_node in reverse v_count .. 1 loop
    v_parts := '{}';
    for i in v_first[v_node] .. v_last[v_node] loop
      if v_piece_child[i] = 0 then
        v_parts[i - v_first[v_node] + 1] := v_piece[i];
      else
        v_parts[i - v_first[v_node] + 1] := v_piece[i] || v_text[v_piece_child[i]];
        v_text[v_piece_child[i]] := null;
      end if;
    end loop;
    v_text[v_node] := case when v_is_object[v_node] then '{' else '[' end || array_to_string(v_parts, '')
                      || case when v_is_object[v_node] then '}' else ']' end;
  end loop;
  return v_text[1]::jsonb;
end;
$$;
revoke execute on function private.jsonb_strip_reserved_keys(jsonb) from public, anon, authenticated, service_role;

-- As in 20261121100300_ensure-user-profile.sql, plus: metadata with reserved keys is kept
-- without them, and "dropped" says so. Checked after the size limit, so a value that is dropped
-- anyway is never walked.
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
  elsif v_metadata <> '{}'::jsonb and private.jsonb_has_reserved_key(v_metadata) then
    v_dropped := v_dropped || '{"metadata": "reserved_keys_removed"}';
    v_metadata := private.jsonb_strip_reserved_keys(v_metadata);
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

-- As in 20261121100300_ensure-user-profile.sql, plus: a p_metadata with a reserved key raises
-- 22023 naming p_metadata.
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
