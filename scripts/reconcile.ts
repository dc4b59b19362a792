// `npm run reconcile`: public.reconcile_profiles() over the Supabase API, batch after batch until
// nothing is due (the due repair-queue entries, then the users known to be without a profile),
// one batch of public.release_lapsed_usernames() (usernames of unconfirmed users past
// private.settings.unconfirmed_username_ttl), then the alerts: evaluate_alerts() and delivery of
// every due transition to ALERT_WEBHOOK_URL. With --loop it repeats until Ctrl-C. Safe next to
// the scheduled job (pg_cron, or `npm start`'s scheduler) or another copy: one batch at a time
// wins the lock.
import { evaluateAndDeliverAlerts, type AlertRun } from '../shared/alerts.ts';
import type { Logger } from '../shared/logger.ts';
import { RpcError } from '../shared/rpc.ts';
import type { ReconcileBatch, RepairCounts } from '../shared/rpc-results.ts';
import type { SupabaseClient } from '../shared/supabase-client.ts';
import {
  callRpc, createCliLogger, createClient, displayUrl, EXIT, intFlag, onInterrupt, parseFlags, positiveNumberFlag, resolveTarget,
  runMain, sleep, targetNotice, type Target,
} from './cli.ts';

const DEFAULT_BATCH_SIZE = 500;
const MAX_BATCH_SIZE = 10_000;
/** A full safety-net scan checks this many auth users per call. */
const FULL_SCAN_BATCH = 50_000;
/** A scheduled step holds the pass for one short batch: polling at this pace waits little past it. */
const BUSY_STEP_POLL_MS = 200;

const USAGE = `usage: npm run reconcile -- [--batch-size N] [--max-batches N] [--full-scan] [--loop SECONDS] [--json]

Runs reconcile_profiles() over the Supabase API of SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY
(or SUPABASE_SECRET_KEYS); without SUPABASE_URL, the local stack on http://127.0.0.1:54321.
Batch after batch until nothing is due, it retries the repair-queue entries that are due, then
creates the profiles of the users known to be without one (signed up while the trigger was
switched off, profile deleted, found by the census scan), it releases the usernames of users
who never confirmed and whose claim has lapsed, and it brings the profile emails of the next
slice of profiles (and of any user whose email copy failed) in line with auth.users.
Then it evaluates the alerts and posts each transition to ALERT_WEBHOOK_URL (without it, the
transitions wait in the outbox).

  --batch-size N    users per batch (each batch is one short transaction), 1-${MAX_BATCH_SIZE} (default ${DEFAULT_BATCH_SIZE});
                    also the number of lapsed usernames released
  --max-batches N   stop after N batches even if more is due (default: until nothing is due)
  --full-scan       first check every auth user for a missing profile (the census's safety net,
                    which the schedule otherwise walks a slice per run), so the count is of all users,
                    and check every profile's email instead of one slice
  --loop SECONDS    run again every SECONDS until Ctrl-C (which lets the current run finish)
  --json            one JSON object per run on stdout, and nothing else there
  --help            show this help

Exit status: 0 it ran and nothing failed, or another reconcile held the lock; 1 users still
failed (they wait in the repair queue), or the call failed; 2 bad arguments.`;

interface Options {
  help: boolean;
  batchSize: number;
  maxBatches: number | undefined;
  fullScan: boolean;
  loopSeconds: number | undefined;
  json: boolean;
}

function parseOptions(argv: string[]): Options {
  const values = parseFlags(argv, {
    'batch-size': { type: 'string' },
    'max-batches': { type: 'string' },
    'full-scan': { type: 'boolean' },
    loop: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  });
  return {
    help: values.help === true,
    batchSize: intFlag('batch-size', values['batch-size'], DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE)!,
    maxBatches: intFlag('max-batches', values['max-batches'], undefined, 1, 1_000_000),
    fullScan: values['full-scan'] === true,
    loopSeconds: positiveNumberFlag('loop', values.loop),
    json: values.json === true,
  };
}

type BatchResult = ReconcileBatch;

type ReconcileResult =
  | (RepairCounts & { ran: true; batches: number; more: boolean; missing_profiles: number; queued: number; scanned: number | null; duration_ms: number })
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

/** The census's safety net from the start to the end of auth.users; how many users it checked. */
async function fullScan(ctx: Context): Promise<{ scanned: number; found: number }> {
  const { supabase, target, log } = ctx;
  let scanned = 0;
  let found = 0;
  let restart = true;
  for (;;) {
    const step = await callRpc(supabase, 'profile_census_step', { p_batch: FULL_SCAN_BATCH, p_restart: restart }, target.config.retry, log);
    if (!step.ran) {
      // The scheduled run is stepping right now; it is short.
      await sleep(BUSY_STEP_POLL_MS);
      continue;
    }
    restart = false;
    scanned += step.scanned;
    found += step.found;
    if (step.pass_completed) return { scanned, found };
  }
}

/** Email drift: one step of sync_profile_emails_step, or with --full-scan a whole pass. */
async function syncEmails(ctx: Context): Promise<{ checked: number; fixed: number }> {
  const { options, supabase, target, log } = ctx;
  let checked = 0;
  let fixed = 0;
  let restart = options.fullScan;
  for (;;) {
    const step = await callRpc(
      supabase,
      'sync_profile_emails_step',
      { p_batch: options.fullScan ? FULL_SCAN_BATCH : null, p_restart: restart },
      target.config.retry,
      log,
    );
    if (!step.ran) {
      // The scheduled run is stepping right now; without --full-scan its step is this run's.
      if (!options.fullScan) return { checked, fixed };
      await sleep(BUSY_STEP_POLL_MS);
      continue;
    }
    restart = false;
    checked += step.scanned;
    fixed += step.fixed;
    if (!options.fullScan || step.pass_completed) return { checked, fixed };
  }
}

/** reconcile_profiles batch after batch until nothing more is due (or --max-batches). */
async function reconcileAll(ctx: Context): Promise<ReconcileResult> {
  const { options, supabase, target, log } = ctx;
  const started = Date.now();
  const scanned = options.fullScan ? (await fullScan(ctx)).scanned : null;
  const totals: RepairCounts = {
    queue: { due: 0, repaired: 0, failed: 0, user_deleted: 0, probed: 0, recovered: 0, made_due: 0 },
    sweep: { missing: 0, created: 0, failed: 0 },
  };
  let batches = 0;
  let last: BatchResult;
  let lastRan: Extract<BatchResult, { ran: true }> | undefined;
  do {
    last = await callRpc(
      supabase,
      'reconcile_profiles',
      // The census's slice once per run (a full scan above already covered it).
      { p_batch_size: options.batchSize, p_scan: batches === 0 && !options.fullScan },
      target.config.retry,
      log,
    );
    if (!last.ran) {
      if (batches === 0) return last;
      break;
    }
    batches++;
    lastRan = last;
    for (const key of Object.keys(totals.queue) as Array<keyof RepairCounts['queue']>) totals.queue[key] += last.queue[key];
    for (const key of Object.keys(totals.sweep) as Array<keyof RepairCounts['sweep']>) totals.sweep[key] += last.sweep[key];
  } while (last.more && (options.maxBatches === undefined || batches < options.maxBatches));
  return {
    ran: true,
    batches,
    ...totals,
    // A batch that lost the lock to another run leaves the rest to that run.
    more: last.ran ? last.more : true,
    missing_profiles: lastRan!.missing_profiles,
    queued: lastRan!.queued,
    scanned,
    duration_ms: Date.now() - started,
  };
}

/** One reconcile (every batch due) and one alert pass; true unless users still failed. */
async function runOnce(ctx: Context): Promise<boolean> {
  const { options, target, supabase, log, say } = ctx;
  let result: ReconcileResult;
  let released: number;
  let emails: { checked: number; fixed: number };
  try {
    result = await reconcileAll(ctx);
    // Not inside reconcile_profiles: it reads all of auth.users, too much for every scheduled
    // run, and nothing waits for it: a name somebody asks for is released on the spot.
    released = await callRpc(supabase, 'release_lapsed_usernames', { p_batch: options.batchSize }, target.config.retry, log);
    emails = await syncEmails(ctx);
  } catch (error) {
    if (!(error instanceof RpcError) || options.loopSeconds === undefined) throw error;
    // In a loop, one failed call is reported and the next tick tries again.
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ reconcile: null, usernames_released: null, emails: null, error: error.message, alerts: null })}\n`);
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
    process.stdout.write(`${JSON.stringify({ reconcile: result, usernames_released: released, emails, alerts })}\n`);
  }
  const lines: string[] = [];
  if (result.ran) {
    const { queue, sweep } = result;
    if (result.scanned !== null) lines.push(`full scan: checked ${result.scanned} auth user(s) for a missing profile`);
    lines.push(
      `reconcile ran ${result.batches} batch(es) in ${result.duration_ms} ms: repair queue ${queue.due} due, ${queue.repaired} repaired, ` +
        `${queue.failed} failed, ${queue.user_deleted} user(s) deleted; sweep ${sweep.missing} missing, ` +
        `${sweep.created} created, ${sweep.failed} failed; ${result.missing_profiles + result.queued} user(s) still without a profile ` +
        `(${result.queued} in the repair queue, ${result.missing_profiles} not)`,
    );
    if (result.more) lines.push('  more is due: stopped by --max-batches, or another run took over; run again to finish');
    if (stillFailing > 0) {
      lines.push(`  ${stillFailing} user(s) still failing: their queue entries were pushed back and are retried when due (private.repair_queue)`);
    }
  } else {
    lines.push(`reconcile did not run: ${result.reason} (another run held the lock); nothing to do here`);
  }
  lines.push(`lapsed usernames of unconfirmed users: ${released} released`);
  lines.push(`profile emails: ${emails.fixed} brought in line with auth.users (${emails.checked} profile(s) checked)`);
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
