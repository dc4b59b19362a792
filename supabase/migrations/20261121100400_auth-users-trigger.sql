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
create or replace function private.on_auth_user_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_sqlstate text;
  v_message text;
begin
  begin
    if coalesce((select s.trigger_enabled from private.settings s where s.id), true) then
      perform private.ensure_profile(new.id, 'trigger');
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

-- ============================================================================
-- Triggers
-- ============================================================================
-- Named for its purpose, not `on_auth_user_created`, so installing it never replaces a
-- project's existing handle_new_user trigger by accident.
drop trigger if exists users_ensure_profile on auth.users;
create trigger users_ensure_profile
  after insert on auth.users
  for each row execute function private.on_auth_user_created();
