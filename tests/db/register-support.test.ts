import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const hash = (text: string) => createHash('sha256').update(text).digest('hex');

async function asService<T = Record<string, unknown>>(sql: string, params: unknown[]): Promise<T> {
  return await db().asRole(
    'service_role',
    {},
    async (c) => (await c.query(sql, params)).rows[0]?.r as T,
    { commit: true },
  );
}

const claim = (key: string, body: string, ttl = 86400, lock = 60) =>
  asService(`select public.idempotency_claim('register', $1, $2, $3, $4) as r`, [
    key,
    hash(body),
    ttl,
    lock,
  ]);

describe('idempotency keys', () => {
  it('claims a new key, replays the stored answer, and refuses the key for another body', async () => {
    const key = `k-${randomUUID()}`;
    expect(await claim(key, 'body-1')).toEqual({ state: 'claimed' });
    expect(await claim(key, 'body-1')).toEqual({ state: 'in_progress' });
    await asService(`select public.idempotency_complete('register', $1, $2, 201, $3) as r`, [
      key,
      hash('body-1'),
      { user: { id: 'u' } },
    ]);
    expect(await claim(key, 'body-1')).toEqual({
      state: 'replay',
      status: 201,
      response: { user: { id: 'u' } },
    });
    expect(await claim(key, 'body-2')).toEqual({ state: 'mismatch' });
  });

  it('gives exactly one of 20 concurrent claimants the key', async () => {
    const key = `k-${randomUUID()}`;
    const states = await Promise.all(Array.from({ length: 20 }, () => claim(key, 'same')));
    expect(states.filter((s) => s.state === 'claimed')).toHaveLength(1);
    expect(states.filter((s) => s.state === 'in_progress')).toHaveLength(19);
  });

  it('lets a retry run again after the holder released the key', async () => {
    const key = `k-${randomUUID()}`;
    await claim(key, 'b');
    await asService(`select public.idempotency_release('register', $1, $2) as r`, [key, hash('b')]);
    expect(await claim(key, 'b')).toEqual({ state: 'claimed' });
  });

  it('reclaims a key whose holder went silent past the lock time, and forgets expired keys', async () => {
    const stale = `k-${randomUUID()}`;
    await claim(stale, 'b');
    await db().query(
      `update private.idempotency_keys set locked_at = now() - interval '2 minutes' where key = $1`,
      [stale],
    );
    expect(await claim(stale, 'b', 86400, 60)).toEqual({ state: 'claimed' });

    const expired = `k-${randomUUID()}`;
    await claim(expired, 'old');
    await asService(`select public.idempotency_complete('register', $1, $2, 409, '{}') as r`, [
      expired,
      hash('old'),
    ]);
    await db().query(
      `update private.idempotency_keys set expires_at = now() - interval '1 second' where key = $1`,
      [expired],
    );
    expect(await claim(expired, 'new body')).toEqual({ state: 'claimed' });
  });

  it.each([
    [
      'an empty key',
      `select public.idempotency_claim('register', '', $1) as r`,
      'p_key must be 1-255 printable ASCII characters',
    ],
    [
      'a key with a space',
      `select public.idempotency_claim('register', 'a b', $1) as r`,
      'p_key must be 1-255 printable ASCII characters',
    ],
    [
      'a 256-character key',
      `select public.idempotency_claim('register', repeat('k', 256), $1) as r`,
      'p_key must be 1-255 printable ASCII characters',
    ],
    [
      'a 5xx stored as final',
      `select public.idempotency_complete('register', 'k', $1, 503, '{}') as r`,
      'p_status must be a final 2xx-4xx status; release the key on a 5xx',
    ],
  ])('rejects %s with 22023', async (_label, sql, message) => {
    await expect(asService(sql, [hash('x')])).rejects.toMatchObject({ code: '22023', message });
  });
});

describe('register_preflight', () => {
  const preflight = (client: string, limit = 3, window = 60) =>
    asService(`select public.register_preflight($1, $2, $3) as r`, [client, limit, window]);

  it('allows a client up to the limit in a window, then refuses with the seconds until the window ends', async () => {
    const client = `ip-${randomUUID()}`;
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await preflight(client));
    expect(answers.map((a) => [a.allowed, a.remaining])).toEqual([[true, 2], [true, 1], [true, 0], [
      false,
      0,
    ]]);
    expect(answers[3]).toMatchObject({ enabled: true, limit: 3 });
    expect(answers[3]!.retry_after_seconds).toBeGreaterThanOrEqual(1);
    expect(answers[3]!.retry_after_seconds).toBeLessThanOrEqual(60);
    expect((await preflight(`ip-${randomUUID()}`)).allowed).toBe(true);
  });

  it('says whether a username is free, case-insensitively, and null when none is asked for', async () => {
    await signUpAsSupabaseAuth(db(), { userMetadata: { username: 'Taken_Name' } });
    const ask = (username: string | null) =>
      asService(`select public.register_preflight($1, 100, 60, $2) as r`, [
        `ip-${randomUUID()}`,
        username,
      ]);
    expect((await ask('taken_name')).username_available).toBe(false);
    expect((await ask('free_name')).username_available).toBe(true);
    expect((await ask(null)).username_available).toBeNull();
  });

  it('says whether an email is registered, confirmed or not, case-insensitively', async () => {
    await signUpAsSupabaseAuth(db(), { email: 'pending@example.test', emailConfirmed: false });
    const ask = (email: string | null) =>
      asService(`select public.register_preflight($1, 100, 60, null, $2) as r`, [
        `ip-${randomUUID()}`,
        email,
      ]);
    expect((await ask('PENDING@example.test')).email_registered).toBe(true);
    expect((await ask('fresh@example.test')).email_registered).toBe(false);
    expect((await ask(null)).email_registered).toBeNull();
  });

  it('finds a registered email through the unique email index, not by scanning auth.users', async () => {
    const plan = await db().withTransaction(async (c) => {
      await c.query(
        `insert into auth.users (id, email, created_at) select gen_random_uuid(), 'bulk' || n || '@example.test', now()
                     from generate_series(1, 20000) n`,
      );
      await c.query('analyze auth.users');
      const { rows } = await c.query(
        `explain (format json) select 1 from auth.users u where u.email = lower($1) and not u.is_sso_user`,
        ['X@Example.test'],
      );
      return JSON.stringify(rows[0]['QUERY PLAN']);
    });
    expect(plan).toContain('users_email_partial_key');
    expect(plan).not.toContain('Seq Scan');
  });

  it('counts concurrent attempts exactly', async () => {
    const client = `ip-${randomUUID()}`;
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => preflight(client, 10, 3600)),
    );
    expect(answers.filter((a) => a.allowed)).toHaveLength(10);
  });

  it('says whether the auth.users trigger will make the profile: switched on in settings and enabled in the catalog', async () => {
    const ask = async () => (await preflight(`ip-${randomUUID()}`, 100)).trigger_enabled;
    expect(await ask()).toBe(true);
    await db().query('update private.settings set trigger_enabled = false');
    try {
      expect(await ask()).toBe(false);
    } finally {
      await db().query('update private.settings set trigger_enabled = true');
    }
    await db().query('alter table auth.users disable trigger users_ensure_profile');
    try {
      expect(await ask()).toBe(false);
    } finally {
      await db().query('alter table auth.users enable trigger users_ensure_profile');
    }
    expect(await ask()).toBe(true);
  });

  it('spreads a client with a limit of at least 200 over limit / 100 lanes (at most 32), counting every attempt once', async () => {
    const lanes = async (limit: number, attempts: number) => {
      const client = `ip-${randomUUID()}`;
      for (let i = 0; i < attempts; i++) await preflight(client, limit);
      // Distinct lanes: a slow run may cross into the next window, which has rows of its own.
      return await db().one<{ lanes: number; hits: number }>(
        `select count(distinct lane)::int as lanes, sum(hits)::int as hits from private.rate_limits where bucket = $1`,
        [`register:${client}`],
      );
    };
    expect(await lanes(199, 10)).toEqual({ lanes: 1, hits: 10 });
    expect(await lanes(300, 60)).toMatchObject({
      lanes: expect.toSatisfy((n: number) => n >= 1 && n <= 3),
      hits: 60,
    });
    // A free lane is picked at random, so 200 attempts land on more than one of the 32.
    expect(await lanes(1_000_000, 200)).toMatchObject({
      lanes: expect.toSatisfy((n: number) => n >= 2 && n <= 32),
      hits: 200,
    });
  });

  it('lets a second attempt of the same client through while the first is uncommitted, on another lane', async () => {
    const client = `ip-${randomUUID()}`;
    const first = await db().admin.connect();
    const second = await db().admin.connect();
    try {
      await first.query(`begin; set local role service_role`);
      expect(
        (await first.query(`select public.register_preflight($1, 1000, 60) as r`, [client])).rows[0]
          .r,
      ).toMatchObject({ allowed: true, remaining: 999 });
      // Waiting for the first attempt's row would fail at once instead of hanging.
      await second.query(`begin; set local role service_role; set local lock_timeout = '1ms'`);
      expect(
        (await second.query(`select public.register_preflight($1, 1000, 60) as r`, [client]))
          .rows[0].r,
      ).toMatchObject({ allowed: true, remaining: 999 });
      await second.query('commit');
      await first.query('commit');
    } finally {
      first.release();
      second.release();
    }
    expect(await preflight(client, 1000)).toMatchObject({ allowed: true, remaining: 997 });
  });

  it('refuses the attempt past the limit once the lanes of the window sum to it', async () => {
    const client = `ip-${randomUUID()}`;
    await db().query(
      `insert into private.rate_limits (bucket, window_start, lane, hits)
       select $1, to_timestamp(floor(extract(epoch from now()) / 3600) * 3600), lane, 100 from generate_series(0, 1) lane`,
      [`register:${client}`],
    );
    const answers = [await preflight(client, 201, 3600), await preflight(client, 201, 3600)];
    expect(answers.map((a) => [a.allowed, a.remaining])).toEqual([[true, 0], [false, 0]]);
  });

  it('keeps its counters in an unlogged table, whose commits never wait for a WAL flush', async () => {
    expect(
      await db().one(
        `select relpersistence from pg_catalog.pg_class where oid = 'private.rate_limits'::regclass`,
      ),
    ).toEqual({ relpersistence: 'u' });
  });

  it('deletes windows older than a day as attempts pass, and keeps the current ones', async () => {
    const stale = `ip-${randomUUID()}`;
    const current = `ip-${randomUUID()}`;
    await db().query(
      `insert into private.rate_limits (bucket, window_start, hits) values ($1, now() - interval '25 hours', 5), ($2, now() - interval '10 minutes', 5)`,
      [`register:${stale}`, `register:${current}`],
    );
    await preflight(`ip-${randomUUID()}`);
    const { rows } = await db().query(
      `select bucket from private.rate_limits where bucket = any($1) order by bucket`,
      [[`register:${stale}`, `register:${current}`]],
    );
    expect(rows).toEqual([{ bucket: `register:${current}` }]);
  });

  it('reports registration switched off without counting the attempt', async () => {
    const client = `ip-${randomUUID()}`;
    await db().query('update private.settings set register_enabled = false');
    try {
      expect(await preflight(client)).toEqual({
        enabled: false,
        allowed: false,
        limit: 3,
        remaining: 0,
        retry_after_seconds: 60,
        username_available: null,
        email_registered: null,
        trigger_enabled: null,
      });
    } finally {
      await db().query('update private.settings set register_enabled = true');
    }
    expect(
      (await db().query(`select count(*)::int as n from private.rate_limits where bucket = $1`, [
        `register:${client}`,
      ])).rows,
    ).toEqual([{ n: 0 }]);
  });
});

describe('find_auth_user_by_email', () => {
  it('finds a user by email case-insensitively, and answers null for an unknown one', async () => {
    const id = await signUpAsSupabaseAuth(db(), { email: 'case@example.test' });
    const found = await asService<{ id: string; created_at: string }>(
      `select public.find_auth_user_by_email('CASE@Example.test') as r`,
      [],
    );
    expect(found.id).toBe(id);
    expect(await asService(`select public.find_auth_user_by_email('nobody@example.test') as r`, []))
      .toBeNull();
  });
});

describe('enqueue_profile_repair', () => {
  it('queues a user without a profile with an audit row, and ignores one that has a profile', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    const missing = await signUpAsSupabaseAuth(db());
    await db().query('update private.settings set trigger_enabled = true');
    const fine = await signUpAsSupabaseAuth(db());
    for (const id of [missing, fine]) {
      await asService(
        `select public.enqueue_profile_repair($1, 'register', 'rpc unavailable', 'PGRST002', 'req-7', 3) as r`,
        [id],
      );
    }
    expect(
      (await db().query(
        'select user_id, source, reason, sqlstate, resolved_at from private.repair_queue',
      )).rows,
    ).toEqual([
      {
        user_id: missing,
        source: 'register',
        reason: 'rpc unavailable',
        sqlstate: 'PGRST002',
        resolved_at: null,
      },
    ]);
    expect(
      (await db().query(
        `select outcome, attempt, request_id from private.audit_logs where user_id = $1 and source = 'register'`,
        [missing],
      )).rows,
    ).toEqual([
      { outcome: 'failed', attempt: 3, request_id: 'req-7' },
    ]);
  });

  it('rejects a malformed SQLSTATE with 22023', async () => {
    await expect(
      asService(`select public.enqueue_profile_repair($1, 'register', 'x', 'nope') as r`, [
        randomUUID(),
      ]),
    ).rejects.toMatchObject({
      code: '22023',
    });
  });
});
