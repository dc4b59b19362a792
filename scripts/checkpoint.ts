// The backfill's checkpoint: where a run got to (the last user id it scanned) and what it had
// counted, written after every batch by writing a temporary file and renaming it over the old
// one, so a crash or Ctrl-C leaves either the previous checkpoint or the new one, never half.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const count = z.number().int().min(0);

const CHECKPOINT = z.object({
  version: z.literal(1),
  /** The SUPABASE_URL the run talked to: a checkpoint is only resumed against the same project. */
  target: z.string().min(1),
  dry_run: z.boolean(),
  /** Keyset cursor: the next batch scans users with a greater id. Null before the first batch. */
  last_user_id: z.guid().nullable(),
  scanned: count,
  missing: count,
  created: count,
  failed: count,
  started_at: z.string(),
  updated_at: z.string(),
  /** True once the scan reached the last auth user. */
  done: z.boolean(),
  finished_at: z.string().nullable(),
  /** The batch that kept failing, when the run stopped on one. */
  last_error: z.object({ p_after: z.guid().nullable(), message: z.string(), at: z.string() })
    .nullable(),
});

export type Checkpoint = z.infer<typeof CHECKPOINT>;

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export function newCheckpoint(target: string, dryRun: boolean, now = new Date()): Checkpoint {
  const at = now.toISOString();
  return {
    version: 1,
    target,
    dry_run: dryRun,
    last_user_id: null,
    scanned: 0,
    missing: 0,
    created: 0,
    failed: 0,
    started_at: at,
    updated_at: at,
    done: false,
    finished_at: null,
    last_error: null,
  };
}

/** The checkpoint in file, null when there is none; a file that is not one is a CheckpointError. */
export async function readCheckpoint(file: string): Promise<Checkpoint | null> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CheckpointError(`cannot read the checkpoint ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new CheckpointError(
      `${file} is not a backfill checkpoint (not JSON): delete it or pass another --checkpoint`,
    );
  }
  const parsed = CHECKPOINT.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`)
      .join('; ');
    throw new CheckpointError(
      `${file} is not a backfill checkpoint (${problems}): delete it or pass another --checkpoint`,
    );
  }
  return parsed.data;
}

/** Atomic replace: write file.<pid>.tmp, then rename it over file (same directory, same filesystem). */
export async function writeCheckpoint(file: string, checkpoint: Checkpoint): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(checkpoint, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
