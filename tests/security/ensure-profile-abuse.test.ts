// One valid user token used as a weapon against ensure-profile (a real Deno worker behind the
// gateway, default settings): hundreds of calls in a burst must neither flood the audit trail nor
// move the success rate that health and the alerts judge, and a user Supabase Auth has banned
// keeps no power through a token issued before the ban.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SystemHealth, SystemStats } from '../../shared/rpc-results.ts';
import type { EnsureProfileAnswer, Reply } from '../helpers/bodies.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { type Answer, http, signedInUser } from './helpers.ts';

const db = useTestDatabase();
const api = useLocalApi(db, { functions: true });

/** ENSURE_RATE_LIMIT_MAX and ENSURE_RATE_LIMIT_WINDOW_SECONDS as the worker runs them (the defaults). */
const LIMIT = 30;
const WINDOW_SECONDS = 60;

async function ensureAs(token: string): Promise<Answer<Reply<EnsureProfileAnswer>>> {
  return await http<Reply<EnsureProfileAnswer>>(api(), '/functions/v1/ensure-profile', {
    method: 'POST',
    headers: { apikey: api().stack.keys.publishableKey, authorization: `Bearer ${token}` },
  });
}

/**
 * The limit counts in fixed minutes and repeats in fixed hours: a burst starts early in a minute
 * and not in the last minute of an hour, so it almost always falls in one window.
 */
async function startOfAMinute(): Promise<void> {
  const intoMinute = (Date.now() / 1000) % 60;
  const intoHour = (Date.now() / 1000) % 3600;
  if (intoMinute > 30 || intoHour > 3540) await sleep((61 - intoMinute) * 1000);
}

/**
 * How many of a user's calls the limit lets through: LIMIT per window the calls fell in (read
 * from the counters), so the assertions stay exact should a slow burst still cross a window edge.
 */
async function allowedCalls(userId: string): Promise<{ calls: number; allowed: number }> {
  const { rows } = await db().query<{ hits: number }>(
    `select sum(hits)::int as hits from private.rate_limits where bucket = $1 group by window_start`,
    [`ensure:${userId}`],
  );
  return {
    calls: rows.reduce((n, r) => n + r.hits, 0),
    allowed: rows.reduce((n, r) => n + Math.min(r.hits, LIMIT), 0),
  };
}

async function asService<T>(sql: string): Promise<T> {
  return await db().asRole('service_role', {}, async (c) => (await c.query(sql)).rows[0]?.r as T, {
    commit: true,
  });
}

/** What health and the alerts judge: the attempts, and the success rate, of stats and of health. */
async function judged(): Promise<Record<string, unknown>> {
  const stats = await asService<SystemStats>(
    `select public.profile_system_stats(interval '1 hour') as r`,
  );
  const health = await asService<SystemHealth>(`select public.profile_system_health() as r`);
  return {
    attempts: stats.attempts,
    success_rate: stats.success_rate,
    health_success_rate: health.checks.success_rate,
  };
}

async function ensureRows(userId: string) {
  const { rows } = await db().query(
    `select outcome, details from private.audit_logs where user_id = $1 and source = 'ensure' order by id`,
    [userId],
  );
  return rows;
}

beforeAll(async () => {
  // A failure in the window, so that an unchanged success rate is not merely 1 staying 1.
  await db().query(
    `insert into private.audit_logs (user_id, operation, source, outcome, sqlstate) values ($1, 'ensure_profile', 'register', 'failed', '57014')`,
    [
      randomUUID(),
    ],
  );
});

describe('a burst of ensure-profile calls with one access token', () => {
  it(`answers 300 calls with ${LIMIT} × 200 per window and 429 rate_limited with Retry-After for the rest, writes one existed audit row, and leaves the success rate as it was`, async () => {
    await startOfAMinute();
    const user = await signedInUser(db(), api());
    const first = await ensureAs(user.accessToken);
    expect({ status: first.status, profile_status: first.body?.profile_status }).toEqual({
      status: 200,
      profile_status: 'existed',
    });
    const before = await judged();
    const repeatsBefore = await asService<{ existed_repeats: number }>(
      `select public.profile_existed_repeats(interval '1 hour') as r`,
    );

    const burst = await Promise.all(Array.from({ length: 299 }, () => ensureAs(user.accessToken)));

    const ok = burst.filter((a) => a.status === 200);
    const limited = burst.filter((a) => a.status === 429);
    // In one window (nearly always): 29 more answers and 270 refusals.
    const { calls, allowed } = await allowedCalls(user.id);
    expect(calls).toBe(300);
    expect({ ok: ok.length + 1, limited: limited.length }).toEqual({
      ok: allowed,
      limited: 300 - allowed,
    });
    for (const answer of ok) expect(answer.body).toEqual(first.body);
    for (const answer of limited) {
      expect(answer.body).toEqual({
        error: {
          code: 'rate_limited',
          message: 'Too many ensure-profile calls for this user; try again later',
        },
      });
      const retryAfter = Number(answer.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
    }
    // The first answer is the one audit row; the 29 repeats are counted; the 270 refusals are neither.
    expect(await ensureRows(user.id)).toEqual([{ outcome: 'existed', details: {} }]);
    expect(await judged()).toEqual(before);
    const repeatsAfter = await asService<{ existed_repeats: number }>(
      `select public.profile_existed_repeats(interval '1 hour') as r`,
    );
    expect(repeatsAfter.existed_repeats).toBe(repeatsBefore.existed_repeats + ok.length);
  });

  it("limits each user on their own: another user's token is answered while the first is limited", async () => {
    await startOfAMinute();
    const noisy = await signedInUser(db(), api());
    const quiet = await signedInUser(db(), api());
    const burst = await Promise.all(
      Array.from({ length: LIMIT + 5 }, () => ensureAs(noisy.accessToken)),
    );
    const { allowed } = await allowedCalls(noisy.id);
    expect(burst.filter((a) => a.status === 429)).toHaveLength(LIMIT + 5 - allowed);
    expect(allowed).toBeLessThan(LIMIT + 5);
    expect((await ensureAs(quiet.accessToken)).status).toBe(200);
  });
});

describe('a banned user with a token issued before the ban', () => {
  it('gets 403 user_banned, one refused audit row per attempt, and no change to the profile', async () => {
    const user = await signedInUser(db(), api());
    const profile = await db().one(
      'select to_jsonb(p) as p from public.user_profiles p where user_id = $1',
      [user.id],
    );
    // What Supabase Auth's admin API writes for ban_duration "24h" (the stand-in does not take it).
    await db().auth.query(
      `update users set banned_until = now() + interval '24 hours', updated_at = now() where id = $1`,
      [user.id],
    );

    const answer = await ensureAs(user.accessToken);
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 403,
      body: { error: { code: 'user_banned', message: 'This user is banned' } },
    });
    expect(await ensureRows(user.id)).toEqual([{
      outcome: 'refused',
      details: { reason: 'banned' },
    }]);
    expect((await ensureAs(user.accessToken)).status).toBe(403);
    expect((await ensureRows(user.id)).map((r) => r.outcome)).toEqual(['refused', 'refused']);
    expect(
      await db().one('select to_jsonb(p) as p from public.user_profiles p where user_id = $1', [
        user.id,
      ]),
    ).toEqual(profile);
  });

  it('is answered again once the ban has run out', async () => {
    const user = await signedInUser(db(), api());
    await db().auth.query(
      `update users set banned_until = now() - interval '1 second', updated_at = now() where id = $1`,
      [user.id],
    );
    const answer = await ensureAs(user.accessToken);
    expect({ status: answer.status, profile_status: answer.body?.profile_status }).toEqual({
      status: 200,
      profile_status: 'existed',
    });
  });

  it('is refused past the limit without a refused row for those calls', async () => {
    await startOfAMinute();
    const user = await signedInUser(db(), api());
    await db().auth.query(
      `update users set banned_until = now() + interval '24 hours', updated_at = now() where id = $1`,
      [user.id],
    );
    const burst = await Promise.all(
      Array.from({ length: LIMIT + 10 }, () => ensureAs(user.accessToken)),
    );
    const { allowed } = await allowedCalls(user.id);
    expect(burst.filter((a) => a.status === 403)).toHaveLength(allowed);
    expect(burst.filter((a) => a.status === 429)).toHaveLength(LIMIT + 10 - allowed);
    expect(await ensureRows(user.id)).toHaveLength(allowed);
  });
});
