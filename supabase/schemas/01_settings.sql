-- Runtime switches and thresholds: one row, read by the functions on every call.

-- ============================================================================
-- Tables
-- ============================================================================
-- One row of runtime switches and thresholds. Operators change them with plain SQL
-- (`update private.settings set trigger_enabled = false;`) and the next call sees the change:
-- no redeploy. Typed columns with checks, so a typo is an error instead of a silent default.
-- Columns are in the order the migrations added them. grace_period and missing_count_max_age are
-- no longer read; they stay because earlier migrations that comment on them must still apply
-- again after a rollback (docs/ROLLBACK.md §4).
create table private.settings (
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
  updated_at timestamptz not null default now(),
  register_enabled boolean not null default true,
  audit_retention interval not null default interval '90 days'
    constraint settings_audit_retention_check check (audit_retention >= interval '1 day'),
  missing_count_max_age interval not null default interval '1 minute'
    constraint settings_missing_count_max_age_check
      check (missing_count_max_age between interval '0' and interval '1 day'),
  unconfirmed_username_ttl interval not null default interval '24 hours'
    constraint settings_unconfirmed_username_ttl_check check (unconfirmed_username_ttl >= interval '0'),
  census_scan_batch integer not null default 10000
    constraint settings_census_scan_batch_check check (census_scan_batch between 100 and 1000000),
  self_repair_enabled boolean not null default true,
  self_repair_period interval not null default interval '1 minute'
    constraint settings_self_repair_period_check
      check (self_repair_period between interval '1 second' and interval '1 hour')
);
alter table private.settings enable row level security;
revoke all on table private.settings from public, anon, authenticated, service_role;

comment on table private.settings is
  'Runtime switches and thresholds of the profile system; exactly one row.';
comment on column private.settings.trigger_enabled is
  'When false the auth.users trigger creates no profile (it audits a skip); register/ensure/backfill still do.';
comment on column private.settings.grace_period is
  'Not read since 20261205100000_incremental-census.sql: a missing profile counts as soon as its signup commits.';
comment on column private.settings.health_window is
  'Window over which profile_system_health() computes the success rate.';
comment on column private.settings.alert_min_success_rate is
  'Health is degraded when (created + existed) / (created + existed + failed) in the window falls below this.';
comment on column private.settings.alert_max_missing_profiles is
  'Health is down when more auth users than this (older than grace_period) have no profile.';
comment on column private.settings.alert_max_queue_age is
  'Health is degraded when the oldest open repair-queue entry is older than this.';
comment on column private.settings.register_enabled is
  'When false the register function answers 503 registration_disabled; existing users are unaffected.';
comment on column private.settings.audit_retention is
  'How long audit rows, resolved repair-queue entries and delivered alerts are kept (at least 1 day).';
comment on column private.settings.missing_count_max_age is
  'Not read since 20261205100000_incremental-census.sql: health counts missing profiles live.';
comment on column private.settings.unconfirmed_username_ttl is
  'How old a user who has not confirmed (auth.users.confirmed_at is null) may be before the username of their profile lapses and goes to the next user who asks for it.';
comment on column private.settings.census_scan_batch is
  'How many auth users each census step re-checks in the safety-net scan (primary-key order, wrapping around).';
comment on column private.settings.self_repair_enabled is
  'Whether the scheduler (pg_cron job profile-self-repair, or npm start locally) runs public.run_self_repair().';
comment on column private.settings.self_repair_period is
  'How often: 1-59 whole seconds (pg_cron 1.5 or later), or whole minutes that divide an hour.';

-- ============================================================================
-- Triggers
-- ============================================================================
-- settings_apply_self_repair_schedule, the other trigger on this table, is in 13_self-repair.sql.
create trigger settings_set_updated_at
  before update on private.settings
  for each row execute function private.set_updated_at();

-- ============================================================================
-- Data
-- ============================================================================
-- The one row, with every default. The functions fall back to the defaults without it, but
-- operators update it in place, so it must exist. (A schema diff does not carry inserts: a new
-- project gets this row from 20261121100000_private-schema-and-settings.sql.)
insert into private.settings (id) values (true) on conflict (id) do nothing;
