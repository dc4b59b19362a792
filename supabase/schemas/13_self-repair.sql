-- Repair and alerting that run by themselves. public.run_self_repair() is one tick: reconcile
-- everything due (in batches, within a time budget), one email drift step, evaluate the alerts,
-- and post the alert outbox through pg_net when it is installed and the webhook URL is in Vault.
-- Where pg_cron is installed (every Supabase project can enable it), the tick is a pg_cron job
-- that follows the settings: `update private.settings set self_repair_period = interval '30
-- seconds'` reschedules it, `self_repair_enabled = false` unschedules it. Without pg_cron,
-- `npm start` runs the same tick at the same period (dev/scheduler.ts), and the reconcile CLI's
-- --loop does the same against any project.
--
-- Enabling pg_cron and scheduling the job on install is not declared here: it is a one-off
-- action with effects outside our schemas (an extension, a row in cron.job), which
-- 20261205100100_scheduled-self-repair.sql performs where pg_cron is available.

-- ============================================================================
-- Functions
-- ============================================================================
-- The pg_cron schedule for a period: '<n> seconds' below a minute, otherwise a cron expression.
-- Periods a cron expression cannot keep exactly (7 minutes, 90 seconds) are refused.
create or replace function private.self_repair_cron_schedule(p_period interval)
returns text
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  v_seconds numeric := extract(epoch from p_period);
begin
  if v_seconds is null or v_seconds < 1 or v_seconds > 3600 or v_seconds <> trunc(v_seconds) then
    raise exception 'self_repair_period must be whole seconds from 1 second to 1 hour, got %', p_period
      using errcode = '22023';
  end if;
  if v_seconds < 60 then
    return format('%s seconds', v_seconds::integer);
  end if;
  if v_seconds::integer % 60 <> 0 or 60 % (v_seconds::integer / 60) <> 0 then
    raise exception 'self_repair_period of a minute or more must be whole minutes that divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60), got %', p_period
      using errcode = '22023';
  end if;
  return case v_seconds::integer / 60
           when 1 then '* * * * *'
           when 60 then '0 * * * *'
           else format('*/%s * * * *', v_seconds::integer / 60)
         end;
end;
$$;
revoke execute on function private.self_repair_cron_schedule(interval)
  from public, anon, authenticated, service_role;

-- Whether pg_cron is installed in this database (its functions exist here).
create or replace function private.pg_cron_installed()
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select pg_catalog.to_regprocedure('cron.schedule(text,text,text)') is not null
$$;
revoke execute on function private.pg_cron_installed() from public, anon, authenticated, service_role;

-- Makes the pg_cron job match the settings (scheduled, at the period, or absent). Without
-- pg_cron it only checks the period and says nothing is scheduled. A period below a minute needs
-- pg_cron 1.5 or later ('30 seconds'): an older pg_cron's bare "invalid schedule" becomes an
-- error that names the setting and says what to do, and the settings update is refused (the job
-- keeps its schedule).
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
revoke execute on function private.apply_self_repair_schedule()
  from public, anon, authenticated, service_role;

create or replace function private.on_self_repair_settings_changed()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  raise notice '%', private.apply_self_repair_schedule();
  return null;
end;
$$;
revoke execute on function private.on_self_repair_settings_changed()
  from public, anon, authenticated, service_role;

-- What is scheduled, for `npm start`, the dashboard and an operator:
-- {"enabled", "period_seconds", "schedule", "scheduler": "pg_cron" | null, "job": {...} | null}.
create or replace function public.self_repair_schedule()
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_settings private.settings;
  v_job jsonb;
begin
  select * into v_settings from private.settings s where s.id;
  if private.pg_cron_installed() then
    execute $q$select jsonb_build_object('jobid', j.jobid, 'schedule', j.schedule, 'command', j.command, 'active', j.active)
               from cron.job j where j.jobname = 'profile-self-repair'$q$ into v_job;
  end if;
  return jsonb_build_object(
    'enabled', coalesce(v_settings.self_repair_enabled, true),
    'period_seconds', extract(epoch from coalesce(v_settings.self_repair_period, interval '1 minute')),
    'schedule', private.self_repair_cron_schedule(coalesce(v_settings.self_repair_period, interval '1 minute')),
    'scheduler', case when private.pg_cron_installed() then 'pg_cron' end,
    'job', v_job);
end;
$$;
revoke execute on function public.self_repair_schedule() from public, anon, authenticated;
grant execute on function public.self_repair_schedule() to service_role;

-- One tick of self-repair: reconcile_profiles in batches until nothing is due or half the
-- period (at most 30 s) has gone, one email drift step, then evaluate_alerts(), then delivery
-- through pg_net. Returns {"reconcile": {batches, ran, queue, sweep, census, missing_profiles,
-- queued, more}, "emails": {...}, "alerts": {status, transitions}, "delivery": {...},
-- "duration_ms"}.
create or replace function public.run_self_repair()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started_at timestamptz := clock_timestamp();
  v_budget interval;
  v_batch jsonb;
  v_batches integer := 0;
  v_census jsonb;
  v_queue jsonb := '{"due": 0, "repaired": 0, "failed": 0, "user_deleted": 0, "probed": 0, "recovered": 0, "made_due": 0}'::jsonb;
  v_sweep jsonb := '{"missing": 0, "created": 0, "failed": 0}'::jsonb;
  v_emails jsonb;
  v_alerts jsonb;
  v_key text;
begin
  v_budget := least(interval '30 seconds',
                    coalesce((select s.self_repair_period from private.settings s where s.id), interval '1 minute') / 2);
  loop
    v_batch := public.reconcile_profiles(500, v_batches = 0);
    exit when not (v_batch ->> 'ran')::boolean;
    v_batches := v_batches + 1;
    v_census := coalesce(v_census, v_batch -> 'census');
    foreach v_key in array array['due', 'repaired', 'failed', 'user_deleted', 'probed', 'recovered', 'made_due'] loop
      v_queue := jsonb_set(v_queue, array[v_key], to_jsonb((v_queue ->> v_key)::integer + (v_batch #>> array['queue', v_key])::integer));
    end loop;
    foreach v_key in array array['missing', 'created', 'failed'] loop
      v_sweep := jsonb_set(v_sweep, array[v_key], to_jsonb((v_sweep ->> v_key)::integer + (v_batch #>> array['sweep', v_key])::integer));
    end loop;
    exit when not (v_batch ->> 'more')::boolean or clock_timestamp() - v_started_at > v_budget;
  end loop;

  v_emails := public.sync_profile_emails_step();
  v_alerts := public.evaluate_alerts();

  return jsonb_build_object(
    'reconcile', case when v_batches = 0 then v_batch
                      else jsonb_build_object('ran', true, 'batches', v_batches, 'census', v_census,
                                              'queue', v_queue, 'sweep', v_sweep,
                                              'missing_profiles', v_batch -> 'missing_profiles',
                                              'queued', v_batch -> 'queued', 'more', v_batch -> 'more') end,
    'emails', v_emails,
    'alerts', jsonb_build_object('status', v_alerts -> 'status', 'transitions', v_alerts -> 'transitions'),
    'delivery', private.deliver_alerts_with_pg_net(),
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3)
  );
end;
$$;
revoke execute on function public.run_self_repair() from public, anon, authenticated;
grant execute on function public.run_self_repair() to service_role;

-- ============================================================================
-- Triggers
-- ============================================================================
create trigger settings_apply_self_repair_schedule
  after insert or update of self_repair_enabled, self_repair_period on private.settings
  for each row execute function private.on_self_repair_settings_changed();
