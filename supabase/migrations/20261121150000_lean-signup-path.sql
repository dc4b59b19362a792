-- A lean path for the auth.users trigger: the signup pays for one subtransaction, one profile
-- row and one audit row, and for little else.
--
-- What it cost before (tests/bench/signup.ts, BENCHMARKS.md "Signup overhead of the trigger"):
--   * the helpers were SQL functions with `set search_path = ''`, which PostgreSQL never inlines
--     and (before 18) parses and plans again in every transaction that calls them: three
--     metadata_text calls and the two validators in profile_fields, and the validators once more
--     in the check constraints of every insert;
--   * a second exception block (a subtransaction) around the insert, only to catch a taken
--     username;
--   * reading auth.users for a row the trigger already holds in NEW, a username pre-check, a
--     select of the profile that cannot exist yet, and to_jsonb of a profile the trigger drops;
--   * a fourth audit index, (user_id, occurred_at): a random-key b-tree insert per attempt that
--     nothing but hand-written troubleshooting queries read.
-- Behaviour is unchanged (the same profile, outcome and audit row), but for one detail noted at
-- the trigger: it no longer looks for an open repair-queue entry of the new user.

-- ============================================================================
-- Indexes
-- ============================================================================
-- Monitoring reads windows of occurred_at (its own index), never one user's rows; looking up one
-- user's story is an operator's query, cheap enough when bounded by time (see TROUBLESHOOTING.md).
drop index if exists private.audit_logs_user_id_idx;

-- ============================================================================
-- Functions
-- ============================================================================
-- Same contracts as in 20261121100100_user-profiles.sql and 20261121100300_ensure-user-profile.sql,
-- now in PL/pgSQL, whose plans are cached for the session, so a signup no longer re-plans them.
-- The validators are strict: null was already their answer for null, and a check constraint on a
-- null column (a signup without a username) now skips the call.
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
grant execute on function private.is_valid_username(text) to authenticated, service_role;

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
grant execute on function private.is_valid_avatar_url(text) to authenticated, service_role;

create or replace function private.metadata_text(p_metadata jsonb, p_keys text[])
returns text
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  v_key text;
  v_value text;
begin
  if jsonb_typeof(p_metadata) = 'object' then
    foreach v_key in array p_keys loop
      if jsonb_typeof(p_metadata -> v_key) = 'string' then
        v_value := btrim(p_metadata ->> v_key);
        if v_value <> '' then
          return v_value;
        end if;
      end if;
    end loop;
  end if;
  return null;
end;
$$;
revoke execute on function private.metadata_text(jsonb, text[]) from public, anon, authenticated, service_role;

-- Inserts the profile of p_user_id from its email and mapped fields (private.profile_fields)
-- unless the user has one already. No exception block, so no subtransaction: ON CONFLICT DO
-- NOTHING without a target covers the user_id key and the case-insensitive username index alike,
-- and a refused row is then told apart by looking: the user's own profile means it existed; else
-- the username is taken (also when a concurrent signup took it a moment ago), so the row goes in
-- without it, the username named in o_dropped. Any other failure raises for the caller to record.
-- Returns the new row and the fields left out; both are null when the profile already existed.
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

-- The audit row of a successful attempt (created or existed) and the resolution of the user's
-- open repair-queue entry, in the caller's transaction; the counterpart of
-- private.record_profile_failure.
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
  insert into private.audit_logs (user_id, operation, source, outcome, attempt, duration_ms, request_id, details)
  values (p_user_id, 'ensure_profile', p_source, p_outcome, p_attempt,
          round((extract(epoch from clock_timestamp() - p_started_at) * 1000)::numeric, 3), p_request_id,
          case when p_dropped is null or p_dropped = '{}'::jsonb then '{}'::jsonb
               else jsonb_build_object('dropped', p_dropped) end);

  update private.repair_queue q
     set resolved_at = now(), resolution = p_source
   where q.user_id = p_user_id and q.resolved_at is null;
end;
$$;
revoke execute on function private.record_profile_success(uuid, text, text, timestamptz, jsonb, integer, text)
  from public, anon, authenticated, service_role;

-- The core, as in 20261121100300_ensure-user-profile.sql (same signature, result and audit row),
-- built on create_profile: one subtransaction fewer for every caller that wraps it.
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

-- Layer 1, as in 20261121100400_auth-users-trigger.sql: never fails the signup; a failure is
-- recorded (audit + repair queue) and, if even that fails, only logged. The lean part: in the
-- common case two statements, the profile from NEW (no read of auth.users, no look for a profile
-- a user inserted this instant cannot have; the switch is read inside the insert) and its audit
-- row; nothing is returned; and exactly one exception block, the one protecting the signup.
-- It does not look for an open repair-queue entry either: a new auth user has none (an id reused
-- after a delete could; the reconciler's next pass resolves that one).
-- Being a subtransaction, that block takes the foreign-key lock on the new auth.users row under
-- its own xid, so Auth's UPDATE of the row then creates a MultiXact; locking the row first in
-- the top transaction avoids that, but cost more CPU than it saved when measured.
create or replace function private.on_auth_user_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_fields jsonb;
  v_dropped jsonb;
  v_sqlstate text;
  v_message text;
begin
  begin
    v_fields := private.profile_fields(new.raw_user_meta_data);
    insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via)
    select new.id, new.email, v_fields ->> 'full_name', v_fields ->> 'username', v_fields ->> 'avatar_url',
           v_fields -> 'metadata', 'trigger'
    where coalesce((select s.trigger_enabled from private.settings s where s.id), true)
    on conflict do nothing;
    if found then
      insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, details)
      values (new.id, 'ensure_profile', 'trigger', 'created',
              round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3),
              case when v_fields -> 'dropped' = '{}'::jsonb then '{}'::jsonb
                   else jsonb_build_object('dropped', v_fields -> 'dropped') end);
    elsif coalesce((select s.trigger_enabled from private.settings s where s.id), true) then
      -- A unique index refused the row: the username is taken, or the profile exists.
      v_dropped := (private.create_profile(new.id, 'trigger', new.email, v_fields)).o_dropped;
      perform private.record_profile_success(new.id, 'trigger',
                                             case when v_dropped is null then 'existed' else 'created' end,
                                             v_started_at, v_dropped);
    else
      insert into private.audit_logs (user_id, operation, source, outcome, duration_ms, details)
      values (new.id, 'ensure_profile', 'trigger', 'skipped',
              round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3),
              '{"reason": "trigger_disabled"}');
    end if;
  exception when others then
    get stacked diagnostics v_sqlstate = returned_sqlstate, v_message = message_text;
    begin
      perform private.record_profile_failure(new.id, 'trigger', v_sqlstate, v_message, v_started_at);
    exception when others then
      raise warning 'profile trigger could not record its failure for auth user %: % (SQLSTATE %)',
        new.id, sqlerrm, sqlstate;
    end;
  end;
  return null;
end;
$$;
revoke execute on function private.on_auth_user_created() from public, anon, authenticated, service_role;
