-- The application profile: exactly one per auth user, and the rules its columns follow.

-- ============================================================================
-- Functions
-- ============================================================================
-- The validators behind the table's check constraints, also used by the functions that map
-- provider metadata and check arguments, so each rule is written once. They are PL/pgSQL, whose
-- plans are cached for the session, and each check is one call of one of them: a small
-- expression tree for PostgreSQL to re-plan on every write (BENCHMARKS.md, "Signup overhead of
-- the trigger"). The strict ones answer null for null, so a check on a null column (a signup
-- without a username) skips the call.

-- Username format, shared by the table's check constraint and by the mapping from provider
-- metadata: 3 to 39 characters (GitHub's maximum), letters, digits, '_', '.', '-', starting and
-- ending with a letter, digit or '_'. Uniqueness is case-insensitive (see the index below).
create or replace function private.is_valid_username(p_username text)
returns boolean
language plpgsql
immutable
strict
security invoker
set search_path = ''
as $$
begin
  return p_username ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{1,37}[A-Za-z0-9_]$';
end;
$$;
revoke execute on function private.is_valid_username(text) from public, anon, authenticated, service_role;

-- An avatar is an http(s) URL of sane length; anything else from a provider is dropped.
create or replace function private.is_valid_avatar_url(p_avatar_url text)
returns boolean
language plpgsql
immutable
strict
security invoker
set search_path = ''
as $$
begin
  return char_length(p_avatar_url) <= 2048 and p_avatar_url ~ '^https?://[^[:space:]]+$';
end;
$$;
revoke execute on function private.is_valid_avatar_url(text) from public, anon, authenticated, service_role;

-- Which layer created the row.
create or replace function private.is_valid_created_via(p_created_via text)
returns boolean
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  return p_created_via in ('trigger', 'register', 'ensure', 'webhook', 'backfill');
end;
$$;
revoke execute on function private.is_valid_created_via(text) from public, anon, authenticated, service_role;

-- Metadata is a JSON object of at most 16 KiB.
create or replace function private.is_valid_profile_metadata(p_metadata jsonb)
returns boolean
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  return jsonb_typeof(p_metadata) = 'object' and octet_length(p_metadata::text) <= 16384;
end;
$$;
revoke execute on function private.is_valid_profile_metadata(jsonb)
  from public, anon, authenticated, service_role;

-- Reserved metadata keys: an object key named __proto__, constructor or prototype, at any depth
-- of profile metadata (inside objects and inside arrays), is never stored. JavaScript gives these
-- keys meaning: an app that merges profile metadata into an object (Object.assign, spread into a
-- defaults object, a deep-merge helper) lets a user who controls the metadata reach the prototype
-- chain of every object in that app. The register function refuses them
-- (shared/profile-contract.ts, RESERVED_METADATA_KEYS, the same list); the database enforces the
-- rule for every other way in: private.profile_fields strips them and names it in "dropped",
-- public.ensure_user_profile refuses a p_metadata that contains one with 22023.

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
revoke execute on function private.jsonb_has_reserved_key(jsonb)
  from public, anon, authenticated, service_role;

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
revoke execute on function private.jsonb_strip_reserved_keys(jsonb)
  from public, anon, authenticated, service_role;

-- ============================================================================
-- Tables
-- ============================================================================
create table public.user_profiles (
  user_id uuid not null
    constraint user_profiles_pkey primary key
    constraint user_profiles_user_id_fkey references auth.users (id) on delete cascade,
  email text,
  full_name text
    constraint user_profiles_full_name_check check (char_length(full_name) <= 200),
  username text
    constraint user_profiles_username_check check (private.is_valid_username(username)),
  avatar_url text
    constraint user_profiles_avatar_url_check check (private.is_valid_avatar_url(avatar_url)),
  metadata jsonb not null default '{}'::jsonb,
  created_via text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.user_profiles enable row level security;

-- NOT VALID, as on a live project: 20261206100000_lean-signup-writes.sql replaced the earlier,
-- narrower checks without scanning the table under its ACCESS EXCLUSIVE lock (every existing row
-- passed them). New and updated rows are checked all the same. (A NOT VALID in CREATE TABLE
-- would be ignored, hence the separate statement.) The names are the ones the functions map to
-- the field they name.
alter table public.user_profiles
  add constraint user_profiles_created_via_check check (private.is_valid_created_via(created_via)) not valid,
  add constraint user_profiles_metadata_check check (private.is_valid_profile_metadata(metadata)) not valid;

comment on table public.user_profiles is
  'Application profile, one per auth.users row; created by the profile system, never by the browser.';
comment on column public.user_profiles.created_via is
  'Which layer created the row: trigger, register, ensure, webhook or backfill.';

create unique index user_profiles_username_key on public.user_profiles (lower(username));

-- ============================================================================
-- Triggers
-- ============================================================================
-- The other triggers on this table belong to their topics: user_profiles_audit_direct_* in
-- 03_audit.sql, user_profiles_note_deleted in 07_census.sql.
create trigger user_profiles_set_updated_at
  before update on public.user_profiles
  for each row execute function private.set_updated_at();

-- ============================================================================
-- Policies
-- ============================================================================
-- Reads and updates only; inserts and deletes belong to the service role (which bypasses RLS)
-- and to the database's own functions.
create policy "Users can read their own profile"
  on public.user_profiles for select
  to authenticated
  using ((select auth.uid()) = user_id);

create policy "Users can update their own profile"
  on public.user_profiles for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

-- ============================================================================
-- Grants
-- ============================================================================
-- Supabase's default privileges gave everything to the API roles; take it back, then grant on
-- purpose. Column-level UPDATE keeps user_id, email and created_via out of a user's reach.
revoke all on table public.user_profiles from public, anon, authenticated, service_role;
grant select on table public.user_profiles to authenticated;
grant update (full_name, username, avatar_url, metadata) on table public.user_profiles to authenticated;
grant select, insert, update, delete on table public.user_profiles to service_role;

-- The check constraints above call these validators with the rights of whoever writes the row,
-- so the roles allowed to write profiles must be able to execute them. They are pure, security
-- invoker and read nothing; without USAGE on schema private nobody can call them by name.
grant execute on function private.is_valid_username(text) to authenticated, service_role;
grant execute on function private.is_valid_avatar_url(text) to authenticated, service_role;
grant execute on function private.is_valid_created_via(text) to authenticated, service_role;
grant execute on function private.is_valid_profile_metadata(jsonb) to authenticated, service_role;
