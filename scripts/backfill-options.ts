// The flags of `npm run backfill`, checked before anything touches the network: a bad one is a
// UsageError, which main() prints with the usage and exits 2 for.
import path from 'node:path';
import { intFlag, parseFlags, positiveNumberFlag, UsageError } from './cli-flags.ts';

const DEFAULT_BATCH_SIZE = 500;
const MAX_BATCH_SIZE = 10_000;
const DEFAULT_CHECKPOINT = path.join('.data', 'backfill-checkpoint.json');

export const USAGE =
  `usage: npm run backfill -- [--dry-run] [--yes] [--batch-size N] [--limit N] [--max-rate R]
                            [--resume] [--checkpoint FILE] [--json]

Gives every auth user without a profile one, in batches, through backfill_missing_profiles()
over the Supabase API of SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEYS).
Without SUPABASE_URL it targets the local stack on http://127.0.0.1:54321.

  --dry-run          count the users without a profile; write nothing
  --yes              skip the confirmation a live run asks for (required off a terminal)
  --batch-size N     users scanned per batch, 1-${MAX_BATCH_SIZE} (default ${DEFAULT_BATCH_SIZE})
  --limit N          stop once N users have been scanned (a resumed run counts its earlier batches)
  --max-rate R       at most R batches per second, e.g. 2 or 0.5 (default: as fast as it goes)
  --resume           continue the run saved in the checkpoint, after its last batch, keeping its counts
  --checkpoint FILE  where progress is saved after every batch (default ${DEFAULT_CHECKPOINT})
  --json             print one JSON summary on stdout and nothing else there
  --help             show this help

Exit status: 0 done; 1 users failed or a batch kept failing (checkpoint kept: fix, then --resume);
2 bad arguments; 130 interrupted by Ctrl-C (checkpoint saved: --resume continues).`;

export interface BackfillOptions {
  help: boolean;
  dryRun: boolean;
  yes: boolean;
  batchSize: number;
  limit: number | undefined;
  maxRate: number | undefined;
  resume: boolean;
  checkpoint: string;
  json: boolean;
}

export function parseBackfillOptions(argv: string[]): BackfillOptions {
  const values = parseFlags(argv, {
    'dry-run': { type: 'boolean' },
    yes: { type: 'boolean' },
    'batch-size': { type: 'string' },
    limit: { type: 'string' },
    'max-rate': { type: 'string' },
    resume: { type: 'boolean' },
    checkpoint: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  });
  const checkpoint = values.checkpoint ?? DEFAULT_CHECKPOINT;
  if (checkpoint.trim() === '') throw new UsageError('--checkpoint must name a file');
  return {
    help: values.help === true,
    dryRun: values['dry-run'] === true,
    yes: values.yes === true,
    batchSize: intFlag('batch-size', values['batch-size'], DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE)!,
    limit: intFlag('limit', values.limit, undefined, 1, Number.MAX_SAFE_INTEGER),
    maxRate: positiveNumberFlag('max-rate', values['max-rate']),
    resume: values.resume === true,
    checkpoint,
    json: values.json === true,
  };
}
