// public.ensure_profile_for_caller: the one round trip ensure-profile makes first for a
// signed-in user (per-user limit, the user's standing in Supabase Auth, the existing profile),
// and what it leaves behind: audit rows for what changed or was refused, counts for repeats.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { SystemHealth, SystemStats } from '../../shared/rpc-results.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { signUpAnonymouslyAsSupabaseAuth, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

interface Verdict {
  allowed: boolean;
  retry_after_seconds: number | null;
  standing: string | null;
  profile: Record<string, unknown> | null;
  repeat: boolean | null;
}

async function asService<T>(sql: string, params: unknown[]): Promise<T> {
  return await db().asRole(
    'service_role',
    {},
    async (c) => (await c.query(sql, params)).rows[0]?.r as T,
    { commit: true },
  );
}

const guard = (userId: string, limit = 30, windowSeconds = 3600, requestId: string | null = null) =>
  asService<Verdict>('select public.ensure_profile_for_caller($1, $2, $3, $4) as r', [
    userId,
    limit,
    windowSeconds,
    requestId,
  ]);

/** Counted repeats are per fixed hour: keep a test's calls inside one hour. */
async function clearOfHourEdge(): Promise<void> {
  const intoHour = (Date.now() / 1000) % 3600;
  if (intoHour > 3590) await sleep((3601 - intoHour) * 1000);
}

async function auditRows(userId: string) {
  const { rows } = await db().query(
    `select outcome, request_id, details from private.audit_logs where user_id = $1 and source = 'ensure' order by id`,
    [userId],
  );
  return rows;
}

async function profileOf(userId: string): Promise<Record<string, unknown>> {
  return (await db().one('select to_jsonb(p) as p from public.user_profiles p where user_id = $1', [
    userId,
  ])).p;
}

async function repeatsOf(userId: string): Promise<number[]> {
  const { rows } = await db().query<{ repeats: number }>(
    `select repeats from private.existed_repeats where user_id = $1 and source = 'ensure' order by hour_start`,
    [userId],
  );
  return rows.map((r) => r.repeats);
}

describe('ensure_profile_for_caller: the per-user limit', () => {
  it('allows p_limit calls in the window and refuses the next, writing nothing for the refused one', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await guard(id, 3));
    expect(answers.map((a) => a.allowed)).toEqual([true, true, true, false]);
    expect(answers[3]).toEqual({
      allowed: false,
      retry_after_seconds: expect.any(Number),
      standing: null,
      profile: null,
      repeat: null,
    });
    expect(answers[3]!.retry_after_seconds).toBeGreaterThanOrEqual(1);
    expect(answers[3]!.retry_after_seconds).toBeLessThanOrEqual(3600);
    expect((await auditRows(id)).map((r) => r.outcome)).toEqual(['existed']);
    // Two repeats counted; the refused call is in neither place.
    expect(await repeatsOf(id)).toEqual([2]);
  });

  it('counts 30 concurrent calls of one user exactly: 10 allowed, one audit row, 9 counted repeats', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    const answers = await Promise.all(Array.from({ length: 30 }, () => guard(id, 10)));
    expect(answers.filter((a) => a.allowed)).toHaveLength(10);
    expect(answers.filter((a) => a.repeat === false)).toHaveLength(1);
    expect(answers.filter((a) => a.repeat === true)).toHaveLength(9);
    expect((await auditRows(id)).map((r) => r.outcome)).toEqual(['existed']);
    expect(await repeatsOf(id)).toEqual([9]);
  });

  it('keeps each user in a bucket of their own', async () => {
    const first = await signUpAsSupabaseAuth(db());
    const second = await signUpAsSupabaseAuth(db());
    expect((await guard(first, 1)).allowed).toBe(true);
    expect((await guard(first, 1)).allowed).toBe(false);
    expect((await guard(second, 1)).allowed).toBe(true);
    const { rows } = await db().query(
      `select bucket, sum(hits)::int as hits from private.rate_limits where bucket = any($1) group by bucket order by hits`,
      [
        [`ensure:${first}`, `ensure:${second}`],
      ],
    );
    expect(rows).toEqual([{ bucket: `ensure:${second}`, hits: 1 }, {
      bucket: `ensure:${first}`,
      hits: 2,
    }]);
  });

  it('refuses a null user, a limit below 1 and a window outside 1..86400 seconds with 22023', async () => {
    const id = randomUUID();
    await expect(guard(null as unknown as string)).rejects.toMatchObject({ code: '22023' });
    await expect(guard(id, 0)).rejects.toMatchObject({ code: '22023' });
    await expect(guard(id, 10, 0)).rejects.toMatchObject({ code: '22023' });
    await expect(guard(id, 10, 86401)).rejects.toMatchObject({ code: '22023' });
  });

  it('is executable by service_role only', async () => {
    for (const role of ['anon', 'authenticated'] as const) {
      await expect(
        db().asRole(
          role,
          { sub: randomUUID() },
          (c) => c.query('select public.ensure_profile_for_caller($1, 30, 60)', [randomUUID()]),
        ),
      ).rejects.toMatchObject({ code: '42501' });
    }
  });
});

describe("ensure_profile_for_caller: the user's standing in Supabase Auth", () => {
  const setAuthColumn = (id: string, column: 'banned_until' | 'deleted_at', value: string) =>
    db().auth.query(`update users set ${column} = ${value}, updated_at = now() where id = $1`, [
      id,
    ]);

  it('refuses a banned user with one refused audit row naming the reason, and returns no profile', async () => {
    const id = await signUpAsSupabaseAuth(db());
    await setAuthColumn(id, 'banned_until', `now() + interval '1 day'`);
    const requestId = `req-${randomUUID()}`;
    expect(await guard(id, 30, 3600, requestId)).toEqual({
      allowed: true,
      retry_after_seconds: null,
      standing: 'banned',
      profile: null,
      repeat: null,
    });
    expect(await auditRows(id)).toEqual([{
      outcome: 'refused',
      request_id: requestId,
      details: { reason: 'banned' },
    }]);
    expect(await repeatsOf(id)).toEqual([]);
  });

  it('answers a user whose ban has expired like anyone else', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    await setAuthColumn(id, 'banned_until', `now() - interval '1 minute'`);
    expect(await guard(id)).toEqual({
      allowed: true,
      retry_after_seconds: null,
      standing: 'active',
      profile: await profileOf(id),
      repeat: false,
    });
  });

  it('refuses a soft-deleted user (deleted) and an id with no auth user (missing), each with a refused row', async () => {
    const deleted = await signUpAsSupabaseAuth(db());
    await setAuthColumn(deleted, 'deleted_at', 'now()');
    const missing = randomUUID();
    expect(await guard(deleted)).toMatchObject({
      allowed: true,
      standing: 'deleted',
      profile: null,
    });
    expect(await guard(missing)).toMatchObject({
      allowed: true,
      standing: 'missing',
      profile: null,
    });
    expect(await auditRows(deleted)).toEqual([{
      outcome: 'refused',
      request_id: null,
      details: { reason: 'deleted' },
    }]);
    expect(await auditRows(missing)).toEqual([{
      outcome: 'refused',
      request_id: null,
      details: { reason: 'missing' },
    }]);
  });

  it('writes no refused row for a banned user past the limit', async () => {
    const id = await signUpAsSupabaseAuth(db());
    await setAuthColumn(id, 'banned_until', `now() + interval '1 day'`);
    const answers = [
      await guard(id, 2),
      await guard(id, 2),
      await guard(id, 2),
      await guard(id, 2),
    ];
    expect(answers.map((a) => a.standing)).toEqual(['banned', 'banned', null, null]);
    expect((await auditRows(id)).map((r) => r.outcome)).toEqual(['refused', 'refused']);
  });

  it('answers an anonymous user (is_anonymous) like any other: active, with the profile the trigger made without an email', async () => {
    await clearOfHourEdge();
    const id = await signUpAnonymouslyAsSupabaseAuth(db());
    const verdict = await guard(id);
    expect(verdict).toEqual({
      allowed: true,
      retry_after_seconds: null,
      standing: 'active',
      profile: await profileOf(id),
      repeat: false,
    });
    expect(verdict.profile).toMatchObject({ user_id: id, email: null, created_via: 'trigger' });
  });

  it('answers an active user without a profile with profile null and writes nothing, leaving the creation to ensure_user_profile', async () => {
    const id = await withTriggerOff(db(), () => signUpAsSupabaseAuth(db()));
    expect(await guard(id)).toEqual({
      allowed: true,
      retry_after_seconds: null,
      standing: 'active',
      profile: null,
      repeat: null,
    });
    expect(await auditRows(id)).toEqual([]);
    expect(await repeatsOf(id)).toEqual([]);
  });
});

describe('ensure_profile_for_caller: existed answers', () => {
  const stats = async () => {
    const s = await asService<SystemStats>(
      `select public.profile_system_stats(interval '1 hour') as r`,
      [],
    );
    const h = await asService<SystemHealth>(`select public.profile_system_health() as r`, []);
    return {
      success_rate: s.success_rate,
      attempts: s.attempts,
      health_success_rate: h.checks.success_rate,
    };
  };
  const repeatsStat = async () =>
    await asService<{ existed_repeats: number; by_source: Record<string, number> }>(
      `select public.profile_existed_repeats(interval '1 hour') as r`,
      [],
    );

  it('stores the first of the hour as an existed audit row with the request id and only counts the rest, so stats and health do not move', async () => {
    await clearOfHourEdge();
    // A failure in the window, so that a success rate of 1 cannot hide a change.
    await db().query(
      `insert into private.audit_logs (user_id, operation, source, outcome, sqlstate) values ($1, 'ensure_profile', 'register', 'failed', '57014')`,
      [
        randomUUID(),
      ],
    );
    const id = await signUpAsSupabaseAuth(db());
    const requestId = `req-${randomUUID()}`;
    expect(await guard(id, 30, 3600, requestId)).toMatchObject({
      standing: 'active',
      repeat: false,
    });
    const before = await stats();
    const repeatsBefore = await repeatsStat();
    expect(before.success_rate).toBeLessThan(1);

    for (let i = 0; i < 10; i++) {
      expect(await guard(id, 30, 3600, `req-${i}`)).toMatchObject({
        standing: 'active',
        repeat: true,
      });
    }

    expect(await stats()).toEqual(before);
    expect(await auditRows(id)).toEqual([{
      outcome: 'existed',
      request_id: requestId,
      details: {},
    }]);
    expect(await repeatsOf(id)).toEqual([10]);
    const repeatsAfter = await repeatsStat();
    expect(repeatsAfter.existed_repeats).toBe(repeatsBefore.existed_repeats + 10);
    expect(repeatsAfter.by_source.ensure).toBe((repeatsBefore.by_source.ensure ?? 0) + 10);
  });

  it('stores an existed row again once a new hour starts', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    await guard(id);
    await guard(id);
    await db().query(
      `update private.existed_repeats set hour_start = hour_start - interval '1 hour' where user_id = $1`,
      [id],
    );
    expect(await guard(id)).toMatchObject({ repeat: false });
    expect((await auditRows(id)).map((r) => r.outcome)).toEqual(['existed', 'existed']);
    expect(await repeatsOf(id)).toEqual([1, 0]);
  });

  it('resolves the open repair-queue entry of a user whose profile exists, on the audited answer', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    await db().query(
      `insert into private.repair_queue (user_id, source, reason) values ($1, 'register', 'timed out')`,
      [id],
    );
    await guard(id);
    expect(
      await db().one(
        'select resolution, resolved_at is not null as resolved from private.repair_queue where user_id = $1',
        [id],
      ),
    ).toEqual({
      resolution: 'ensure',
      resolved: true,
    });
  });

  it('keeps the counters in an unlogged table', async () => {
    expect(
      await db().one(
        `select relpersistence from pg_catalog.pg_class where oid = 'private.existed_repeats'::regclass`,
      ),
    ).toEqual({ relpersistence: 'u' });
  });
});

describe('profile_existed_repeats', () => {
  it('sums the repeats of every hour the window overlaps, by source, and refuses a window out of range', async () => {
    await db().query('delete from private.existed_repeats');
    const hour = `to_timestamp(floor(extract(epoch from now()) / 3600) * 3600)`;
    await db().query(
      `insert into private.existed_repeats (user_id, source, hour_start, repeats) values
      (gen_random_uuid(), 'ensure', ${hour}, 4),
      (gen_random_uuid(), 'ensure', ${hour} - interval '1 hour', 3),
      (gen_random_uuid(), 'webhook', ${hour}, 2),
      (gen_random_uuid(), 'ensure', ${hour}, 0),
      (gen_random_uuid(), 'ensure', ${hour} - interval '2 hours', 20),
      (gen_random_uuid(), 'ensure', ${hour} - interval '3 days', 50)`,
    );
    const ask = (window: string) =>
      asService<Record<string, unknown>>(
        `select public.profile_existed_repeats($1::interval) as r`,
        [window],
      );
    // A window of an hour overlaps the current hour and the previous one, wherever now() is in it.
    expect(await ask('1 hour')).toMatchObject({
      existed_repeats: 9,
      by_source: { ensure: 7, webhook: 2 },
      window: { seconds: 3600 },
    });
    expect(await ask('3 hours')).toMatchObject({
      existed_repeats: 29,
      by_source: { ensure: 27, webhook: 2 },
    });
    expect(await ask('7 days')).toMatchObject({
      existed_repeats: 79,
      by_source: { ensure: 77, webhook: 2 },
      window: { seconds: 604800 },
    });
    await db().query('delete from private.existed_repeats');
    expect(await ask('1 hour')).toMatchObject({ existed_repeats: 0, by_source: {} });
    await expect(ask('0 seconds')).rejects.toMatchObject({ code: '22023' });
  });

  it('reads the window through the hour_start index, not by scanning the table', async () => {
    const plan = await db().withTransaction(async (c) => {
      await c.query(`insert into private.existed_repeats (user_id, source, hour_start, repeats)
                     select gen_random_uuid(), 'ensure', to_timestamp(floor(extract(epoch from now()) / 3600) * 3600) - make_interval(hours => n % 2000), 1
                     from generate_series(1, 50000) n`);
      await c.query('analyze private.existed_repeats');
      const { rows } = await c.query(
        `explain (format json) select r.source, sum(r.repeats) from private.existed_repeats r
                                      where r.hour_start > now() - interval '2 hours' and r.repeats > 0 group by r.source`,
      );
      return JSON.stringify(rows[0]['QUERY PLAN']);
    });
    expect(plan).toContain('existed_repeats_hour_start_idx');
    expect(plan).not.toContain('Seq Scan');
  });
});

describe('prune_audit_logs and the counted repeats', () => {
  it('deletes the hours that ended before the retention cutoff and keeps the rest', async () => {
    await db().query('delete from private.existed_repeats');
    const kept = randomUUID();
    await db().query(
      `insert into private.existed_repeats (user_id, source, hour_start, repeats) values
      (gen_random_uuid(), 'ensure', now() - interval '92 days', 5),
      (gen_random_uuid(), 'ensure', now() - interval '91 days', 5),
      ($1, 'ensure', now() - interval '89 days', 5)`,
      [kept],
    );
    const result = await asService<Record<string, unknown>>(
      'select public.prune_audit_logs(10000) as r',
      [],
    );
    expect(result).toMatchObject({ existed_repeats: 2, done: true });
    expect((await db().query('select user_id from private.existed_repeats')).rows).toEqual([{
      user_id: kept,
    }]);
  });
});
