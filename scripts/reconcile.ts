// `npm run reconcile`: one run of public.reconcile_profiles() over the Supabase API (the due
// repair-queue entries, then the sweep of recent users without a profile), one batch of
// public.release_lapsed_usernames() (usernames of unconfirmed users past
// private.settings.unconfirmed_username_ttl), then the alerts:
// evaluate_alerts() and delivery of every due transition to ALERT_WEBHOOK_URL. With --loop it
// repeats until Ctrl-C. Safe next to pg_cron or another copy: one run at a time wins the lock.
import { evaluateAndDeliverAlerts, type AlertRun } from '../shared/alerts.ts';
import type { Logger } from '../shared/logger.ts';
import type { SupabaseClient } from '../shared/supabase-client.ts';
import {
  callRpc, createCliLogger, createClient, displayUrl, EXIT, intFlag, onInterrupt, parseFlags, positiveNumberFlag, resolveTarget,
  RpcFailed, runMain, sleep, targetNotice, UsageError, type Target,
} from './cli.ts';

const DEFAULT_BATCH_SIZE = 200;
const MAX_BATCH_SIZE = 10_000;
const DEFAULT_SWEEP_WINDOW = '1d';
/** reconcile_profiles refuses windows beyond this. */
const MAX_SWEEP_WINDOW_SECONDS = 366 * 86_400;

const USAGE = `usage: npm run reconcile -- [--batch-size N] [--sweep-window DURATION] [--loop SECONDS] [--json]

Runs reconcile_profiles() once over the Supabase API of SUPABASE_URL with
SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEYS); without SUPABASE_URL, the local stack on
http://127.0.0.1:54321. It retries the repair-queue entries that are due, then creates the
profiles of users created within the sweep window (past the grace period) that still lack one,
and releases the usernames of users who never confirmed and whose claim has lapsed.
Then it evaluates the alerts and posts each transition to ALERT_WEBHOOK_URL (without it, the
transitions wait in the outbox).

  --batch-size N           at most N queue entries, N swept users and N lapsed usernames per run, 1-${MAX_BATCH_SIZE} (default ${DEFAULT_BATCH_SIZE})
  --sweep-window DURATION  how far back the sweep looks: 90s, 30m, 6h, 1d, "2 days" (default ${DEFAULT_SWEEP_WINDOW}, at most 366d)
  --loop SECONDS           run again every SECONDS until Ctrl-C (which lets the current run finish)
  --json                   one JSON object per run on stdout, and nothing else there
  --help                   show this help

Exit status: 0 it ran, or another reconcile held the lock; 1 users still failed, or the call
failed; 2 bad arguments.`;

interface Options {
  help: boolean;
  batchSize: number;
  sweepWindowSeconds: number;
  loopSeconds: number | undefined;
  json: boolean;
}

const UNIT_SECONDS: Record<string, number> = {
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86_400, day: 86_400, days: 86_400,
};

/** "90s", "30 minutes", "1d" → seconds; a bare "0" is allowed, anything else needs a unit. */
function parseDuration(name: string, raw: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = match?.[2]?.toLowerCase() ?? '';
  const factor = unit === '' && match?.[1] !== undefined && Number(match[1]) === 0 ? 1 : UNIT_SECONDS[unit];
  const seconds = match && factor !== undefined ? Number(match[1]) * factor : Number.NaN;
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SWEEP_WINDOW_SECONDS) {
    throw new UsageError(`--${name} must be a duration from 0 to 366 days such as 90s, 30m, 6h or 1d, got ${JSON.stringify(raw)}`);
  }
  return seconds;
}

function parseOptions(argv: string[]): Options {
  const values = parseFlags(argv, {
    'batch-size': { type: 'string' },
    'sweep-window': { type: 'string' },
    loop: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  });
  return {
    help: values.help === true,
    batchSize: intFlag('batch-size', values['batch-size'], DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE)!,
    sweepWindowSeconds: parseDuration('sweep-window', values['sweep-window'] ?? DEFAULT_SWEEP_WINDOW),
    loopSeconds: positiveNumberFlag('loop', values.loop),
    json: values.json === true,
  };
}

type ReconcileResult =
  | {
      ran: true;
      queue: { due: number; repaired: number; failed: number; user_deleted: number };
      sweep: { missing: number; created: number; failed: number };
      /** Auth users past the grace period still without a profile after the run (all of them, not only the sweep's window). */
      missing_profiles: number;
      duration_ms: number;
    }
  | { ran: false; reason: string };

interface Context {
  options: Options;
  target: Target;
  supabase: SupabaseClient;
  log: Logger;
  say: (line: string) => void;
}

function describeAlerts(alerts: AlertRun, webhookConfigured: boolean): string[] {
  const list = alerts.transitions.length > 0 ? ` (${alerts.transitions.map((t) => `${t.name} ${t.state}`).join(', ')})` : '';
  if (alerts.status === null) return ['alerts: could not be evaluated (see the log above)'];
  if (!webhookConfigured) return [`no ALERT_WEBHOOK_URL: ${alerts.transitions.length} transitions kept in the outbox${list}`];
  const lines = [
    `alerts: status ${alerts.status}; ${alerts.transitions.length} transition(s)${list}; ` +
      `${alerts.delivered} delivered, ${alerts.failed} delivery failure(s)`,
  ];
  if (alerts.failed > 0) lines.push('  failed deliveries stay in the outbox with their error and are retried later (see the log above)');
  return lines;
}

/** One reconcile and one alert pass; true unless users still failed. */
async function runOnce(ctx: Context): Promise<boolean> {
  const { options, target, supabase, log, say } = ctx;
  let result: ReconcileResult;
  let released: number;
  try {
    result = await callRpc<ReconcileResult>(
      supabase,
      'reconcile_profiles',
      { p_batch_size: options.batchSize, p_sweep_window: `${options.sweepWindowSeconds} seconds` },
      target.config.retry,
      log,
    );
    // Not inside reconcile_profiles: it reads all of auth.users, too much for every run of a
    // per-minute pg_cron job (which schedules it apart), and nothing waits for it: a name
    // somebody asks for is released on the spot.
    released = await callRpc<number>(supabase, 'release_lapsed_usernames', { p_batch: options.batchSize }, target.config.retry, log);
  } catch (error) {
    if (!(error instanceof RpcFailed) || options.loopSeconds === undefined) throw error;
    // In a loop, one failed call is reported and the next tick tries again.
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ reconcile: null, usernames_released: null, error: error.message, alerts: null })}\n`);
    } else {
      say(`reconcile failed: ${error.message}`);
    }
    return false;
  }

  const alerts = await evaluateAndDeliverAlerts({
    supabase,
    webhookUrl: target.config.alertWebhookUrl,
    log,
    retry: target.config.retry,
  });

  const stillFailing = result.ran ? result.queue.failed + result.sweep.failed : 0;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ reconcile: result, usernames_released: released, alerts })}\n`);
  }
  const lines: string[] = [];
  if (result.ran) {
    const { queue, sweep } = result;
    lines.push(
      `reconcile ran in ${result.duration_ms} ms: repair queue ${queue.due} due, ${queue.repaired} repaired, ` +
        `${queue.failed} failed, ${queue.user_deleted} user(s) deleted; sweep ${sweep.missing} missing, ` +
        `${sweep.created} created, ${sweep.failed} failed; ${result.missing_profiles} user(s) still without a profile`,
    );
    if (stillFailing > 0) {
      lines.push(`  ${stillFailing} user(s) still failing: their queue entries were pushed back and are retried when due (private.repair_queue)`);
    }
  } else {
    lines.push(`reconcile did not run: ${result.reason} (another run held the lock); nothing to do here`);
  }
  lines.push(`lapsed usernames of unconfirmed users: ${released} released`);
  lines.push(...describeAlerts(alerts, target.config.alertWebhookUrl !== undefined));
  (options.json ? (line: string) => process.stderr.write(`${line}\n`) : say)(lines.join('\n'));
  return stillFailing === 0;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const target = await resolveTarget(process.env);
  process.stderr.write(`${targetNotice(target)}\n`);
  const ctx: Context = {
    options,
    target,
    supabase: createClient(target.config),
    log: createCliLogger(target.config, 'reconcile'),
    say: (line) => (options.json ? process.stderr : process.stdout).write(`${line}\n`),
  };

  if (options.loopSeconds === undefined) return (await runOnce(ctx)) ? EXIT.ok : EXIT.failed;

  const stop = new AbortController();
  const removeInterrupt = onInterrupt(
    () => {
      process.stderr.write('Interrupted: stopping after the current run (interrupt again to stop at once)\n');
      stop.abort();
    },
    () => {
      process.stderr.write('stopped at once\n');
      process.exit(EXIT.interrupted);
    },
  );
  let runs = 0;
  let ok = true;
  try {
    process.stderr.write(`reconciling ${displayUrl(target.config.supabaseUrl)} every ${options.loopSeconds} s until Ctrl-C\n`);
    while (!stop.signal.aborted) {
      const started = Date.now();
      ok = await runOnce(ctx);
      runs++;
      await sleep(started + options.loopSeconds * 1000 - Date.now(), stop.signal);
    }
  } finally {
    removeInterrupt();
  }
  process.stderr.write(`stopped after ${runs} run(s)\n`);
  return ok ? EXIT.ok : EXIT.failed;
}

runMain('reconcile', USAGE, main);
