-- Repair and alerting that run by themselves. public.run_self_repair() is one tick: reconcile
-- everything due (in batches, within a time budget), evaluate the alerts, and post the alert
-- outbox through pg_net when it is installed and the webhook URL is in Vault. Where pg_cron is
-- installed (every Supabase project can enable it), the tick is scheduled here and follows the
-- settings: `update private.settings set self_repair_period = interval '30 seconds'` reschedules
-- it, `self_repair_enabled = false` unschedules it. Without pg_cron this migration applies as
-- well and says so; `npm start` runs the same tick at the same period (dev/scheduler.ts), and the
-- reconcile CLI's --loop does the same against any project.

-- ============================================================================
-- Settings and tables
-- ============================================================================
alter table private.settings add column if not exists self_repair_enabled boolean not null default true;
alter table private.settings add column if not exists self_repair_period interval not null default interval '1 minute';
alter table private.settings drop constraint if exists settings_self_repair_period_check;
alter table private.settings add constraint settings_self_repair_period_check
  check (self_repair_period between interval '1 second' and interval '1 hour');
comment on column private.settings.self_repair_enabled is 'Whether the scheduler (pg_cron job profile-self-repair, or npm start locally) runs public.run_self_repair().';
comment on column private.settings.self_repair_period is 'How often: 1-59 whole seconds (pg_cron 1.5 or later), or whole minutes that divide an hour.';

-- The pg_net request that carries a delivery, until its response is read.
alter table private.alert_deliveries add column if not exists net_request_id bigint;

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
revoke execute on function private.self_repair_cron_schedule(interval) from public, anon, authenticated, service_role;

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
-- pg_cron it only checks the period and says nothing is scheduled.
create or replace function private.apply_self_repair_schedule()
returns text
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_settings private.settings;
  v_schedule text;
begin
  select * into v_settings from private.settings s where s.id;
  v_schedule := private.self_repair_cron_schedule(coalesce(v_settings.self_repair_period, interval '1 minute'));
  if not private.pg_cron_installed() then
    return 'pg_cron is not installed: nothing scheduled (run `npm run reconcile -- --loop 60`, or enable pg_cron and update private.settings to schedule it)';
  end if;
  if coalesce(v_settings.self_repair_enabled, true) then
    perform cron.schedule('profile-self-repair', v_schedule, 'select public.run_self_repair()');
    return format('pg_cron job profile-self-repair scheduled: %s', v_schedule);
  end if;
  if exists (select 1 from cron.job j where j.jobname = 'profile-self-repair') then
    perform cron.unschedule('profile-self-repair');
  end if;
  return 'pg_cron job profile-self-repair unscheduled (self_repair_enabled is false)';
end;
$$;
revoke execute on function private.apply_self_repair_schedule() from public, anon, authenticated, service_role;

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
revoke execute on function private.on_self_repair_settings_changed() from public, anon, authenticated, service_role;

drop trigger if exists settings_apply_self_repair_schedule on private.settings;
create trigger settings_apply_self_repair_schedule
  after insert or update of self_repair_enabled, self_repair_period on private.settings
  for each row execute function private.on_self_repair_settings_changed();

-- A figure as an alert message shows it: numbers without trailing zeros (0.9800 is 0.98),
-- anything else as JSON, a missing one as null.
create or replace function private.alert_figure(p_value jsonb)
returns text
language sql
immutable
security invoker
set search_path = ''
as $$
  select case when jsonb_typeof(p_value) = 'number' then pg_catalog.trim_scale((p_value #>> '{}')::numeric)::text
              else coalesce(p_value, 'null'::jsonb)::text end
$$;
revoke execute on function private.alert_figure(jsonb) from public, anon, authenticated, service_role;

-- The body posted for an alert transition: Slack's incoming-webhook shape (text plus a mrkdwn
-- block), with the transition itself under "alert" for any other receiver. Built here so pg_net
-- and the TypeScript deliverer send the same bytes.
create or replace function private.alert_message(p_alert text, p_state text, p_payload jsonb)
returns jsonb
language sql
immutable
security invoker
set search_path = ''
as $$
  select jsonb_build_object(
    'text', m.text,
    'blocks', jsonb_build_array(jsonb_build_object('type', 'section',
                                                   'text', jsonb_build_object('type', 'mrkdwn', 'text', m.text))),
    'alert', p_payload)
  from (select format('%s Profile system alert *%s* %s (status %s): value %s, threshold %s',
                      case when p_state = 'firing' then ':rotating_light:' else ':white_check_mark:' end,
                      p_alert,
                      case when p_state = 'firing' then 'started' else 'cleared' end,
                      coalesce(p_payload ->> 'status', 'unknown'),
                      private.alert_figure(p_payload -> 'value'),
                      private.alert_figure(p_payload -> 'threshold')) as text) m
$$;
revoke execute on function private.alert_message(text, text, jsonb) from public, anon, authenticated, service_role;

-- public.alert_deliveries_claim as in 20261121130100_alerts.sql, plus each delivery's `message`
-- (private.alert_message), the body every deliverer posts.
create or replace function public.alert_deliveries_claim(p_limit integer default 20, p_lease_seconds integer default 30)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_claimed jsonb;
begin
  if p_limit is null or p_limit < 1 or p_limit > 1000 or p_lease_seconds is null or p_lease_seconds < 1 then
    raise exception 'p_limit must be 1-1000 and p_lease_seconds positive' using errcode = '22023';
  end if;
  with due as (
    select d.id from private.alert_deliveries d
    where d.delivered_at is null
      and d.next_attempt_at <= now()
      and (d.claimed_until is null or d.claimed_until < now())
      and d.attempts < private.alert_max_attempts()
    order by d.id
    limit p_limit
    for update skip locked
  ),
  claimed as (
    update private.alert_deliveries d
       set claimed_until = now() + make_interval(secs => p_lease_seconds), attempts = d.attempts + 1,
           net_request_id = null
      from due where d.id = due.id
    returning d.id, d.alert, d.state, d.payload, d.attempts
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'alert', c.alert, 'state', c.state,
                                               'payload', c.payload, 'attempt', c.attempts,
                                               'message', private.alert_message(c.alert, c.state, c.payload))
                            order by c.id), '[]'::jsonb)
    into v_claimed
  from claimed c;
  return v_claimed;
end;
$$;
revoke execute on function public.alert_deliveries_claim(integer, integer) from public, anon, authenticated;
grant execute on function public.alert_deliveries_claim(integer, integer) to service_role;

-- The alert webhook URL for pg_net, from Supabase Vault (a Slack URL is a credential, so it is
-- not a plain setting): select vault.create_secret('https://hooks.slack.com/…',
-- 'profile_alert_webhook_url'). Null without Vault or without that secret.
create or replace function private.alert_webhook_url()
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_url text;
begin
  if pg_catalog.to_regclass('vault.decrypted_secrets') is null then
    return null;
  end if;
  execute 'select s.decrypted_secret from vault.decrypted_secrets s where s.name = $1 order by s.created_at desc limit 1'
    into v_url using 'profile_alert_webhook_url';
  return nullif(btrim(v_url), '');
end;
$$;
revoke execute on function private.alert_webhook_url() from public, anon, authenticated, service_role;

-- Delivery without any caller: settles the deliveries posted by an earlier tick from pg_net's
-- responses (2xx: delivered; anything else, or no response when the lease ends: failed, retried
-- with backoff), then posts the due ones. pg_net sends after this transaction commits, so a
-- response is read on a later tick. Returns {"via", "posted", "delivered", "failed"} or
-- {"via": null, "reason"} when pg_net or the URL is missing (the functions and the reconcile CLI
-- deliver the outbox then, as before).
create or replace function private.deliver_alerts_with_pg_net()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_url text;
  v_sent record;
  v_response record;
  v_delivery jsonb;
  v_request_id bigint;
  v_posted integer := 0;
  v_delivered integer := 0;
  v_failed integer := 0;
begin
  if pg_catalog.to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null then
    return '{"via": null, "reason": "pg_net is not installed"}'::jsonb;
  end if;
  v_url := private.alert_webhook_url();
  if v_url is null then
    return '{"via": null, "reason": "no profile_alert_webhook_url secret in Vault"}'::jsonb;
  end if;

  for v_sent in
    select d.id, d.net_request_id, d.claimed_until
    from private.alert_deliveries d
    where d.delivered_at is null and d.net_request_id is not null
    order by d.id
    for update skip locked
  loop
    select r.status_code, r.timed_out, r.error_msg into v_response
    from net._http_response r where r.id = v_sent.net_request_id;
    if found then
      if v_response.status_code between 200 and 299 then
        perform public.alert_delivery_result(v_sent.id, true);
        v_delivered := v_delivered + 1;
      else
        perform public.alert_delivery_result(v_sent.id, false,
          coalesce(v_response.error_msg,
                   case when v_response.timed_out then 'alert webhook timed out'
                        else format('alert webhook answered %s', v_response.status_code) end));
        v_failed := v_failed + 1;
      end if;
      update private.alert_deliveries d set net_request_id = null where d.id = v_sent.id;
    elsif v_sent.claimed_until < now() then
      perform public.alert_delivery_result(v_sent.id, false, 'no response from pg_net before the lease ended');
      update private.alert_deliveries d set net_request_id = null where d.id = v_sent.id;
      v_failed := v_failed + 1;
    end if;
  end loop;

  for v_delivery in select value from jsonb_array_elements(public.alert_deliveries_claim(20, 300)) loop
    v_request_id := net.http_post(
      url := v_url,
      body := v_delivery -> 'message',
      headers := '{"Content-Type": "application/json"}'::jsonb,
      timeout_milliseconds := 5000);
    update private.alert_deliveries d set net_request_id = v_request_id where d.id = (v_delivery ->> 'id')::bigint;
    v_posted := v_posted + 1;
  end loop;

  return jsonb_build_object('via', 'pg_net', 'posted', v_posted, 'delivered', v_delivered, 'failed', v_failed);
end;
$$;
revoke execute on function private.deliver_alerts_with_pg_net() from public, anon, authenticated, service_role;

-- One tick of self-repair: reconcile_profiles in batches until nothing is due or half the
-- period (at most 30 s) has gone, then evaluate_alerts(), then delivery through pg_net.
-- Returns {"reconcile": {batches, ran, queue, sweep, census, missing_profiles, queued, more},
-- "alerts": {status, transitions}, "delivery": {...}, "duration_ms"}.
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

  v_alerts := public.evaluate_alerts();

  return jsonb_build_object(
    'reconcile', case when v_batches = 0 then v_batch
                      else jsonb_build_object('ran', true, 'batches', v_batches, 'census', v_census,
                                              'queue', v_queue, 'sweep', v_sweep,
                                              'missing_profiles', v_batch -> 'missing_profiles',
                                              'queued', v_batch -> 'queued', 'more', v_batch -> 'more') end,
    'alerts', jsonb_build_object('status', v_alerts -> 'status', 'transitions', v_alerts -> 'transitions'),
    'delivery', private.deliver_alerts_with_pg_net(),
    'duration_ms', round((extract(epoch from clock_timestamp() - v_started_at) * 1000)::numeric, 3)
  );
end;
$$;
revoke execute on function public.run_self_repair() from public, anon, authenticated;
grant execute on function public.run_self_repair() to service_role;

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

-- ============================================================================
-- The schedule
-- ============================================================================
-- Enable pg_cron where it can be (preloaded, as on every Supabase project), then schedule the
-- tick. Anywhere else this says why nothing was scheduled and goes on.
do $$
begin
  if not private.pg_cron_installed()
     and exists (select 1 from pg_catalog.pg_available_extensions e where e.name = 'pg_cron') then
    begin
      create extension if not exists pg_cron with schema pg_catalog;
    exception when others then
      raise notice 'pg_cron is available but could not be enabled here (%): nothing scheduled', sqlerrm;
    end;
  end if;
  raise notice '%', private.apply_self_repair_schedule();
end;
$$;
