// Where `npm run backfill` starts: a new checkpoint, or with --resume the saved one. Refuses
// (exit 2) what cannot be resumed here, and a fresh start that would overwrite an unfinished run.
import type { BackfillOptions } from './backfill-options.ts';
import { type Checkpoint, CheckpointError, newCheckpoint, readCheckpoint } from './checkpoint.ts';
import { CliExit, displayUrl, EXIT, type Target } from './cli.ts';

/** The checkpoint this run starts from; refuses (exit 2) what cannot be resumed or would be lost. */
export async function startingCheckpoint(
  options: BackfillOptions,
  target: Target,
): Promise<Checkpoint | 'finished'> {
  const url = target.config.supabaseUrl;
  let existing: Checkpoint | null;
  try {
    existing = await readCheckpoint(options.checkpoint);
  } catch (error) {
    if (error instanceof CheckpointError) throw new CliExit(EXIT.usage, error.message);
    throw error;
  }
  const mode = (dryRun: boolean) => (dryRun ? 'a dry run' : 'a live run');
  if (options.resume) {
    if (!existing) {
      throw new CliExit(
        EXIT.usage,
        `--resume: there is no checkpoint at ${options.checkpoint}; start a run without --resume`,
      );
    }
    if (existing.target !== url) {
      throw new CliExit(
        EXIT.usage,
        `--resume: the checkpoint ${options.checkpoint} is for ${
          displayUrl(existing.target)
        }, not ${displayUrl(url)}: ` +
          `set SUPABASE_URL to that project to resume it, or pass another --checkpoint`,
      );
    }
    if (existing.dry_run !== options.dryRun) {
      throw new CliExit(
        EXIT.usage,
        `--resume: the checkpoint ${options.checkpoint} is of ${
          mode(existing.dry_run)
        }, and this is ${mode(options.dryRun)}: ` +
          `${
            existing.dry_run ? 'add' : 'drop'
          } --dry-run to resume it, or pass another --checkpoint`,
      );
    }
    if (existing.done) return 'finished';
    return { ...existing, last_error: null };
  }
  if (existing && !existing.done) {
    throw new CliExit(
      EXIT.usage,
      `${options.checkpoint} holds an unfinished ${existing.dry_run ? 'dry run' : 'backfill'} of ${
        displayUrl(existing.target)
      } ` +
        `(${existing.scanned} users scanned, saved ${existing.updated_at}): pass --resume to continue it, ` +
        `or delete the file (or pass another --checkpoint) to start over`,
    );
  }
  return newCheckpoint(url, options.dryRun);
}
