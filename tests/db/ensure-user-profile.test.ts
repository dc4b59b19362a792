import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

/** Calls ensure_user_profile as PostgREST would for a service-role request, committing. */
async function ensureAsService(userId: string, args: Record<string, unknown> = {}) {
  const names = Object.keys(args);
  const named = names.map((name, i) => `, ${name} => $${i + 2}`).join('');
  return await db().asRole(
    'service_role',
    {},
    async (client) => {
      const { rows } = await client.query(`select public.ensure_user_profile($1${named}) as r`, [
        userId,
        ...names.map((n) => args[n]),
      ]);
      return rows[0].r;
    },
    { commit: true },
  );
}

/** Existed answers are counted per fixed hour: keep a test's calls inside one hour. */
async function clearOfHourEdge(): Promise<void> {
  const intoHour = (Date.now() / 1000) % 3600;
  if (intoHour > 3590) await sleep((3601 - intoHour) * 1000);
}

async function userWithoutProfile(userMetadata: unknown = {}, email?: string): Promise<string> {
  await db().query('update private.settings set trigger_enabled = false');
  try {
    return await signUpAsSupabaseAuth(db(), { userMetadata, email });
  } finally {
    await db().query('update private.settings set trigger_enabled = true');
  }
}

describe('ensure_user_profile', () => {
  it('creates the missing profile from the auth user, then answers existed with the same profile', async () => {
    const id = await userWithoutProfile(
      { full_name: 'Katherine Johnson' },
      'katherine@example.test',
    );
    const first = await ensureAsService(id, { p_source: 'register', p_request_id: 'req-1' });
    expect(first.outcome).toBe('created');
    expect(first.profile).toMatchObject({
      user_id: id,
      email: 'katherine@example.test',
      full_name: 'Katherine Johnson',
      username: null,
      created_via: 'register',
    });
    const second = await ensureAsService(id, {
      p_source: 'ensure',
      p_request_id: 'req-2',
      p_attempt: 2,
    });
    expect(second).toEqual({ outcome: 'existed', profile: first.profile });

    const { rows } = await db().query(
      `select source, outcome, attempt, request_id, duration_ms >= 0 as timed
         from private.audit_logs where user_id = $1 and source <> 'trigger' order by id`,
      [id],
    );
    expect(rows).toEqual([
      { source: 'register', outcome: 'created', attempt: 1, request_id: 'req-1', timed: true },
      { source: 'ensure', outcome: 'existed', attempt: 2, request_id: 'req-2', timed: true },
    ]);
  });

  it('gives one profile, one created row and one existed row when 50 callers race for the same user, counting the other 48 answers', async () => {
    await clearOfHourEdge();
    const id = await userWithoutProfile({ username: 'racer' });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ensureAsService(id, { p_request_id: `race-${i}` })),
    );
    expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'existed')).toHaveLength(49);
    const profiles = new Set(results.map((r) => JSON.stringify(r.profile)));
    expect(profiles.size).toBe(1);
    expect(
      (await db().query('select count(*)::int as n from public.user_profiles where user_id = $1', [
        id,
      ])).rows,
    ).toEqual([{ n: 1 }]);
    expect(
      (await db().query(
        `select outcome, count(*)::int as n from private.audit_logs where user_id = $1 and source = 'ensure' group by outcome order by outcome`,
        [id],
      )).rows,
    ).toEqual([
      { outcome: 'created', n: 1 },
      { outcome: 'existed', n: 1 },
    ]);
    // The first existed answer of the hour is a row; the racers that waited on it are counted.
    expect(
      (await db().query(
        `select repeats from private.existed_repeats where user_id = $1 and source = 'ensure'`,
        [id],
      )).rows,
    ).toEqual([
      { repeats: 48 },
    ]);
  });

  it('gives each of 20 racing users a profile when they all ask for the same username, and the name to one', async () => {
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await userWithoutProfile({ username: 'same_name' }));
    const results = await Promise.all(ids.map((id) => ensureAsService(id)));
    expect(results.every((r) => r.outcome === 'created')).toBe(true);
    expect(results.filter((r) => r.profile.username === 'same_name')).toHaveLength(1);
    const { rows } = await db().query(
      `select count(*)::int as n from private.audit_logs
        where user_id = any($1) and details -> 'dropped' ->> 'username' = 'taken'`,
      [ids],
    );
    expect(rows).toEqual([{ n: 19 }]);
  });

  it('prefers explicit arguments over metadata', async () => {
    const id = await userWithoutProfile({ full_name: 'From Metadata', username: 'from_meta' });
    const result = await ensureAsService(id, {
      p_full_name: 'From Argument',
      p_username: 'from_arg',
      p_avatar_url: 'https://example.test/a.png',
      p_metadata: { plan: 'team' },
    });
    expect(result.profile).toMatchObject({
      full_name: 'From Argument',
      username: 'from_arg',
      avatar_url: 'https://example.test/a.png',
      metadata: { plan: 'team' },
    });
  });

  it('raises SQLSTATE UP404 with a clear message for a user Auth does not have', async () => {
    const ghost = randomUUID();
    await expect(ensureAsService(ghost)).rejects.toMatchObject({
      code: 'UP404',
      message: `auth user ${ghost} does not exist`,
    });
  });

  it.each([
    ['a null user id', null, {}, 'p_user_id is required'],
    [
      'an unknown source',
      'USER',
      { p_source: 'browser' },
      "p_source must be one of register, ensure, webhook, backfill, reconcile (got 'browser')",
    ],
    [
      'the trigger as a source',
      'USER',
      { p_source: 'trigger' },
      "p_source must be one of register, ensure, webhook, backfill, reconcile (got 'trigger')",
    ],
    ['attempt zero', 'USER', { p_attempt: 0 }, 'p_attempt must be a positive integer'],
    [
      'a malformed username',
      'USER',
      { p_username: 'a b' },
      'p_username must be 3-39 letters, digits, "_", "." or "-", starting and ending with a letter, digit or "_"',
    ],
    [
      'a non-http avatar',
      'USER',
      { p_avatar_url: 'ftp://x/y' },
      'p_avatar_url must be an http(s) URL of at most 2048 characters',
    ],
    [
      'an array as metadata',
      'USER',
      { p_metadata: JSON.stringify([1]) },
      'p_metadata must be a JSON object of at most 16384 bytes',
    ],
    [
      'a 201-character name',
      'USER',
      { p_full_name: 'n'.repeat(201) },
      'p_full_name must be at most 200 characters',
    ],
  ])(
    'rejects %s with SQLSTATE 22023 naming the parameter, writing nothing',
    async (_label, who, args, message) => {
      const id = await userWithoutProfile();
      const userId = who === 'USER' ? id : null;
      const before = await db().query('select count(*)::int as n from private.audit_logs');
      await expect(ensureAsService(userId as string, args)).rejects.toMatchObject({
        code: '22023',
        message,
      });
      expect((await db().query('select count(*)::int as n from private.audit_logs')).rows).toEqual(
        before.rows,
      );
      expect(
        (await db().query(
          'select count(*)::int as n from public.user_profiles where user_id = $1',
          [id],
        )).rows,
      ).toEqual([{ n: 0 }]);
    },
  );

  it('records a failure in the same call and answers failed with the SQLSTATE instead of raising', async () => {
    const id = await userWithoutProfile({}, 'blocked@example.test');
    await db().query(`alter table public.user_profiles add constraint hostile_blocked
                      check (email is distinct from 'blocked@example.test') not valid`);
    try {
      const result = await ensureAsService(id, {
        p_source: 'webhook',
        p_request_id: 'req-f',
        p_attempt: 3,
      });
      expect(result).toEqual({
        outcome: 'failed',
        error: {
          sqlstate: '23514',
          message:
            'new row for relation "user_profiles" violates check constraint "hostile_blocked"',
        },
        queued: true,
      });
      const { rows } = await db().query(
        `select source, outcome, attempt, sqlstate, request_id from private.audit_logs where user_id = $1 and source = 'webhook'`,
        [id],
      );
      expect(rows).toEqual([{
        source: 'webhook',
        outcome: 'failed',
        attempt: 3,
        sqlstate: '23514',
        request_id: 'req-f',
      }]);
      expect(
        (await db().query(
          'select source, resolved_at from private.repair_queue where user_id = $1',
          [id],
        )).rows,
      ).toEqual([
        { source: 'webhook', resolved_at: null },
      ]);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_blocked');
    }
    const retried = await ensureAsService(id, { p_source: 'webhook', p_attempt: 4 });
    expect(retried.outcome).toBe('created');
    expect(
      (await db().query(
        'select resolution, resolved_at is not null as resolved from private.repair_queue where user_id = $1',
        [id],
      )).rows,
    ).toEqual([
      { resolution: 'webhook', resolved: true },
    ]);
  });

  it("answers failed with 23505, recorded and queued, when a unique index of the project's own refuses the row", async () => {
    const taken = await userWithoutProfile({ full_name: 'Only Once' });
    const id = await userWithoutProfile({ full_name: 'Only Once' });
    await db().query(
      "create unique index hostile_unique_full_name on public.user_profiles (full_name) where full_name = 'Only Once'",
    );
    try {
      expect((await ensureAsService(taken)).outcome).toBe('created');
      expect(await ensureAsService(id, { p_source: 'webhook' })).toEqual({
        outcome: 'failed',
        error: {
          sqlstate: '23505',
          message: 'duplicate key value violates unique constraint "hostile_unique_full_name"',
        },
        queued: true,
      });
      expect(
        (await db().query(
          'select source, sqlstate, resolved_at from private.repair_queue where user_id = $1',
          [id],
        )).rows,
      )
        .toEqual([{ source: 'webhook', sqlstate: '23505', resolved_at: null }]);
    } finally {
      await db().query('drop index public.hostile_unique_full_name');
    }
  });

  it('records the reconciler as the audit source and backfill as the layer that created the profile', async () => {
    const id = await userWithoutProfile();
    const result = await ensureAsService(id, { p_source: 'reconcile' });
    expect(result.profile.created_via).toBe('backfill');
    expect(
      (await db().query(
        `select outcome from private.audit_logs where user_id = $1 and source = 'reconcile'`,
        [id],
      )).rows,
    ).toEqual([
      { outcome: 'created' },
    ]);
  });

  it('stores accepted strings verbatim, whatever their characters', async () => {
    const name = `O'Brien; drop table x; -- <script>"ü 日本 🎉`;
    const id = await userWithoutProfile({ full_name: name });
    const result = await ensureAsService(id);
    expect(result.profile.full_name).toBe(name);
  });
});
