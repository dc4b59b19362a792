// The end of `npm run backfill`: the JSON summary (--json) and the lines for a person, saying what
// this invocation did, what the whole run (since the checkpoint's start) did, and how to resume.
import type { BackfillOptions } from './backfill-options.ts';
import type { Checkpoint } from './checkpoint.ts';
import { displayUrl, formatDuration, type Target } from './cli.ts';
import { rate } from './progress.ts';

export type Status = 'done' | 'limit' | 'interrupted' | 'batch_failed';

/** A run as it stopped: its checkpoint holds the whole run, here only this invocation's batches. */
export interface FinishedRun {
  status: Status;
  options: BackfillOptions;
  target: Target;
  checkpoint: Checkpoint;
  here: { scanned: number; missing: number; created: number; failed: number };
  /** The batch that kept failing: the cursor it started after, and the error. */
  failure: { p_after: string | null; message: string } | null;
  startedAt: number;
  resumeCommand: string;
}

export function backfillReport(run: FinishedRun) {
  const { status, options, target, checkpoint, here, failure, startedAt, resumeCommand } = run;
  const mode = options.dryRun ? 'dry run' : 'live run';
  const durationMs = Date.now() - startedAt;
  const usersPerSecond = Math.round(rate({ scannedHere: here.scanned, startedAt }) * 10) / 10;
  const resumable = status !== 'done';
  const summary = {
    status,
    target: displayUrl(target.config.supabaseUrl),
    dry_run: options.dryRun,
    resumed: options.resume,
    scanned: here.scanned,
    missing: here.missing,
    created: here.created,
    failed: here.failed,
    duration_ms: durationMs,
    users_per_second: usersPerSecond,
    total: {
      scanned: checkpoint.scanned,
      missing: checkpoint.missing,
      created: checkpoint.created,
      failed: checkpoint.failed,
    },
    last_user_id: checkpoint.last_user_id,
    checkpoint: options.checkpoint,
    error: failure,
    resume_command: resumable ? resumeCommand : null,
  };

  const headline: Record<Status, string> = {
    done: 'Backfill finished',
    limit: `Backfill stopped at --limit ${options.limit}`,
    interrupted: 'Backfill interrupted',
    batch_failed: 'Backfill stopped: a batch kept failing',
  };
  const lines = [
    `${headline[status]} (${mode}) on ${displayUrl(target.config.supabaseUrl)}.`,
    `  scanned ${here.scanned}, missing ${here.missing}, created ${here.created}, failed ${here.failed}`,
    `  duration ${formatDuration(durationMs)}, ${usersPerSecond} users/s`,
  ];
  if (options.resume) {
    lines.push(
      `  whole run since ${checkpoint.started_at}: scanned ${checkpoint.scanned}, missing ${checkpoint.missing}, created ${checkpoint.created}, failed ${checkpoint.failed}`,
    );
  }
  if (options.dryRun) {
    lines.push(`  dry run: nothing was written; ${here.missing} user(s) would get a profile`);
  }
  if (checkpoint.failed > 0) {
    lines.push(
      `  ${checkpoint.failed} user(s) failed: each is in private.audit_logs and the repair queue, and \`npm run reconcile\` retries them`,
    );
  }
  if (failure) {
    lines.push(
      `  the batch after ${failure.p_after ?? 'the first user'} failed: ${failure.message}`,
    );
    if (target.local) lines.push('  (is the local stack running? `npm start` serves it)');
  }
  if (resumable) {
    lines.push(`  checkpoint saved: ${options.checkpoint}`);
    lines.push(`Resume with: ${resumeCommand}`);
  }
  return { summary, lines };
}
