// The known day the dashboard's browser tests draw, and what the database says about it, so a
// test can compare every figure on the page with its source.
import type { OperationsStats } from '../../shared/rpc-results.ts';
import type { SystemStats } from '../../shared/profile-contract.ts';
import { type TestDatabase, withTriggerOff } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

/** Hostile markup as the newest 23505 failure message: the page must show it as text. */
export const XSS = '<img src=x onerror="window.__pwned = true">';

export interface SeededDay {
  /** When the oldest open repair-queue entry failed (20 minutes before the seed). */
  oldestFailedAt: Date;
  /** The two users left without a profile that nothing is repairing (signed up with the trigger off). */
  missing: string[];
  /** How many open repair-queue entries there are besides them. */
  queued: number;
  /** What the reconciler's run (before the users went missing) returned. */
  reconcile: Record<string, unknown>;
}

/**
 * A known day: attempts across the 24 hours with failures of two SQLSTATEs (the newest 23505
 * message is hostile markup), two users without a profile (signed up while the trigger was
 * switched off, so counted at once), three open repair-queue entries of other users (the oldest
 * 20 minutes old; queued, so not missing) and one resolved, a reconciler run (before the users
 * went missing), and alerts evaluated so missing_profiles and repair_queue_age fire.
 */
export async function seedKnownDay(db: TestDatabase): Promise<SeededDay> {
  await db.query(
    `delete from private.audit_logs; delete from private.alert_state; delete from private.alert_deliveries;
                  delete from private.repair_queue; delete from private.reconcile_runs`,
  );
  const now = (await db.one<{ now: Date }>('select now() as now')).now.getTime();
  const ago = (minutes: number) => new Date(now - minutes * 60_000);
  const rows: Array<[Date, string, string, number, string | null, string | null]> = [
    [ago(22 * 60), 'trigger', 'created', 4, null, null],
    [ago(16 * 60), 'trigger', 'created', 3, null, null],
    [
      ago(16 * 60),
      'register',
      'failed',
      1,
      '23505',
      'duplicate key value violates unique constraint "user_profiles_username_key"',
    ],
    [ago(9 * 60), 'ensure', 'existed', 2, null, null],
    [
      ago(9 * 60),
      'webhook',
      'failed',
      1,
      '23514',
      'new row for relation "user_profiles" violates check constraint "user_profiles_username_check"',
    ],
    [ago(3 * 60), 'register', 'created', 5, null, null],
    [ago(3 * 60), 'register', 'failed', 2, '23505', XSS],
    [ago(20), 'webhook', 'created', 2, null, null],
  ];
  for (const [at, source, outcome, n, sqlstate, message] of rows) {
    await db.query(
      `insert into private.audit_logs (occurred_at, user_id, operation, source, outcome, sqlstate, message, duration_ms)
       select $1, gen_random_uuid(), 'ensure_profile', $2, $3, $4, $5, 2.5 from generate_series(1, $6::int)`,
      [at, source, outcome, sqlstate, message, n],
    );
  }

  const reconcile = (await db.one('select public.reconcile_profiles(10, true) as r')).r;
  const missing: string[] = [];
  await withTriggerOff(db, async () => {
    for (let i = 0; i < 2; i++) missing.push(await signUpAsSupabaseAuth(db));
  });
  const oldestFailedAt = ago(20);
  await db.query(
    `insert into private.repair_queue (user_id, source, reason, sqlstate, attempts, first_failed_at, last_failed_at, resolved_at, resolution)
     values (gen_random_uuid(), 'trigger', 'seeded', '23505', 3, $1, $1, null, null),
            (gen_random_uuid(), 'trigger', 'seeded', '23505', 1, $2, $2, null, null),
            (gen_random_uuid(), 'register', 'seeded', '23514', 2, $2, $2, null, null),
            (gen_random_uuid(), 'register', 'seeded', '23514', 1, $3, $3, $2, 'reconcile')`,
    [oldestFailedAt, ago(5), ago(60)],
  );
  await db.query('select public.evaluate_alerts()');
  return { oldestFailedAt, missing, queued: 3, reconcile };
}

export async function databaseStats(db: TestDatabase, window: string): Promise<SystemStats> {
  return (await db.one<{ s: SystemStats }>(
    'select public.profile_system_stats($1::interval) as s',
    [window],
  )).s;
}

export async function databaseOperations(
  db: TestDatabase,
  window: string,
): Promise<OperationsStats> {
  return (await db.one<{ s: OperationsStats }>(
    'select public.profile_operations_stats($1::interval) as s',
    [window],
  )).s;
}

export async function databaseVerdict(db: TestDatabase): Promise<string> {
  return (await db.one<{ h: { status: string } }>('select public.profile_system_health() as h')).h
    .status;
}
