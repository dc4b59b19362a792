import { describe, expect, it } from 'vitest';
import { type TestDatabase, useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { type SignUp, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const HOUR = 3_600_000;
const hoursAgo = (hours: number) => new Date(Date.now() - hours * HOUR);

async function asService<T>(db: TestDatabase, sql: string, params: unknown[] = []): Promise<T> {
  return await db.asRole(
    'service_role',
    {},
    async (c) => (await c.query(sql, params)).rows[0]?.r as T,
    { commit: true },
  );
}

/** An email signup through Supabase Auth's write path, claiming `username` in its metadata. */
function claim(
  db: TestDatabase,
  username: string,
  options: Omit<SignUp, 'userMetadata'> = {},
): Promise<string> {
  return signUpAsSupabaseAuth(db, { ...options, userMetadata: { username } });
}

async function usernameOf(db: TestDatabase, userId: string): Promise<string | null> {
  return (await db.one<{ username: string | null }>(
    'select username from public.user_profiles where user_id = $1',
    [userId],
  )).username;
}

async function releasesOf(db: TestDatabase, userIds: string[]) {
  const { rows } = await db.query(
    `select user_id, source, outcome, details from private.audit_logs
     where operation = 'release_username' and user_id = any($1) order by id`,
    [userIds],
  );
  return rows;
}

async function createdAuditOf(db: TestDatabase, userId: string) {
  const { rows } = await db.query(
    `select source, outcome, details from private.audit_logs where user_id = $1 and operation = 'ensure_profile' order by id`,
    [userId],
  );
  return rows;
}

const preflight = (db: TestDatabase, username: string) =>
  asService<{ username_available: boolean }>(
    db,
    `select public.register_preflight('ip-lapse', 1000, 60, $1) as r`,
    [username],
  );

describe('a username held by a user who has not confirmed', () => {
  const db = useTestDatabase();

  it('still blocks everyone, case-insensitively, while the holder is younger than the ttl (24 hours by default)', async () => {
    expect(
      (await db().one('select unconfirmed_username_ttl::text as ttl from private.settings')).ttl,
    ).toBe('24:00:00');
    const holder = await claim(db(), 'carol', { createdAt: hoursAgo(23) });

    const second = await claim(db(), 'Carol');
    expect(await usernameOf(db(), second)).toBeNull();
    expect(await createdAuditOf(db(), second)).toEqual([
      { source: 'trigger', outcome: 'created', details: { dropped: { username: 'taken' } } },
    ]);
    expect((await preflight(db(), 'CAROL')).username_available).toBe(false);
    expect(await asService(db(), `select public.username_available('cArOl') as r`)).toBe(false);

    expect(await usernameOf(db(), holder)).toBe('carol');
    expect(await releasesOf(db(), [holder])).toEqual([]);
  });

  it('goes to a new signup through the trigger once the holder is past the ttl, leaving the old profile without one and one released audit row', async () => {
    const holder = await claim(db(), 'dave', { createdAt: hoursAgo(25) });
    const taker = await claim(db(), 'Dave');

    expect(await usernameOf(db(), taker)).toBe('Dave');
    expect(await usernameOf(db(), holder)).toBeNull();
    expect(await releasesOf(db(), [holder, taker])).toEqual([
      {
        user_id: holder,
        source: 'trigger',
        outcome: 'released',
        details: { username: 'dave', claimed_by: taker },
      },
    ]);
    // The taker's own attempt is a plain creation: nothing of its metadata was dropped.
    expect(await createdAuditOf(db(), taker)).toEqual([{
      source: 'trigger',
      outcome: 'created',
      details: {},
    }]);
  });

  it('goes to ensure_user_profile called with p_username for a user without a profile', async () => {
    const holder = await claim(db(), 'erin_w', { createdAt: hoursAgo(48) });
    const taker = await withTriggerOff(db(), () => signUpAsSupabaseAuth(db()));

    const result = await asService<{ outcome: string; profile: { username: string } }>(
      db(),
      `select public.ensure_user_profile($1, p_source => 'register', p_username => 'ERIN_W') as r`,
      [taker],
    );
    expect(result).toMatchObject({
      outcome: 'created',
      profile: { username: 'ERIN_W', created_via: 'register' },
    });
    expect(await usernameOf(db(), holder)).toBeNull();
    expect(await releasesOf(db(), [holder])).toEqual([
      {
        user_id: holder,
        source: 'register',
        outcome: 'released',
        details: { username: 'erin_w', claimed_by: taker },
      },
    ]);
  });

  it('is reported available by register_preflight, which releases it for the registration that asked', async () => {
    const holder = await claim(db(), 'frank', { createdAt: hoursAgo(30) });

    expect((await preflight(db(), 'Frank')).username_available).toBe(true);
    expect(await usernameOf(db(), holder)).toBeNull();
    expect(await releasesOf(db(), [holder])).toEqual([
      {
        user_id: holder,
        source: 'register',
        outcome: 'released',
        details: { username: 'frank', claimed_by: null },
      },
    ]);

    const taker = await claim(db(), 'Frank');
    expect(await usernameOf(db(), taker)).toBe('Frank');
    expect(await releasesOf(db(), [holder, taker])).toHaveLength(1);
  });

  it("is reported available by username_available, the before-user-created hook's check, which releases it", async () => {
    const holder = await claim(db(), 'gina', { createdAt: hoursAgo(30) });

    expect(await asService(db(), `select public.username_available('GINA') as r`)).toBe(true);
    expect(await usernameOf(db(), holder)).toBeNull();
    expect(await releasesOf(db(), [holder])).toEqual([
      {
        user_id: holder,
        source: 'ensure',
        outcome: 'released',
        details: { username: 'gina', claimed_by: null },
      },
    ]);
    expect(await asService(db(), `select public.username_available('nobody_has_this') as r`)).toBe(
      true,
    );
  });

  it('is not given back when the holder confirms after the lapse', async () => {
    const holder = await claim(db(), 'hank', { createdAt: hoursAgo(25) });
    const taker = await claim(db(), 'hank');
    await db().auth.query('update users set email_confirmed_at = now() where id = $1', [holder]);

    expect(await usernameOf(db(), holder)).toBeNull();
    expect(await usernameOf(db(), taker)).toBe('hank');
    expect((await preflight(db(), 'hank')).username_available).toBe(false);
  });

  it('is released to exactly one of 10 concurrent signups wanting it, and none of them fails', async () => {
    const holder = await claim(db(), 'ivy', { createdAt: hoursAgo(25) });
    const takers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => claim(db(), i % 2 === 0 ? 'IVY' : 'ivy')),
    );

    const names = await Promise.all(takers.map((id) => usernameOf(db(), id)));
    expect(names.filter((n) => n !== null)).toHaveLength(1);
    expect(await usernameOf(db(), holder)).toBeNull();
    const released = await releasesOf(db(), [holder]);
    expect(released).toHaveLength(1);
    expect(released[0]!.details.claimed_by).toBe(takers[names.findIndex((n) => n !== null)]);
    const outcomes = await db().query(
      `select outcome, count(*)::int as n from private.audit_logs where user_id = any($1) group by outcome`,
      [takers],
    );
    expect(outcomes.rows).toEqual([{ outcome: 'created', n: 10 }]);
  });
});

describe('a username that never lapses', () => {
  const db = useTestDatabase();

  it('belongs to a user who confirmed their email, however old', async () => {
    const holder = await claim(db(), 'judy', {
      createdAt: hoursAgo(24 * 365),
      emailConfirmed: true,
    });
    const second = await claim(db(), 'JUDY');
    expect(await usernameOf(db(), second)).toBeNull();
    expect((await preflight(db(), 'judy')).username_available).toBe(false);
    expect(await usernameOf(db(), holder)).toBe('judy');
    expect(await releasesOf(db(), [holder])).toEqual([]);
  });

  it('belongs to a user who confirmed a phone but no email (confirmed_at covers both)', async () => {
    const holder = await claim(db(), 'karl', { createdAt: hoursAgo(100) });
    await db().auth.query(
      `update users set phone = '15550100', phone_confirmed_at = now() where id = $1`,
      [holder],
    );
    expect((await preflight(db(), 'karl')).username_available).toBe(false);
    expect(await usernameOf(db(), holder)).toBe('karl');
  });

  it('belongs to an anonymous user, who has nothing to confirm', async () => {
    const holder = await claim(db(), 'lena', { createdAt: hoursAgo(100), email: null });
    await db().auth.query('update users set is_anonymous = true where id = $1', [holder]);
    expect((await preflight(db(), 'lena')).username_available).toBe(false);
    expect(await usernameOf(db(), holder)).toBe('lena');
  });
});

describe('private.settings.unconfirmed_username_ttl', () => {
  const db = useTestDatabase();

  it('decides when a claim lapses, effective on the next call', async () => {
    const holder = await claim(db(), 'mona', { createdAt: hoursAgo(2) });
    try {
      await db().query(`update private.settings set unconfirmed_username_ttl = '3 hours'`);
      expect((await preflight(db(), 'mona')).username_available).toBe(false);
      await db().query(`update private.settings set unconfirmed_username_ttl = '1 hour'`);
      expect((await preflight(db(), 'mona')).username_available).toBe(true);
      expect(await usernameOf(db(), holder)).toBeNull();
    } finally {
      await db().query(`update private.settings set unconfirmed_username_ttl = default`);
    }
  });

  it('may be 0 (an unconfirmed user holds no name against anyone) but not negative', async () => {
    const holder = await claim(db(), 'nora');
    try {
      await db().query(`update private.settings set unconfirmed_username_ttl = '0'`);
      const taker = await claim(db(), 'Nora');
      expect(await usernameOf(db(), taker)).toBe('Nora');
      expect(await usernameOf(db(), holder)).toBeNull();
      await expect(db().query(`update private.settings set unconfirmed_username_ttl = '-1 second'`))
        .rejects.toMatchObject({
          code: '23514',
          constraint: 'settings_unconfirmed_username_ttl_check',
        });
    } finally {
      await db().query(`update private.settings set unconfirmed_username_ttl = default`);
    }
  });
});

describe('release_lapsed_usernames, the sweep', () => {
  const db = useTestDatabase();

  it('releases only lapsed claims of unconfirmed users, oldest first, in batches of p_batch', async () => {
    const lapsed = [
      await claim(db(), 'oldest', { createdAt: hoursAgo(72) }),
      await claim(db(), 'older', { createdAt: hoursAgo(48) }),
      await claim(db(), 'old', { createdAt: hoursAgo(25) }),
    ];
    const kept = [
      await claim(db(), 'fresh', { createdAt: hoursAgo(1) }),
      await claim(db(), 'confirmed', { createdAt: hoursAgo(72), emailConfirmed: true }),
    ];
    const withoutName = await signUpAsSupabaseAuth(db(), { createdAt: hoursAgo(72) });

    const sweep = (batch: number) =>
      asService<number>(db(), 'select public.release_lapsed_usernames($1) as r', [batch]);
    expect(await sweep(2)).toBe(2);
    expect(await Promise.all(lapsed.map((id) => usernameOf(db(), id)))).toEqual([
      null,
      null,
      'old',
    ]);
    expect(await sweep(2)).toBe(1);
    expect(await sweep(2)).toBe(0);

    expect(await Promise.all([...lapsed, ...kept, withoutName].map((id) => usernameOf(db(), id))))
      .toEqual([
        null,
        null,
        null,
        'fresh',
        'confirmed',
        null,
      ]);
    expect(await releasesOf(db(), [...lapsed, ...kept, withoutName])).toEqual(
      [['oldest', 0], ['older', 1], ['old', 2]].map(([username, i]) => ({
        user_id: lapsed[i as number],
        source: 'reconcile',
        outcome: 'released',
        details: { username, claimed_by: null },
      })),
    );
  });

  it('uses 500 as its default batch and refuses a batch outside 1-10000 with 22023', async () => {
    expect(await asService(db(), 'select public.release_lapsed_usernames() as r')).toBe(0);
    for (const batch of [0, 10001, null]) {
      await expect(asService(db(), 'select public.release_lapsed_usernames($1) as r', [batch]))
        .rejects.toMatchObject({
          code: '22023',
          message: 'p_batch must be between 1 and 10000',
        });
    }
  });

  it('and username_available are executable by service_role only', async () => {
    for (const role of ['anon', 'authenticated'] as const) {
      for (
        const sql of [
          'select public.release_lapsed_usernames()',
          `select public.username_available('someone')`,
        ]
      ) {
        await expect(db().asRole(role, {}, (c) => c.query(sql))).rejects.toMatchObject({
          code: '42501',
        });
      }
    }
  });

  it('writes audit outcomes the check constraint now allows: released, and refused for a later migration; nothing else new', async () => {
    const insert = (outcome: string) =>
      db().query(
        `insert into private.audit_logs (operation, source, outcome) values ('constraint_test', 'reconcile', $1)`,
        [outcome],
      );
    await insert('released');
    await insert('refused');
    await expect(insert('bogus')).rejects.toMatchObject({
      code: '23514',
      constraint: 'audit_logs_row_check',
    });
    await db().query(`delete from private.audit_logs where operation = 'constraint_test'`);
  });

  it('username_available refuses a name that is not a valid username with 22023', async () => {
    for (const name of ['a b', null]) {
      await expect(asService(db(), 'select public.username_available($1) as r', [name])).rejects
        .toMatchObject({ code: '22023' });
    }
  });
});
