-- Alerting: alert conditions are evaluated in SQL against the settings' thresholds and their
-- state is stored, so an alert fires once when its condition starts and once when it clears,
-- however often it is checked. Each transition is written to an outbox that the functions and
-- the reconcile CLI deliver to a webhook; failed deliveries stay visible and are retried.

-- ============================================================================
-- Tables
-- ============================================================================
create table if not exists private.alert_state (
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

create table if not exists private.alert_deliveries (
  id bigint generated always as identity constraint alert_deliveries_pkey primary key,
  alert text not null,
  state text not null constraint alert_deliveries_state_check check (state in ('firing', 'resolved')),
  payload jsonb not null,
  created_at timestamptz not null default now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  claimed_until timestamptz,
  delivered_at timestamptz,
  last_error text
);
alter table private.alert_deliveries enable row level security;
revoke all on table private.alert_deliveries from public, anon, authenticated, service_role;
create index if not exists alert_deliveries_pending_idx on private.alert_deliveries (next_attempt_at)
  where delivered_at is null;

comment on table private.alert_deliveries is 'Outbox of alert transitions to deliver to the alert webhook.';

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
-- deliverers never send the same one twice while a lease holds.
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
       set claimed_until = now() + make_interval(secs => p_lease_seconds), attempts = d.attempts + 1
      from due where d.id = due.id
    returning d.id, d.alert, d.state, d.payload, d.attempts
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', c.id, 'alert', c.alert, 'state', c.state,
                                               'payload', c.payload, 'attempt', c.attempts) order by c.id), '[]'::jsonb)
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
revoke execute on function public.alert_delivery_result(bigint, boolean, text) from public, anon, authenticated;
grant execute on function public.alert_delivery_result(bigint, boolean, text) to service_role;
