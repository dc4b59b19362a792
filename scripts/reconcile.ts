// `npm run reconcile`: public.reconcile_profiles() over the Supabase API, batch after batch until
// nothing is due (the due repair-queue entries, then the users known to be without a profile),
// one batch of public.release_lapsed_usernames() (usernames of unconfirmed users past
// private.settings.unconfirmed_username_ttl), then the alerts: evaluate_alerts() and delivery of
// every due transition to ALERT_WEBHOOK_URL. With --loop it repeats until Ctrl-C. Safe next to
// the scheduled job (pg_cron, or `npm start`'s scheduler) or another copy: one batch at a time
// wins the lock.
import { type AlertRun, evaluateAndDeliverAlerts } from '../shared/alerts.ts';
import { RpcError } from '../shared/rpc.ts';
import {
  callRpc,
  createClient,
  createCliLogger,
  displayUrl,
  EXIT,
  onInterrupt,
  resolveTarget,
  runMain,
  sleep,
  targetNotice,
} from './cli.ts';
import { parseReconcileOptions, USAGE } from './reconcile-options.ts';
import {
  reconcileAll,
  type ReconcileContext,
  type ReconcileResult,
  syncEmails,
} from './reconcile-passes.ts';

function describeAlerts(alerts: AlertRun, webhookConfigured: boolean): string[] {
  const list = alerts.transitions.length > 0
    ? ` (${alerts.transitions.map((t) => `${t.name} ${t.state}`).join(', ')})`
    : '';
  if (alerts.status === null) return ['alerts: could not be evaluated (see the log above)'];
  if (!webhookConfigured) {
    return [
      `no ALERT_WEBHOOK_URL: ${alerts.transitions.length} transitions kept in the outbox${list}`,
    ];
  }
  const lines = [
    `alerts: status ${alerts.status}; ${alerts.transitions.length} transition(s)${list}; ` +
    `${alerts.delivered} delivered, ${alerts.failed} delivery failure(s)`,
  ];
  if (alerts.failed > 0) {
    lines.push(
      '  failed deliveries stay in the outbox with their error and are retried later (see the log above)',
    );
  }
  return lines;
}

/** One reconcile (every batch due) and one alert pass; true unless users still failed. */
async function runOnce(ctx: ReconcileContext): Promise<boolean> {
  const { options, target, supabase, log, say } = ctx;
  let result: ReconcileResult;
  let released: number;
  let emails: { checked: number; fixed: number };
  try {
    result = await reconcileAll(ctx);
    // Not inside reconcile_profiles: it reads all of auth.users, too much for every scheduled
    // run, and nothing waits for it: a name somebody asks for is released on the spot.
    released = await callRpc(
      supabase,
      'release_lapsed_usernames',
      { p_batch: options.batchSize },
      target.config.retry,
      log,
    );
    emails = await syncEmails(ctx);
  } catch (error) {
    if (!(error instanceof RpcError) || options.loopSeconds === undefined) throw error;
    // In a loop, one failed call is reported and the next tick tries again.
    if (options.json) {
      process.stdout.write(
        `${
          JSON.stringify({
            reconcile: null,
            usernames_released: null,
            emails: null,
            error: error.message,
            alerts: null,
          })
        }\n`,
      );
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
    process.stdout.write(
      `${JSON.stringify({ reconcile: result, usernames_released: released, emails, alerts })}\n`,
    );
  }
  const lines: string[] = [];
  if (result.ran) {
    const { queue, sweep } = result;
    if (result.scanned !== null) {
      lines.push(`full scan: checked ${result.scanned} auth user(s) for a missing profile`);
    }
    lines.push(
      `reconcile ran ${result.batches} batch(es) in ${result.duration_ms} ms: repair queue ${queue.due} due, ${queue.repaired} repaired, ` +
        `${queue.failed} failed, ${queue.user_deleted} user(s) deleted; sweep ${sweep.missing} missing, ` +
        `${sweep.created} created, ${sweep.failed} failed; ${
          result.missing_profiles + result.queued
        } user(s) still without a profile ` +
        `(${result.queued} in the repair queue, ${result.missing_profiles} not)`,
    );
    if (result.more) {
      lines.push(
        '  more is due: stopped by --max-batches, or another run took over; run again to finish',
      );
    }
    if (stillFailing > 0) {
      lines.push(
        `  ${stillFailing} user(s) still failing: their queue entries were pushed back and are retried when due (private.repair_queue)`,
      );
    }
  } else {
    lines.push(
      `reconcile did not run: ${result.reason} (another run held the lock); nothing to do here`,
    );
  }
  lines.push(`lapsed usernames of unconfirmed users: ${released} released`);
  lines.push(
    `profile emails: ${emails.fixed} brought in line with auth.users (${emails.checked} profile(s) checked)`,
  );
  lines.push(...describeAlerts(alerts, target.config.alertWebhookUrl !== undefined));
  (options.json ? (line: string) => process.stderr.write(`${line}\n`) : say)(lines.join('\n'));
  return stillFailing === 0;
}

async function main(): Promise<number> {
  const options = parseReconcileOptions(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const target = await resolveTarget(process.env);
  process.stderr.write(`${targetNotice(target)}\n`);
  const ctx: ReconcileContext = {
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
      process.stderr.write(
        'Interrupted: stopping after the current run (interrupt again to stop at once)\n',
      );
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
    process.stderr.write(
      `reconciling ${
        displayUrl(target.config.supabaseUrl)
      } every ${options.loopSeconds} s until Ctrl-C\n`,
    );
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
