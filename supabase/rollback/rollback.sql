-- Roll the profile system back: switch it off, then remove the auth.users trigger and every
-- function the migrations created. Profiles, the audit trail, the repair queue, the settings,
-- RLS and its policies all stay, so nothing is lost and nothing is exposed.
--
-- Run it as `postgres` (Supabase SQL editor, or `psql "$DATABASE_URL" -f supabase/rollback/rollback.sql`).
-- It is idempotent. To re-enable: apply the migrations again (they are re-runnable; this file
-- clears their rows from the migration history so `supabase db push` applies them again), then
-- `update private.settings set trigger_enabled = true;`.
--
-- Kept on purpose: private.set_updated_at, private.is_valid_username, private.is_valid_avatar_url,
-- private.is_valid_created_via, private.is_valid_profile_metadata and private.is_valid_audit_row,
-- because the kept tables' triggers and check constraints use them.

-- 1. Switch off first, so a signup racing this script sees a consistent system.
update private.settings set trigger_enabled = false where id;

-- 2. An adopted app table (private.adopt_profile_table) first: the app's own trigger and insert
-- policies come back, what adoption added to the app's table goes, and public.user_profiles (a
-- view of it) with it. The app's rows stay.
do $$
begin
  if to_regprocedure('private.unadopt_profile_table()') is not null then
    perform private.unadopt_profile_table();
  end if;
end
$$;

-- 3. The triggers on auth.users: signups and email changes no longer touch our schema at all.
-- Then the scheduled self-repair and the triggers on our own tables that call our functions.
drop trigger if exists users_ensure_profile on auth.users;
drop trigger if exists users_sync_profile_email on auth.users;
do $$
begin
  -- Nested, so cron.job is only parsed where pg_cron exists.
  if to_regprocedure('cron.unschedule(text)') is not null then
    if exists (select 1 from cron.job j where j.jobname = 'profile-self-repair') then
      perform cron.unschedule('profile-self-repair');
    end if;
  end if;
end
$$;
drop trigger if exists settings_apply_self_repair_schedule on private.settings;
do $$
begin
  -- Only the default table has them (an adopted table's view is gone by now).
  if to_regclass('public.user_profiles') is not null then
    drop trigger if exists user_profiles_note_deleted on public.user_profiles;
    drop trigger if exists user_profiles_audit_direct_conflict on public.user_profiles;
    drop trigger if exists user_profiles_audit_direct_insert on public.user_profiles;
  end if;
end
$$;

-- 4. The callable surface and its internals.
drop function if exists private.unadopt_profile_table();
drop function if exists private.adopt_profile_table(text, name, jsonb, name, boolean);
drop function if exists private.rewrite_required(text, text, text);
drop function if exists private.rewrite_profile_inserts(text, regclass, jsonb);
drop function if exists private.profile_columns();
drop function if exists public.record_signup_refusal(uuid, text, integer, text, numeric);
drop function if exists private.on_profile_inserted_directly();
drop function if exists public.self_repair_schedule();
drop function if exists public.run_self_repair();
drop function if exists private.deliver_alerts_with_pg_net();
drop function if exists private.alert_webhook_url();
drop function if exists private.alert_message(text, text, jsonb);
drop function if exists private.alert_figure(jsonb);
drop function if exists private.on_self_repair_settings_changed();
drop function if exists private.apply_self_repair_schedule();
drop function if exists private.pg_cron_installed();
drop function if exists private.self_repair_cron_schedule(interval);
drop function if exists public.reconcile_profiles(integer, boolean);
drop function if exists private.on_profile_deleted();
drop function if exists private.missing_profiles_summary();
drop function if exists public.profile_census_step(integer, boolean);
drop function if exists private.count_missing_profiles();
drop function if exists public.sync_profile_emails_step(integer, boolean);
drop function if exists public.sync_profile_emails(integer);
drop function if exists private.on_auth_user_email_changed();
drop function if exists public.profile_existed_repeats(interval);
drop function if exists public.ensure_profile_for_caller(uuid, integer, integer, text);
drop function if exists private.record_profile_existed(uuid, text, timestamptz, text);
drop function if exists private.count_rate_limit_hit(text, integer, integer);
drop function if exists public.release_lapsed_usernames(integer);
drop function if exists public.username_available(text);
drop function if exists private.release_lapsed_username(text, text, uuid);
drop function if exists private.jsonb_strip_reserved_keys(jsonb);
drop function if exists private.jsonb_has_reserved_key(jsonb);
drop function if exists private.reserved_metadata_keys();
drop function if exists public.prune_audit_logs(integer);
drop function if exists public.profile_operations_stats(interval);
drop function if exists public.alert_delivery_result(bigint, boolean, text);
drop function if exists public.alert_deliveries_claim(integer, integer);
drop function if exists public.evaluate_alerts();
drop function if exists private.alert_max_attempts();
drop function if exists public.profile_backfill_estimate();
drop function if exists public.enqueue_profile_repair(uuid, text, text, text, text, integer);
drop function if exists public.find_auth_user_by_email(text);
drop function if exists public.register_preflight(text, integer, integer, text, text);
drop function if exists public.idempotency_release(text, text, text);
drop function if exists public.idempotency_complete(text, text, text, integer, jsonb);
drop function if exists public.idempotency_claim(text, text, text, integer, integer);
drop function if exists private.check_idempotency_arguments(text, text, text);
drop function if exists public.profile_system_health();
drop function if exists public.profile_system_stats(interval);
drop function if exists public.backfill_missing_profiles(integer, uuid, boolean);
drop function if exists public.ensure_user_profile(uuid, text, text, integer, text, text, text, jsonb);
drop function if exists private.on_auth_user_created();
drop function if exists private.ensure_profile(uuid, text, text, integer, text, text, text, jsonb);
drop function if exists private.create_profile(uuid, text, text, jsonb);
drop function if exists private.record_profile_success(uuid, text, text, timestamptz, jsonb, integer, text);
drop function if exists private.record_profile_outcome(uuid, text, text, timestamptz, jsonb, integer, text, jsonb);
drop function if exists private.profile_fields(jsonb, text, text, text, jsonb);
drop function if exists private.record_profile_failure(uuid, text, text, text, timestamptz, integer, text, jsonb);
drop function if exists private.repair_queue_summary();
drop function if exists private.profile_trigger_installed();

-- 5. Forget the migrations in the history the Supabase CLI keeps, so they are applied again.
do $$
begin
  if to_regclass('supabase_migrations.schema_migrations') is not null then
    delete from supabase_migrations.schema_migrations
    where version in ('20261121100000', '20261121100100', '20261121100200', '20261121100300',
                      '20261121100400', '20261121100500', '20261121100600', '20261121120000',
                      '20261121120100', '20261121120200', '20261121130000', '20261121130100',
                      '20261121130200', '20261121140000', '20261121150000', '20261121150100',
                      '20261121151000', '20261121152000', '20261204100000', '20261204100100',
                      '20261204100200', '20261204120000', '20261204130000', '20261205100000',
                      '20261205100100', '20261205120000', '20261206100000',
                      '20261206100100', '20261206100200', '20261206120000');
  end if;
end
$$;
