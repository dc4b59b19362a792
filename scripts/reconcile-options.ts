// The flags of `npm run reconcile`, checked before anything touches the network: a bad one is a
// UsageError, which main() prints with the usage and exits 2 for.
import { intFlag, parseFlags, positiveNumberFlag } from './cli-flags.ts';

const DEFAULT_BATCH_SIZE = 500;
const MAX_BATCH_SIZE = 10_000;

export const USAGE =
  `usage: npm run reconcile -- [--batch-size N] [--max-batches N] [--full-scan] [--loop SECONDS] [--json]

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

export interface ReconcileOptions {
  help: boolean;
  batchSize: number;
  maxBatches: number | undefined;
  fullScan: boolean;
  loopSeconds: number | undefined;
  json: boolean;
}

export function parseReconcileOptions(argv: string[]): ReconcileOptions {
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
