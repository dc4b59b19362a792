// `npm run backfill`: gives every auth user without a profile one, through
// public.backfill_missing_profiles() over the Supabase API, one keyset-paginated batch at a time.
// It saves a checkpoint after every batch, so Ctrl-C (or a batch that keeps failing) stops
// cleanly and `--resume` continues after the last finished batch, losing and repeating nothing.
import type { Logger } from '../shared/logger.ts';
import type { BackfillBatch } from '../shared/profile-contract.ts';
import { RpcError } from '../shared/rpc.ts';
import type { SupabaseClient } from '../shared/supabase-client.ts';
import { parseBackfillOptions, USAGE } from './backfill-options.ts';
import { backfillReport, type FinishedRun, type Status } from './backfill-report.ts';
import { startingCheckpoint } from './backfill-start.ts';
import { writeCheckpoint } from './checkpoint.ts';
import {
  callRpc,
  canDrawProgress,
  CliExit,
  confirm,
  createClient,
  createCliLogger,
  displayUrl,
  EXIT,
  isInteractive,
  onInterrupt,
  resolveTarget,
  runMain,
  shellQuote,
  sleep,
  type Target,
  targetNotice,
} from './cli.ts';
import { barProgress, lineProgress, type Progress, type ProgressState } from './progress.ts';

/** Off a terminal, one progress line per this many batches. */
const PROGRESS_EVERY_BATCHES = 10;

async function estimate(
  supabase: SupabaseClient,
  target: Target,
  log: Logger,
): Promise<{ users: number; missing: number } | null> {
  try {
    return await callRpc(supabase, 'profile_backfill_estimate', {}, target.config.retry, log);
  } catch (error) {
    if (!(error instanceof RpcError)) throw error;
    // Only the progress bar needs it: the batches report their own failures, with their cursor.
    process.stderr.write(
      `could not estimate the work (${error.message}); going on without a total\n`,
    );
    return null;
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const options = parseBackfillOptions(argv);
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const target = await resolveTarget(process.env);
  process.stderr.write(`${targetNotice(target)}\n`);
  const url = target.config.supabaseUrl;
  const say = (line: string) => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  const note = (line: string) => process.stderr.write(`${line}\n`);
  const resumeCommand = `npm run backfill -- ${
    ['--resume', ...argv.filter((a) => a !== '--resume')].map(shellQuote).join(' ')
  }`;

  const start = await startingCheckpoint(options, target);
  if (!options.dryRun && !options.yes && !isInteractive()) {
    throw new CliExit(
      EXIT.usage,
      'a live run writes profiles and needs confirmation: pass --yes (or --dry-run to only count)',
    );
  }
  if (start === 'finished') {
    say(`nothing to resume: the run saved in ${options.checkpoint} already finished`);
    return EXIT.ok;
  }
  let checkpoint = start;

  const log = createCliLogger(target.config, 'backfill');
  const supabase = createClient(target.config);
  const total = await estimate(supabase, target, log);
  const mode = options.dryRun ? 'dry run' : 'live run';
  say(
    `backfill (${mode}) on ${displayUrl(url)}: ` +
      `${
        total ? `${total.users} auth users, ${total.missing} without a profile` : 'size unknown'
      }; batches of ${options.batchSize}` +
      `${options.limit !== undefined ? `, at most ${options.limit} users` : ''}` +
      `${options.maxRate !== undefined ? `, at most ${options.maxRate} batches/s` : ''}` +
      `${
        options.resume
          ? `; resuming after ${
            checkpoint.last_user_id ?? 'the start'
          } (${checkpoint.scanned} users scanned so far)`
          : ''
      }`,
  );

  if (!options.dryRun && !options.yes) {
    const ok = await confirm(
      `Create the missing profiles (about ${total?.missing ?? 'an unknown number'}) on ${
        displayUrl(url)
      }? [y/N] `,
    );
    if (!ok) {
      note('aborted: nothing was written');
      return EXIT.failed;
    }
  }

  // The run exists from here on: even a Ctrl-C before the first batch leaves something to resume.
  await writeCheckpoint(options.checkpoint, checkpoint);

  const startedAt = Date.now();
  const here = { scanned: 0, missing: 0, created: 0, failed: 0, batches: 0 };
  const state = (): ProgressState => ({
    scanned: checkpoint.scanned,
    missing: checkpoint.missing,
    created: checkpoint.created,
    failed: checkpoint.failed,
    scannedHere: here.scanned,
    startedAt,
    batches: here.batches,
  });
  const progress: Progress = canDrawProgress() && !options.json
    ? barProgress(total?.users ?? null, state(), options.dryRun)
    : lineProgress(total?.users ?? null, PROGRESS_EVERY_BATCHES, say);

  const stop = new AbortController();
  const removeInterrupt = onInterrupt(
    () => {
      progress.stop();
      note(
        'Ctrl-C: finishing the current batch, then saving the checkpoint (Ctrl-C again to stop at once)',
      );
      stop.abort();
    },
    () => {
      note(
        `stopped at once: ${options.checkpoint} holds the last finished batch (the one in flight may have committed too: ` +
          `resuming scans it again, harmlessly)\nResume with: ${resumeCommand}`,
      );
      process.exit(EXIT.interrupted);
    },
  );

  let status: Status;
  let failure: FinishedRun['failure'] = null;
  try {
    for (;;) {
      if (stop.signal.aborted) {
        status = 'interrupted';
        break;
      }
      if (options.limit !== undefined && checkpoint.scanned >= options.limit) {
        status = 'limit';
        break;
      }
      const size = options.limit === undefined
        ? options.batchSize
        : Math.min(options.batchSize, options.limit - checkpoint.scanned);
      const pAfter = checkpoint.last_user_id;
      const batchStartedAt = Date.now();
      let result: BackfillBatch;
      try {
        result = await callRpc(
          supabase,
          'backfill_missing_profiles',
          { p_batch_size: size, p_after: pAfter, p_dry_run: options.dryRun },
          target.config.retry,
          log,
        );
      } catch (error) {
        // Never skip a batch: stop here, keep the checkpoint before it, and say where it stopped.
        const message = error instanceof Error ? error.message : String(error);
        failure = { p_after: pAfter, message };
        const at = new Date().toISOString();
        checkpoint = {
          ...checkpoint,
          updated_at: at,
          last_error: { p_after: pAfter, message, at },
        };
        await writeCheckpoint(options.checkpoint, checkpoint);
        log.error({ p_after: pAfter, err: message }, 'batch failed');
        status = 'batch_failed';
        break;
      }
      here.batches++;
      here.scanned += result.scanned;
      here.missing += result.missing;
      here.created += result.created;
      here.failed += result.failed;
      const at = new Date().toISOString();
      checkpoint = {
        ...checkpoint,
        last_user_id: result.last_user_id ?? checkpoint.last_user_id,
        scanned: checkpoint.scanned + result.scanned,
        missing: checkpoint.missing + result.missing,
        created: checkpoint.created + result.created,
        failed: checkpoint.failed + result.failed,
        updated_at: at,
        done: result.done,
        finished_at: result.done ? at : null,
      };
      await writeCheckpoint(options.checkpoint, checkpoint);
      progress.update(state());
      if (result.done) {
        status = 'done';
        break;
      }
      if (options.maxRate !== undefined) {
        await sleep(batchStartedAt + 1000 / options.maxRate - Date.now(), stop.signal);
      }
    }
  } finally {
    progress.stop();
    removeInterrupt();
  }

  const { summary, lines } = backfillReport({
    status,
    options,
    target,
    checkpoint,
    here,
    failure,
    startedAt,
    resumeCommand,
  });
  if (options.json) {
    note(lines.join('\n'));
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    say(lines.join('\n'));
  }

  if (status === 'interrupted') return EXIT.interrupted;
  if (status === 'batch_failed' || checkpoint.failed > 0) return EXIT.failed;
  return EXIT.ok;
}

runMain('backfill', USAGE, main);
