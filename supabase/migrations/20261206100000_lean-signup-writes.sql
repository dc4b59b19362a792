-- Cheaper writes on the signup path: same rules, fewer instructions per signup.
--
-- PostgreSQL reads every CHECK constraint of a table back from its stored expression tree and
-- plans it again for each INSERT or UPDATE statement, so a check costs in proportion to the size
-- of that tree, on every write, whatever the row holds. An IN list of seven literals is a large
-- tree (each literal carries its type and bytes); a call of one function on the columns is a
-- small one. Measured with callgrind on a single-user backend (instructions per signup, an
-- auth.users insert and update with our trigger; BENCHMARKS.md has the method):
--   * audit_logs' three checks (source, outcome, attempt): about 159,000; one check calling
--     private.is_valid_audit_row: about 38,000;
--   * user_profiles_created_via_check (an IN list): about 52,000; as a function call, about 34,000;
--   * user_profiles_metadata_check (jsonb_typeof and a cast): about 55,000; as a function call,
--     about 25,000;
--   * private.profile_fields calling private.metadata_text three times (a function call with its
--     own search_path each): the same rules written inline save about 35,000.
-- In all, from about 1,255,000 to about 1,024,000 instructions per signup (the naive trigger of
-- Supabase's docs: about 564,000; no trigger: about 443,000).
-- A BRIN index instead of the B-tree on audit_logs.occurred_at was measured too and saved nothing
-- measurable (1,240,000 against 1,242,000), so the B-tree stays.
--
-- The lists now live in one function each, so a later migration that lets a new source or outcome
-- in replaces the function instead of dropping and re-adding a constraint on a large table.

-- ============================================================================
-- Functions
-- ============================================================================
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
-- Only the owner writes the audit trail (from SECURITY DEFINER functions).
revoke execute on function private.is_valid_audit_row(text, text, integer) from public, anon, authenticated, service_role;

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
-- A check runs as the role that writes the row: the user updating their own profile through RLS,
-- and the functions' direct-insert fallback as service_role.
revoke execute on function private.is_valid_created_via(text) from public, anon;
revoke execute on function private.is_valid_profile_metadata(jsonb) from public, anon;
grant execute on function private.is_valid_created_via(text) to authenticated, service_role;
grant execute on function private.is_valid_profile_metadata(jsonb) to authenticated, service_role;

-- Replaces the body of 20261204100200_reserved-metadata-keys.sql. Same rules and the same answer;
-- changed: the metadata keys are read inline instead of through private.metadata_text (dropped
-- below), and the metadata rule is private.is_valid_profile_metadata, the one the check uses.
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

drop function if exists private.metadata_text(jsonb, text[]);

-- ============================================================================
-- Constraints
-- ============================================================================
-- NOT VALID, as the lists before: every existing row passed the narrower checks these replace,
-- and validating would scan the tables under the ACCESS EXCLUSIVE lock this statement takes.
-- Each table is altered in one statement, so no moment exists without its check.
alter table private.audit_logs
  drop constraint if exists audit_logs_source_check,
  drop constraint if exists audit_logs_outcome_check,
  drop constraint if exists audit_logs_attempt_check,
  drop constraint if exists audit_logs_row_check,
  add constraint audit_logs_row_check check (private.is_valid_audit_row(source, outcome, attempt)) not valid;

-- Names kept: the functions map a violated constraint to the field it names.
alter table public.user_profiles
  drop constraint if exists user_profiles_created_via_check,
  add constraint user_profiles_created_via_check check (private.is_valid_created_via(created_via)) not valid,
  drop constraint if exists user_profiles_metadata_check,
  add constraint user_profiles_metadata_check check (private.is_valid_profile_metadata(metadata)) not valid;
