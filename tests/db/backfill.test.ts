import { describe, expect, it } from 'vitest';
import type { BackfillBatch as Batch } from '../../shared/profile-contract.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { bulkSignUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

async function backfillBatch(
  batchSize: number,
  after: string | null,
  dryRun: boolean,
): Promise<Batch> {
  return await db().asRole(
    'service_role',
    {},
    async (client) => {
      const { rows } = await client.query<{ r: Batch }>(
        'select public.backfill_missing_profiles($1, $2, $3) as r',
        [batchSize, after, dryRun],
      );
      return rows[0]!.r;
    },
    { commit: true },
  );
}

async function backfillAll(batchSize: number, dryRun: boolean): Promise<Batch[]> {
  const batches: Batch[] = [];
  let after: string | null = null;
  for (;;) {
    const batch = await backfillBatch(batchSize, after, dryRun);
    batches.push(batch);
    if (batch.done) return batches;
    after = batch.last_user_id;
  }
}

const sum = (batches: Batch[], key: 'scanned' | 'missing' | 'created' | 'failed') =>
  batches.reduce((total, b) => total + b[key], 0);

async function count(sql: string): Promise<number> {
  return (await db().one<{ n: number }>(`select count(*)::int as n from ${sql}`)).n;
}

describe('backfill_missing_profiles', () => {
  it('rejects a batch size outside 1..10000 and a null dry-run flag with 22023', async () => {
    await expect(backfillBatch(0, null, false)).rejects.toMatchObject({
      code: '22023',
      message: 'p_batch_size must be between 1 and 10000 (got 0)',
    });
    await expect(backfillBatch(10001, null, false)).rejects.toMatchObject({ code: '22023' });
    await expect(
      db().query('select public.backfill_missing_profiles(10, null, null)'),
    ).rejects.toMatchObject({ code: '22023', message: 'p_dry_run must be true or false' });
  });

  it('on 3,000 users created with the trigger off: a dry run counts them all and writes nothing', async () => {
    // Usernames repeat every 700 users, so batches meet names taken inside and across batches.
    const ids = await withTriggerOff(db(), () =>
      bulkSignUpAsSupabaseAuth(db(), 3000, {
        metadataSql:
          `jsonb_build_object('full_name', 'User ' || n, 'username', 'user_' || (n % 700))`,
      }));
    expect(ids).toHaveLength(3000);
    const auditBefore = await count('private.audit_logs');

    const batches = await backfillAll(500, true);
    expect(batches).toHaveLength(7);
    expect(batches.map((b) => b.scanned)).toEqual([500, 500, 500, 500, 500, 500, 0]);
    expect(sum(batches, 'missing')).toBe(3000);
    expect(sum(batches, 'created')).toBe(0);
    expect(batches.every((b) => b.dry_run)).toBe(true);
    expect(batches[5]!.last_user_id).toBe(ids[2999]);
    expect(batches[6]).toMatchObject({ scanned: 0, last_user_id: null, done: true });
    expect(await count('public.user_profiles')).toBe(0);
    expect(await count('private.audit_logs')).toBe(auditBefore);
  });

  it('pages through them all, leaves none missing, and keeps usernames unique', async () => {
    const batches = await backfillAll(500, false);
    expect(sum(batches, 'scanned')).toBe(3000);
    expect(sum(batches, 'missing')).toBe(3000);
    expect(sum(batches, 'created')).toBe(3000);
    expect(sum(batches, 'failed')).toBe(0);
    expect(
      await count(
        'auth.users u where not exists (select 1 from public.user_profiles p where p.user_id = u.id)',
      ),
    ).toBe(0);
    expect(await count(`public.user_profiles where created_via = 'backfill'`)).toBe(3000);
    expect(await count('public.user_profiles where username is not null')).toBe(700);
    expect(await count(`private.audit_logs where source = 'backfill' and outcome = 'created'`))
      .toBe(3000);
    expect(
      await count(
        `private.audit_logs where source = 'backfill' and details -> 'dropped' ->> 'username' = 'taken'`,
      ),
    ).toBe(2300);
    const { rows } = await db().query(
      `select full_name from public.user_profiles where full_name = 'User 42'`,
    );
    expect(rows).toEqual([{ full_name: 'User 42' }]);
  });

  it('is idempotent: a second pass finds nothing missing and creates nothing', async () => {
    const batches = await backfillAll(1000, false);
    expect(sum(batches, 'scanned')).toBe(3000);
    expect(sum(batches, 'missing')).toBe(0);
    expect(sum(batches, 'created')).toBe(0);
  });

  it('creates each profile once when two backfills and ensure_user_profile callers run at the same time', async () => {
    const ids = await withTriggerOff(
      db(),
      () => bulkSignUpAsSupabaseAuth(db(), 1200, { emailPrefix: 'concurrent-' }),
    );
    const ensureCalls = Promise.all(
      ids.filter((_, i) => i % 6 === 0).map((id) =>
        db().asRole(
          'service_role',
          {},
          async (c) =>
            (await c.query('select public.ensure_user_profile($1) as r', [id])).rows[0].r,
          { commit: true },
        )
      ),
    );
    const [a, b, ensured] = await Promise.all([
      backfillAll(100, false),
      backfillAll(300, false),
      ensureCalls,
    ]);
    const createdByEnsure = ensured.filter((r) => r.outcome === 'created').length;
    expect(sum(a, 'created') + sum(b, 'created') + createdByEnsure).toBe(1200);
    expect(
      await count(
        'auth.users u where not exists (select 1 from public.user_profiles p where p.user_id = u.id)',
      ),
    ).toBe(0);
    expect(await count('public.user_profiles')).toBe(4200);
  });

  it('creates the rest of a batch when some rows fail, recording each failure in audit and queue', async () => {
    const ids = await withTriggerOff(
      db(),
      () => bulkSignUpAsSupabaseAuth(db(), 50, { emailPrefix: 'reject-me-' }),
    );
    const rejected = ids.slice(0, 5);
    await db().query(
      `alter table public.user_profiles add constraint hostile_some check (user_id <> all ($$${
        '{' + rejected.join(',') + '}'
      }$$::uuid[])) not valid`,
    );
    try {
      const batches = await backfillAll(10000, false);
      expect(sum(batches, 'missing')).toBe(50);
      expect(sum(batches, 'created')).toBe(45);
      expect(sum(batches, 'failed')).toBe(5);
      const { rows } = await db().query(
        `select count(*)::int as n from private.repair_queue where user_id = any($1) and resolved_at is null and sqlstate = '23514'`,
        [rejected],
      );
      expect(rows).toEqual([{ n: 5 }]);
      expect(await count(`private.audit_logs where source = 'backfill' and outcome = 'failed'`))
        .toBe(5);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_some');
    }
    const retry = await backfillAll(10000, false);
    expect(sum(retry, 'created')).toBe(5);
    expect(
      await count(
        `private.repair_queue where user_id = any('{${
          rejected.join(',')
        }}'::uuid[]) and resolution = 'backfill'`,
      ),
    ).toBe(5);
  });
});

describe('backfill_missing_profiles at scale', () => {
  it('reads user_profiles only through its indexes and auth.users only by key range, also with generic plans', async () => {
    // Users who already have profiles (usernames scale_0 .. scale_1999), then users without one:
    // half of them ask for a name an existing profile holds, the rest for none.
    await bulkSignUpAsSupabaseAuth(db(), 2000, {
      metadataSql: `jsonb_build_object('username', 'scale_' || n)`,
      emailPrefix: 'scale-old-',
    });
    const missing = await withTriggerOff(db(), () =>
      bulkSignUpAsSupabaseAuth(db(), 600, {
        metadataSql:
          `case when n % 2 = 0 then jsonb_build_object('username', 'SCALE_' || n) else '{}'::jsonb end`,
        emailPrefix: 'scale-new-',
      }));
    const users = await count('auth.users');

    await db().asRole('service_role', {}, async (client) => {
      // A generic plan is what a long run ends up with: it must not turn a batch into a scan.
      await client.query('set local plan_cache_mode = force_generic_plan');
      // Counters this connection has not flushed yet show up as this transaction's: take a baseline.
      const reads = async () =>
        (await client.query(
          `select (select seq_scan from pg_stat_xact_user_tables where relid = 'public.user_profiles'::regclass)::int as profile_seq_scans,
                pg_stat_get_xact_tuples_returned('auth.users_pkey'::regclass)::int as user_key_reads`,
        )).rows[0] as { profile_seq_scans: number; user_key_reads: number };
      const before = await reads();
      let after: string | null = null;
      let created = 0;
      for (;;) {
        const { rows } = await client.query<{ r: Batch }>(
          'select public.backfill_missing_profiles(100, $1, false) as r',
          [after],
        );
        const batch: Batch = rows[0]!.r;
        created += batch.created;
        if (batch.done) break;
        after = batch.last_user_id;
      }
      expect(created).toBe(600);
      const done = await reads();
      expect(done.profile_seq_scans - before.profile_seq_scans).toBe(0);
      // A few key reads per user, where a scan from the start of the index in every batch would
      // read about users² / (2 × 100) of them (over 200,000 here).
      expect(done.user_key_reads - before.user_key_reads).toBeLessThanOrEqual(3 * users);
    }, { commit: true });

    const { rows: names } = await db().query(
      `select count(*) filter (where p.username is null)::int as without_name,
              count(*) filter (where a.details -> 'dropped' ->> 'username' = 'taken')::int as taken
         from public.user_profiles p join private.audit_logs a on a.user_id = p.user_id and a.source = 'backfill'
        where p.user_id = any ($1)`,
      [missing],
    );
    expect(names).toEqual([{ without_name: 600, taken: 300 }]);
  });
});
