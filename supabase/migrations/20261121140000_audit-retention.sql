-- Retention: the audit trail (and the resolved repair-queue entries and delivered alerts) is
-- kept for private.settings.audit_retention, then deleted in short batches by an index range
-- scan, so the tables stay bounded however long the system runs. Schedule it daily (pg_cron) or
-- call it from any job; each call does a bounded amount of work.

-- ============================================================================
-- Tables
-- ============================================================================
alter table private.settings add column if not exists audit_retention interval not null default interval '90 days';
alter table private.settings drop constraint if exists settings_audit_retention_check;
alter table private.settings add constraint settings_audit_retention_check check (audit_retention >= interval '1 day');
comment on column private.settings.audit_retention is 'How long audit rows, resolved repair-queue entries and delivered alerts are kept (at least 1 day).';

create index if not exists repair_queue_resolved_at_idx on private.repair_queue (resolved_at) where resolved_at is not null;
create index if not exists alert_deliveries_delivered_at_idx on private.alert_deliveries (delivered_at) where delivered_at is not null;

-- ============================================================================
-- Functions
-- ============================================================================
-- Deletes at most p_batch_size rows of each kind older than the retention and returns
-- {"audit_logs", "repair_queue", "alert_deliveries", "older_than", "done"}; call again until done.
create or replace function public.prune_audit_logs(p_batch_size integer default 10000)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_cutoff timestamptz;
  v_audit integer;
  v_queue integer;
  v_alerts integer;
begin
  if p_batch_size is null or p_batch_size < 1 or p_batch_size > 100000 then
    raise exception 'p_batch_size must be between 1 and 100000' using errcode = '22023';
  end if;
  v_cutoff := now() - coalesce((select s.audit_retention from private.settings s where s.id), interval '90 days');

  delete from private.audit_logs a
  where a.id in (select o.id from private.audit_logs o where o.occurred_at < v_cutoff order by o.occurred_at limit p_batch_size);
  get diagnostics v_audit = row_count;

  delete from private.repair_queue q
  where q.user_id in (select o.user_id from private.repair_queue o where o.resolved_at < v_cutoff order by o.resolved_at limit p_batch_size);
  get diagnostics v_queue = row_count;

  delete from private.alert_deliveries d
  where d.id in (select o.id from private.alert_deliveries o where o.delivered_at < v_cutoff order by o.delivered_at limit p_batch_size);
  get diagnostics v_alerts = row_count;

  return jsonb_build_object(
    'audit_logs', v_audit,
    'repair_queue', v_queue,
    'alert_deliveries', v_alerts,
    'older_than', v_cutoff,
    'done', v_audit < p_batch_size and v_queue < p_batch_size and v_alerts < p_batch_size
  );
end;
$$;
revoke execute on function public.prune_audit_logs(integer) from public, anon, authenticated;
grant execute on function public.prune_audit_logs(integer) to service_role;
