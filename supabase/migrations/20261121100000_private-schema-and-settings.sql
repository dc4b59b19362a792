-- Private schema and runtime settings.
--
-- Every migration in this project is re-runnable (if not exists / create or replace / drop-then-
-- create for policies and triggers), so that supabase/rollback/rollback.sql followed by applying
-- the migrations again restores the system without touching data.

-- ============================================================================
-- Schema
-- ============================================================================
-- Internal tables (audit, repair queue, settings) live here: PostgREST does not expose it and
-- the API roles get no privilege on it. Only the callable surface lives in public.
create schema if not exists private;
revoke all on schema private from public, anon, authenticated, service_role;

-- ============================================================================
-- Functions
-- ============================================================================
-- Generic updated_at maintenance, reused by every table that has the column.
create or replace function private.set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke execute on function private.set_updated_at() from public, anon, authenticated, service_role;

-- ============================================================================
-- Tables
-- ============================================================================
-- One row of runtime switches and thresholds. Operators change them with plain SQL
-- (`update private.settings set trigger_enabled = false;`) and the next call sees the change:
-- no redeploy. Typed columns with checks, so a typo is an error instead of a silent default.
create table if not exists private.settings (
  id boolean primary key default true constraint settings_single_row check (id),
  trigger_enabled boolean not null default true,
  grace_period interval not null default interval '5 minutes'
    constraint settings_grace_period_check check (grace_period >= interval '0'),
  health_window interval not null default interval '15 minutes'
    constraint settings_health_window_check check (health_window > interval '0'),
  alert_min_success_rate numeric not null default 0.99
    constraint settings_alert_min_success_rate_check check (alert_min_success_rate between 0 and 1),
  alert_max_missing_profiles integer not null default 0
    constraint settings_alert_max_missing_profiles_check check (alert_max_missing_profiles >= 0),
  alert_max_queue_age interval not null default interval '15 minutes'
    constraint settings_alert_max_queue_age_check check (alert_max_queue_age >= interval '0'),
  updated_at timestamptz not null default now()
);
alter table private.settings enable row level security;
revoke all on table private.settings from public, anon, authenticated, service_role;

comment on table private.settings is 'Runtime switches and thresholds of the profile system; exactly one row.';
comment on column private.settings.trigger_enabled is 'When false the auth.users trigger creates no profile (it audits a skip); register/ensure/backfill still do.';
comment on column private.settings.grace_period is 'How old an auth user must be before a missing profile counts as missing (layer 2 may still be working on it).';
comment on column private.settings.health_window is 'Window over which profile_system_health() computes the success rate.';
comment on column private.settings.alert_min_success_rate is 'Health is degraded when (created + existed) / (created + existed + failed) in the window falls below this.';
comment on column private.settings.alert_max_missing_profiles is 'Health is down when more auth users than this (older than grace_period) have no profile.';
comment on column private.settings.alert_max_queue_age is 'Health is degraded when the oldest open repair-queue entry is older than this.';

insert into private.settings (id) values (true) on conflict (id) do nothing;

-- ============================================================================
-- Triggers
-- ============================================================================
drop trigger if exists settings_set_updated_at on private.settings;
create trigger settings_set_updated_at
  before update on private.settings
  for each row execute function private.set_updated_at();
