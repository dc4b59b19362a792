-- Layer 1: create the profile in the same transaction as the signup, without ever failing it.

-- ============================================================================
-- Functions
-- ============================================================================
-- Runs as Supabase Auth's role (supabase_auth_admin, search_path = auth) inside GoTrue's insert
-- transaction. An error escaping here would roll the signup back and make Auth answer
-- "500 Database error saving new user", so every path ends in RETURN: a failure is recorded in
-- the audit and the repair queue (in a subtransaction of its own), and if even that fails only a
-- WARNING goes to the server log. SECURITY DEFINER because supabase_auth_admin has no rights on
-- public or private; the empty search_path because its own search_path is `auth`.
-- The lean part: in the common case two statements, the profile from NEW (no read of
-- auth.users, no look for a profile a user inserted this instant cannot have; the switch is read
-- inside the insert) and its audit row; nothing is returned; and exactly one exception block,
-- the one protecting the signup. It does not look for an open repair-queue entry either: a new
-- auth user has none (an id reused after a delete could; the reconciler's next pass resolves
-- that one). Being a subtransaction, that block takes the foreign-key lock on the new auth.users
-- row under its own xid, so Auth's UPDATE of the row then creates a MultiXact; locking the row
-- first in the top transaction avoids that, but cost more CPU than it saved when measured.
-- Switched off in settings, it writes a `skipped` audit row and puts the user in
-- private.missing_profiles, so health counts it at once and the reconciler's next run creates
-- the profile (register, ensure-profile or the Auth Hook usually do so first).
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
      insert into private.missing_profiles (user_id, found_by) values (new.id, 'trigger_disabled')
      on conflict (user_id) do nothing;
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

-- ============================================================================
-- Triggers
-- ============================================================================
-- Named for its purpose, not `on_auth_user_created`, so installing it never replaces a
-- project's existing handle_new_user trigger by accident.
create trigger users_ensure_profile
  after insert on auth.users
  for each row execute function private.on_auth_user_created();
