// The local stand-in for pg_cron: what the migration schedules on a hosted project (the job
// profile-self-repair, `select public.run_self_repair()` as postgres, every
// private.settings.self_repair_period while self_repair_enabled), run here by `npm start` from
// the same settings, re-read at every tick so a change of period or a switch-off takes effect as
// on pg_cron. The outbox is posted by pg_net on a hosted project; here, where pg_net does not
// run, the tick's transitions are posted by shared/alerts.ts to the functions' ALERT_WEBHOOK_URL.
import pg from 'pg';
import { deliverPendingAlerts } from '../shared/alerts.ts';
import type { Logger } from '../shared/logger.ts';
import type { RetryPolicy } from '../shared/retry.ts';
import type { SupabaseClient } from '../shared/supabase-client.ts';

export interface SelfRepairSchedule {
  enabled: boolean;
  period_seconds: number;
  /** The pg_cron schedule the same settings give on a hosted project ("* * * * *", "30 seconds"). */
  schedule: string;
  scheduler: 'pg_cron' | null;
}

export interface SchedulerOptions {
  /** The database as `postgres`, the role a pg_cron job of the migration runs as. */
  dbUrl: string;
  /** A service-role client for delivering the outbox. */
  supabase: SupabaseClient;
  alertWebhookUrl: string | undefined;
  log: Logger;
  retry: RetryPolicy;
  /** Each tick's result, for the printout and the tests. */
  onTick?: (tick: { run: unknown; delivered: number; failed: number } | { error: string }) => void;
}

export interface Scheduler {
  /** The schedule read at the last tick. */
  schedule(): SelfRepairSchedule;
  stop(): Promise<void>;
}

/** How often the settings are read for a change of period or switch. */
const CHECK_EVERY_MS = 1_000;

async function readSelfRepairSchedule(
  client: pg.ClientBase | pg.Pool,
): Promise<SelfRepairSchedule> {
  const { rows } = await client.query<{ s: SelfRepairSchedule }>(
    'select public.self_repair_schedule() as s',
  );
  return rows[0]!.s;
}

/**
 * Ticks at once, then every period after the start of the last tick. The settings are read
 * every second (every quarter period, if that is shorter), so a new period or a switch-off takes effect
 * within a second, as pg_cron picks up a changed job. stop() waits for a running tick.
 */
export async function startScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const pool = new pg.Pool({ connectionString: options.dbUrl, max: 1 });
  // A dropped connection (a database restart) is logged; the next check reconnects.
  pool.on('error', (e) => options.log.warn({ err: e.message }, 'scheduler connection lost'));
  let schedule = await readSelfRepairSchedule(pool);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let lastStart: number | undefined;

  const tick = async (): Promise<void> => {
    lastStart = Date.now();
    const { rows } = await pool.query<{ r: unknown }>('select public.run_self_repair() as r');
    const { delivered, failed } = await deliverPendingAlerts({
      supabase: options.supabase,
      webhookUrl: options.alertWebhookUrl,
      log: options.log,
      retry: options.retry,
    });
    options.onTick?.({ run: rows[0]!.r, delivered, failed });
  };

  const check = async (): Promise<void> => {
    schedule = await readSelfRepairSchedule(pool);
    const periodMs = schedule.period_seconds * 1000;
    if (schedule.enabled && (lastStart === undefined || Date.now() >= lastStart + periodMs)) {
      await tick();
    }
  };

  // A tick starts at most a quarter period late, however short the period.
  const checkDelay = () => Math.min(CHECK_EVERY_MS, (schedule.period_seconds * 1000) / 4);

  const loop = () => {
    if (stopped) return;
    running = check().then(
      () => {
        if (!stopped) timer = setTimeout(loop, checkDelay());
      },
      (error: unknown) => {
        const message = (error as Error).message;
        options.log.error({ err: message }, 'self-repair tick failed; trying again');
        options.onTick?.({ error: message });
        // Counted as a run, so a failing database is tried once a period, not once a second.
        lastStart = Date.now();
        if (!stopped) timer = setTimeout(loop, checkDelay());
      },
    );
  };
  loop();

  return {
    schedule: () => schedule,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
      await pool.end();
    },
  };
}
