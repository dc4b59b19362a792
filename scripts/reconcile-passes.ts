// The database passes of one `npm run reconcile` run: the census's full scan (--full-scan),
// reconcile_profiles batch after batch until nothing is due, and the profile-email sync.
import type { Logger } from '../shared/logger.ts';
import type { ReconcileBatch, RepairCounts } from '../shared/rpc-results.ts';
import type { SupabaseClient } from '../shared/supabase-client.ts';
import { callRpc, sleep, type Target } from './cli.ts';
import type { ReconcileOptions } from './reconcile-options.ts';

/** A full safety-net scan checks this many auth users per call. */
const FULL_SCAN_BATCH = 50_000;
/** A scheduled step holds the pass for one short batch: polling at this pace waits little past it. */
const BUSY_STEP_POLL_MS = 200;

type BatchResult = ReconcileBatch;

export type ReconcileResult =
  | (RepairCounts & {
    ran: true;
    batches: number;
    more: boolean;
    missing_profiles: number;
    queued: number;
    scanned: number | null;
    duration_ms: number;
  })
  | { ran: false; reason: string };

export interface ReconcileContext {
  options: ReconcileOptions;
  target: Target;
  supabase: SupabaseClient;
  log: Logger;
  say: (line: string) => void;
}

/** The census's safety net from the start to the end of auth.users; how many users it checked. */
async function fullScan(ctx: ReconcileContext): Promise<{ scanned: number; found: number }> {
  const { supabase, target, log } = ctx;
  let scanned = 0;
  let found = 0;
  let restart = true;
  for (;;) {
    const step = await callRpc(
      supabase,
      'profile_census_step',
      { p_batch: FULL_SCAN_BATCH, p_restart: restart },
      target.config.retry,
      log,
    );
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
export async function syncEmails(
  ctx: ReconcileContext,
): Promise<{ checked: number; fixed: number }> {
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
export async function reconcileAll(ctx: ReconcileContext): Promise<ReconcileResult> {
  const { options, supabase, target, log } = ctx;
  const started = Date.now();
  const scanned = options.fullScan ? (await fullScan(ctx)).scanned : null;
  const totals: RepairCounts = {
    queue: {
      due: 0,
      repaired: 0,
      failed: 0,
      user_deleted: 0,
      probed: 0,
      recovered: 0,
      made_due: 0,
    },
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
    for (const key of Object.keys(totals.queue) as Array<keyof RepairCounts['queue']>) {
      totals.queue[key] += last.queue[key];
    }
    for (const key of Object.keys(totals.sweep) as Array<keyof RepairCounts['sweep']>) {
      totals.sweep[key] += last.sweep[key];
    }
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
