-- A self_repair_period below a minute needs pg_cron 1.5 or later (schedules such as '30 seconds').
-- Supabase ships a newer pg_cron, but a self-hosted PostgreSQL 15 with Debian's pg_cron 1.4 answers
-- such an update of private.settings with its own bare "invalid schedule: 30 seconds". The update
-- is still refused (the job keeps its schedule), now with an error that names the setting and
-- says what to do.
create or replace function private.apply_self_repair_schedule()
returns text
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_settings private.settings;
  v_schedule text;
  v_message text;
begin
  select * into v_settings from private.settings s where s.id;
  v_schedule := private.self_repair_cron_schedule(coalesce(v_settings.self_repair_period, interval '1 minute'));
  if not private.pg_cron_installed() then
    return 'pg_cron is not installed: nothing scheduled (run `npm run reconcile -- --loop 60`, or enable pg_cron and update private.settings to schedule it)';
  end if;
  if coalesce(v_settings.self_repair_enabled, true) then
    begin
      perform cron.schedule('profile-self-repair', v_schedule, 'select public.run_self_repair()');
    exception when others then
      if v_schedule not like '% seconds' then
        raise;
      end if;
      get stacked diagnostics v_message = message_text;
      raise exception 'self_repair_period of % is not accepted by this pg_cron (%): periods below a minute need pg_cron 1.5 or later; use whole minutes', v_settings.self_repair_period, v_message
        using errcode = '22023';
    end;
    return format('pg_cron job profile-self-repair scheduled: %s', v_schedule);
  end if;
  if exists (select 1 from cron.job j where j.jobname = 'profile-self-repair') then
    perform cron.unschedule('profile-self-repair');
  end if;
  return 'pg_cron job profile-self-repair unscheduled (self_repair_enabled is false)';
end;
$$;
revoke execute on function private.apply_self_repair_schedule() from public, anon, authenticated, service_role;
