// 20261205120000_audit-every-attempt.sql: which attempts leave an audit row, and which are only
// counted. register's answers are always rows; other sources' repeated existed answers are
// counted per user, source and hour; the functions' direct-insert fallback and the
// before-user-created hook's refusals leave rows of their own.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

/** Existed answers are counted per fixed hour: keep a test's calls inside one hour. */
async function clearOfHourEdge(): Promise<void> {
  const intoHour = (Date.now() / 1000) % 3600;
  if (intoHour > 3590) await sleep((3601 - intoHour) * 1000);
}

const userWithoutProfile = () => withTriggerOff(db(), () => signUpAsSupabaseAuth(db()));

/** ensure_user_profile as PostgREST calls it for a service-role request, committing. */
async function ensure(
  userId: string,
  source: string,
  requestId: string,
): Promise<{ outcome: string }> {
  return await db().asRole(
    'service_role',
    {},
    async (c) =>
      (await c.query('select public.ensure_user_profile($1, $2, $3) as r', [
        userId,
        source,
        requestId,
      ])).rows[0].r,
    { commit: true },
  );
}

/**
 * The functions' fallback as PostgREST runs it: as service_role, the request's headers in
 * request.headers, `INSERT … ON CONFLICT (user_id) DO NOTHING RETURNING`. Returns the inserted
 * user ids.
 */
async function directInsert(
  userId: string,
  createdVia: string,
  headers: string | null,
): Promise<string[]> {
  return await db().asRole(
    'service_role',
    {},
    async (c) => {
      if (headers !== null) {
        await c.query(`select set_config('request.headers', $1, true)`, [headers]);
      }
      const { rows } = await c.query<{ user_id: string }>(
        `insert into public.user_profiles (user_id, email, metadata, created_via) values ($1, null, '{}', $2)
         on conflict (user_id) do nothing returning user_id`,
        [userId, createdVia],
      );
      return rows.map((r) => r.user_id);
    },
    { commit: true },
  );
}

const requestHeaders = (requestId: string) =>
  JSON.stringify({ 'x-profile-request-id': requestId, 'content-type': 'application/json' });

async function auditRows(userId: string) {
  const { rows } = await db().query(
    `select source, outcome, attempt, request_id, details, duration_ms >= 0 as timed
       from private.audit_logs where user_id = $1 and source <> 'trigger' order by id`,
    [userId],
  );
  return rows;
}

async function repeats(userId: string): Promise<Array<{ source: string; repeats: number }>> {
  const { rows } = await db().query<{ source: string; repeats: number }>(
    'select source, repeats from private.existed_repeats where user_id = $1 order by source',
    [userId],
  );
  return rows;
}

describe('existed answers of ensure_user_profile', () => {
  it('stores every existed answer of register as a row with its own request id, and counts none of them', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    for (const requestId of ['reg-1', 'reg-2', 'reg-3']) {
      expect(await ensure(id, 'register', requestId)).toMatchObject({ outcome: 'existed' });
    }
    expect(await auditRows(id)).toEqual(
      ['reg-1', 'reg-2', 'reg-3'].map((requestId) => ({
        source: 'register',
        outcome: 'existed',
        attempt: 1,
        request_id: requestId,
        details: {},
        timed: true,
      })),
    );
    expect(await repeats(id)).toEqual([]);
  });

  it('stores the first existed answer of a user and source in the hour and counts the others, per source', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    for (let i = 1; i <= 4; i++) await ensure(id, 'ensure', `ens-${i}`);
    for (let i = 1; i <= 3; i++) await ensure(id, 'webhook', `hook-${i}`);
    expect(await auditRows(id)).toEqual([
      {
        source: 'ensure',
        outcome: 'existed',
        attempt: 1,
        request_id: 'ens-1',
        details: {},
        timed: true,
      },
      {
        source: 'webhook',
        outcome: 'existed',
        attempt: 1,
        request_id: 'hook-1',
        details: {},
        timed: true,
      },
    ]);
    expect(await repeats(id)).toEqual([
      { source: 'ensure', repeats: 3 },
      { source: 'webhook', repeats: 2 },
    ]);
  });

  it('counts the existed answers of ensure_user_profile and of ensure_profile_for_caller for one user together', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    await ensure(id, 'ensure', 'rpc-1');
    const verdict = await db().asRole(
      'service_role',
      {},
      async (c) =>
        (await c.query('select public.ensure_profile_for_caller($1, 30, 3600, $2) as r', [
          id,
          'guard-1',
        ])).rows[0].r,
      { commit: true },
    );
    expect(verdict).toMatchObject({ standing: 'active', repeat: true });
    expect((await auditRows(id)).map((r) => r.request_id)).toEqual(['rpc-1']);
    expect(await repeats(id)).toEqual([{ source: 'ensure', repeats: 1 }]);
  });

  it('gives twenty concurrent ensure calls for a user without a profile one created row and one existed row, counting the other eighteen answers', async () => {
    await clearOfHourEdge();
    const id = await userWithoutProfile();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ensure(id, 'ensure', `race-${i}`)),
    );
    expect(answers.map((a) => a.outcome).sort()).toEqual(['created', ...Array(19).fill('existed')]);
    const { rows } = await db().query(
      `select outcome, count(*)::int as n from private.audit_logs where user_id = $1 group by outcome order by outcome`,
      [id],
    );
    expect(rows).toEqual([
      { outcome: 'created', n: 1 },
      { outcome: 'existed', n: 1 },
      { outcome: 'skipped', n: 1 },
    ]);
    expect(await repeats(id)).toEqual([{ source: 'ensure', repeats: 18 }]);
  });

  it("leaves the database functions' own inserts to their own audit rows: no direct_insert row for the trigger or ensure_user_profile", async () => {
    const viaTrigger = await signUpAsSupabaseAuth(db());
    const viaRpc = await userWithoutProfile();
    await ensure(viaRpc, 'register', 'reg-own');
    const { rows } = await db().query(
      `select user_id, source, outcome from private.audit_logs where user_id = any($1) order by user_id = $2 desc, id`,
      [[viaTrigger, viaRpc], viaTrigger],
    );
    expect(rows).toEqual([
      { user_id: viaTrigger, source: 'trigger', outcome: 'created' },
      { user_id: viaRpc, source: 'trigger', outcome: 'skipped' },
      { user_id: viaRpc, source: 'register', outcome: 'created' },
    ]);
  });
});

describe('the direct-insert fallback', () => {
  it('leaves one created row with the request id from x-profile-request-id, the layer from created_via, and via direct_insert, resolving the open repair', async () => {
    const id = await userWithoutProfile();
    await db().query(
      `insert into private.repair_queue (user_id, source, reason) values ($1, 'register', 'ensure_user_profile is missing')`,
      [id],
    );
    expect(await directInsert(id, 'register', requestHeaders('req-fallback'))).toEqual([id]);
    expect(await auditRows(id)).toEqual([
      {
        source: 'register',
        outcome: 'created',
        attempt: 1,
        request_id: 'req-fallback',
        details: { via: 'direct_insert' },
        timed: true,
      },
    ]);
    expect(
      await db().one(
        'select resolution, resolved_at is not null as resolved from private.repair_queue where user_id = $1',
        [id],
      ),
    ).toEqual({
      resolution: 'register',
      resolved: true,
    });
  });

  it('leaves one existed row, inserting nothing, when the profile is already there', async () => {
    await clearOfHourEdge();
    const id = await signUpAsSupabaseAuth(db());
    expect(await directInsert(id, 'register', requestHeaders('req-a'))).toEqual([]);
    expect(await directInsert(id, 'register', requestHeaders('req-b'))).toEqual([]);
    expect(await directInsert(id, 'ensure', requestHeaders('req-c'))).toEqual([]);
    expect(await directInsert(id, 'ensure', requestHeaders('req-d'))).toEqual([]);
    expect(await auditRows(id)).toEqual([
      {
        source: 'register',
        outcome: 'existed',
        attempt: 1,
        request_id: 'req-a',
        details: { via: 'direct_insert' },
        timed: true,
      },
      {
        source: 'register',
        outcome: 'existed',
        attempt: 1,
        request_id: 'req-b',
        details: { via: 'direct_insert' },
        timed: true,
      },
      {
        source: 'ensure',
        outcome: 'existed',
        attempt: 1,
        request_id: 'req-c',
        details: { via: 'direct_insert' },
        timed: true,
      },
    ]);
    expect(await repeats(id)).toEqual([{ source: 'ensure', repeats: 1 }]);
    expect(await db().one('select created_via from public.user_profiles where user_id = $1', [id]))
      .toEqual({ created_via: 'trigger' });
  });

  it('records a null request id when the request named none', async () => {
    const id = await userWithoutProfile();
    await directInsert(id, 'webhook', null);
    expect(await auditRows(id)).toEqual([
      {
        source: 'webhook',
        outcome: 'created',
        attempt: 1,
        request_id: null,
        details: { via: 'direct_insert' },
        timed: true,
      },
    ]);
  });

  it('still makes the profile, with a warning and no row, when its audit row cannot be written', async () => {
    const id = await userWithoutProfile();
    expect(await directInsert(id, 'ensure', 'not json')).toEqual([id]);
    expect(await auditRows(id)).toEqual([]);
  });

  it('writes nothing when the insert itself fails', async () => {
    const id = await userWithoutProfile();
    await db().query(
      `alter table public.user_profiles add constraint hostile_fallback check (user_id <> '${id}') not valid`,
    );
    try {
      await expect(directInsert(id, 'ensure', requestHeaders('req-refused'))).rejects.toMatchObject(
        { code: '23514' },
      );
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_fallback');
    }
    expect(await auditRows(id)).toEqual([]);
    expect(
      await db().one('select count(*)::int as n from public.user_profiles where user_id = $1', [
        id,
      ]),
    ).toEqual({ n: 0 });
  });
});

describe('record_signup_refusal', () => {
  const refuse = (args: unknown[]) =>
    db().asRole('service_role', {}, async (c) => {
      await c.query('select public.record_signup_refusal($1, $2, $3, $4, $5)', args);
    }, { commit: true });

  it("stores one refused row of source hook with the reason, the hook's status, the request id and the duration", async () => {
    const pending = randomUUID();
    await refuse([pending, 'username_taken', 409, 'req-hook', 12.3456]);
    const { rows } = await db().query(
      'select operation, source, outcome, attempt, request_id, duration_ms, details from private.audit_logs where user_id = $1',
      [pending],
    );
    expect(rows).toEqual([
      {
        operation: 'before_user_created',
        source: 'hook',
        outcome: 'refused',
        attempt: 1,
        request_id: 'req-hook',
        duration_ms: '12.346',
        details: { reason: 'username_taken', http_code: 409 },
      },
    ]);
  });

  it('leaves the success rate and the attempt totals as they were', async () => {
    const stats = () =>
      db().asRole(
        'service_role',
        {},
        async (c) =>
          (await c.query(`select public.profile_system_stats(interval '1 hour') as r`)).rows[0].r,
      );
    const before = await stats();
    await refuse([randomUUID(), 'username_invalid', 400, 'req-rate', 1]);
    const after = await stats();
    expect(after.success_rate).toBe(before.success_rate);
    expect(after.attempts.total).toBe(before.attempts.total);
    expect(after.attempts.by_outcome).toEqual(before.attempts.by_outcome);
    expect(after.attempts.by_source.hook).toEqual({
      refused: (before.attempts.by_source.hook?.refused ?? 0) + 1,
    });
  });

  it.each([
    [
      'an empty reason',
      [null, '', 400, null, null],
      'p_reason must be 1-64 lower-case letters and "_"',
    ],
    [
      'a reason that is not a code',
      [null, 'Username taken!', 400, null, null],
      'p_reason must be 1-64 lower-case letters and "_"',
    ],
    [
      'a success status',
      [null, 'username_taken', 200, null, null],
      'p_http_code must be an HTTP error status (400-599)',
    ],
    [
      'a request id over 200 characters',
      [null, 'username_taken', 409, 'r'.repeat(201), null],
      'p_request_id must be at most 200 characters',
    ],
    [
      'a negative duration',
      [null, 'username_taken', 409, null, -1],
      'p_duration_ms must be between 0 and 999999999.999',
    ],
  ])('refuses %s with 22023 and writes nothing', async (_label, args, message) => {
    const before = await db().one<{ n: number }>(
      `select count(*)::int as n from private.audit_logs where source = 'hook'`,
    );
    await expect(refuse(args)).rejects.toMatchObject({ code: '22023', message });
    expect(
      await db().one(`select count(*)::int as n from private.audit_logs where source = 'hook'`),
    ).toEqual(before);
  });

  it.each(['anon', 'authenticated'] as const)('may not be called by %s (42501)', async (role) => {
    await expect(
      db().asRole(role, role === 'authenticated' ? { sub: randomUUID() } : {}, async (c) => {
        await c.query(`select public.record_signup_refusal(null, 'username_taken', 409)`);
      }),
    ).rejects.toMatchObject({ code: '42501' });
  });
});
