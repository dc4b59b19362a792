-- Alerting: alert conditions are evaluated in SQL against the settings' thresholds and their
-- state is stored, so an alert fires once when its condition starts and once when it clears,
-- however often it is checked. Each transition is written to an outbox that pg_net (from the
-- self-repair tick), the functions and the reconcile CLI deliver to a webhook; failed deliveries
-- stay visible and are retried.

-- ============================================================================
-- Tables
-- ============================================================================
create table private.alert_state (
  name text not null constraint alert_state_pkey primary key,
  firing boolean not null default false,
  since timestamptz,
  value jsonb,
  threshold jsonb,
  evaluated_at timestamptz not null default now()
);
alter table private.alert_state enable row level security;
revoke all on table private.alert_state from public, anon, authenticated, service_role;

comment on table private.alert_state is 'Current state of each alert condition (one row per alert).';

-- net_request_id: the pg_net request that carries a delivery, until its response is read.
create table private.alert_deliveries (
  id bigint generated always as identity constraint alert_deliveries_pkey primary key,
  alert text not null,
  state text not null constraint alert_deliveries_state_check check (state in ('firing', 'resolved')),
  payload jsonb not null,
  created_at timestamptz not null default now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  claimed_until timestamptz,
  delivered_at timestamptz,
  last_error text,
  net_request_id bigint
);
alter table private.alert_deliveries enable row level security;
revoke all on table private.alert_deliveries from public, anon, authenticated, service_role;

comment on table private.alert_deliveries is 'Outbox of alert transitions to deliver to the alert webhook.';

create index alert_deliveries_pending_idx on private.alert_deliveries (next_attempt_at)
  where delivered_at is null;
-- What the retention deletes (public.prune_audit_logs).
create index alert_deliveries_delivered_at_idx on private.alert_deliveries (delivered_at)
  where delivered_at is not null;

-- ============================================================================
-- Functions
-- ============================================================================
-- A delivery is given up after this many attempts; it stays in the table, undelivered.
create or replace function private.alert_max_attempts()
returns integer
language sql
immutable
security invoker
set search_path = ''
as $$ select 8 $$;
revoke execute on function private.alert_max_attempts() from public, anon, authenticated, service_role;

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
revoke execute on function private.alert_message(text, text, jsonb)
  from public, anon, authenticated, service_role;

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

-- Evaluates every alert condition from profile_system_health()'s checks, stores the state and
-- queues a delivery for each condition that started or cleared. Returns
-- {"alerts": [{name, firing, since, value, threshold}], "transitions": [{name, state}]}.
-- Concurrent evaluations are serialised, so a transition is recorded exactly once.
create or replace function public.evaluate_alerts()
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_health jsonb;
  v_check record;
  v_previous private.alert_state;
  v_firing boolean;
  v_transitions jsonb := '[]'::jsonb;
  v_message text;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('public.evaluate_alerts')::bigint);
  v_health := public.profile_system_health();

  for v_check in
    select c.key as name, c.value as check_value
    from jsonb_each(v_health -> 'checks') c
    order by c.key
  loop
    v_firing := not (v_check.check_value ->> 'ok')::boolean;
    select * into v_previous from private.alert_state a where a.name = v_check.name;
    if not found then
      v_previous.firing := false;
    end if;

    insert into private.alert_state as a (name, firing, since, value, threshold, evaluated_at)
    values (v_check.name, v_firing, case when v_firing then now() end,
            v_check.check_value -> 'value', v_check.check_value -> 'threshold', now())
    on conflict (name) do update
      set firing = excluded.firing,
          since = case when excluded.firing = a.firing then a.since else now() end,
          value = excluded.value,
          threshold = excluded.threshold,
          evaluated_at = now();

    if v_firing is distinct from v_previous.firing then
      v_message := format('%s %s: value %s, threshold %s',
        v_check.name, case when v_firing then 'started' else 'cleared' end,
        coalesce(v_check.check_value ->> 'value', 'none'), coalesce(v_check.check_value ->> 'threshold', 'none'));
      insert into private.alert_deliveries (alert, state, payload)
      values (v_check.name, case when v_firing then 'firing' else 'resolved' end,
              jsonb_build_object('alert', v_check.name, 'state', case when v_firing then 'firing' else 'resolved' end,
                                 'status', v_health ->> 'status', 'value', v_check.check_value -> 'value',
                                 'threshold', v_check.check_value -> 'threshold', 'at', now(), 'message', v_message));
      v_transitions := v_transitions || jsonb_build_object('name', v_check.name,
                                                           'state', case when v_firing then 'firing' else 'resolved' end);
    end if;
  end loop;

  return jsonb_build_object(
    'status', v_health ->> 'status',
    'alerts', (select coalesce(jsonb_agg(jsonb_build_object('name', a.name, 'firing', a.firing, 'since', a.since,
                                                            'value', a.value, 'threshold', a.threshold) order by a.name), '[]'::jsonb)
               from private.alert_state a),
    'transitions', v_transitions
  );
end;
$$;
revoke execute on function public.evaluate_alerts() from public, anon, authenticated;
grant execute on function public.evaluate_alerts() to service_role;

-- Leases up to p_limit due deliveries to one deliverer for p_lease_seconds: concurrent
-- deliverers never send the same one twice while a lease holds. Each comes with its `message`
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

-- Records how a claimed delivery went; a failure is retried later with exponential backoff.
create or replace function public.alert_delivery_result(p_id bigint, p_delivered boolean, p_error text default null)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_id is null or p_delivered is null then
    raise exception 'p_id and p_delivered are required' using errcode = '22023';
  end if;
  if p_delivered then
    update private.alert_deliveries d
       set delivered_at = now(), claimed_until = null, last_error = null
     where d.id = p_id;
  else
    update private.alert_deliveries d
       set claimed_until = null,
           last_error = left(coalesce(p_error, 'unknown error'), 1000),
           next_attempt_at = now() + least(interval '1 hour', interval '10 seconds' * power(2, least(d.attempts, 10)))
     where d.id = p_id;
  end if;
end;
$$;
revoke execute on function public.alert_delivery_result(bigint, boolean, text)
  from public, anon, authenticated;
grant execute on function public.alert_delivery_result(bigint, boolean, text) to service_role;

-- Delivery without any caller: settles the deliveries posted by an earlier tick from pg_net's
-- responses (2xx: delivered; anything else, or no response when the lease ends: failed, retried
-- with backoff), then posts the due ones. pg_net sends after this transaction commits, so a
-- response is read on a later tick. Returns {"via", "posted", "delivered", "failed"} or
-- {"via": null, "reason"} when pg_net or the URL is missing (the functions and the reconcile CLI
-- deliver the outbox then).
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
revoke execute on function private.deliver_alerts_with_pg_net()
  from public, anon, authenticated, service_role;
