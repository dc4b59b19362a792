import { afterEach, describe, expect, it } from 'vitest';
import { createProfileHealthHandler } from '../../shared/profile-health-handler.ts';
import type { FullHealth, PublicHealth } from '../helpers/bodies.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

const URL_ = 'http://127.0.0.1/functions/v1/profile-health';
const WINDOW_MESSAGE = 'must look like 90s, 15m, 24h or 7d (at most 366d)';
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

afterEach(async () => {
  await db().query('update private.settings set trigger_enabled = true');
});

/** An auth user signed up through Auth's write path while the trigger is switched off: no profile. */
async function userWithoutProfile(): Promise<string> {
  return await withTriggerOff(db(), async () => await signUpAsSupabaseAuth(db()));
}

async function removeUser(id: string): Promise<void> {
  await db().query('delete from private.repair_queue where user_id = $1', [id]);
  await db().query('delete from auth.users where id = $1', [id]);
  await db().query('delete from private.missing_profiles where user_id = $1', [id]);
}

function handler(overrides: Record<string, string> = {}): (request: Request) => Promise<Response> {
  return createProfileHealthHandler({ config: api().config(overrides) });
}

function get(headers: Record<string, string> = {}, query = '', method = 'GET'): Request {
  return new Request(`${URL_}${query}`, { method, headers });
}

/** The status and the parsed body (null when empty), typed B: what the test reads of it. */
async function call<B = unknown>(
  request: Request,
  overrides: Record<string, string> = {},
): Promise<{ status: number; body: B }> {
  const response = await handler(overrides)(request);
  const text = await response.text();
  return { status: response.status, body: (text === '' ? null : JSON.parse(text)) as B };
}

const healthToken = () => api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * What the database itself says right now, to compare the full body against. Health counts the
 * missing profiles live, so missing_profiles.counted_at is the time of each call (the answer's
 * checked_at), never the same twice.
 */
async function databaseChecks(): Promise<unknown> {
  const { checks } = await db().one<{ checks: Record<string, Record<string, unknown>> }>(
    `select public.profile_system_health() -> 'checks' as checks`,
  );
  return {
    ...checks,
    missing_profiles: { ...checks.missing_profiles, counted_at: expect.stringMatching(TIMESTAMP) },
  };
}

async function databaseStats(window: string): Promise<Record<string, unknown>> {
  const { stats } = await db().one<{ stats: Record<string, unknown> }>(
    'select public.profile_system_stats($1::interval) as stats',
    [window],
  );
  return {
    ...stats,
    window: {
      from: expect.stringMatching(TIMESTAMP),
      to: expect.stringMatching(TIMESTAMP),
      seconds: (stats.window as { seconds: number }).seconds,
    },
  };
}

describe('profile-health without a token', () => {
  it('answers 200 with only status and checked_at when the system is ok', async () => {
    const result = await call<PublicHealth>(get());
    expect(result.status).toBe(200);
    expect(Object.keys(result.body)).toEqual(['status', 'checked_at']);
    expect(result.body).toEqual({ status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) });
    expect(Math.abs(Date.parse(result.body.checked_at) - Date.now())).toBeLessThan(60_000);
  });

  it('answers HEAD with the same status and no body', async () => {
    const response = await handler()(get({}, '', 'HEAD'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.text()).toBe('');
  });

  it('answers 503 degraded, still with only status and checked_at, when the trigger is switched off', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    const result = await call<PublicHealth>(get());
    expect(result).toEqual({
      status: 503,
      body: { status: 'degraded', checked_at: expect.stringMatching(TIMESTAMP) },
    });
    expect(Object.keys(result.body)).toEqual(['status', 'checked_at']);
  });

  it('ignores ?window, which only shapes the stats a token unlocks', async () => {
    expect(await call(get({}, '?window=nonsense'))).toEqual({
      status: 200,
      body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) },
    });
  });

  it('answers 503 down with error database_unreachable when the API cannot be reached', async () => {
    const result = await call(get(), { SUPABASE_URL: 'http://127.0.0.1:1' });
    expect(result).toEqual({
      status: 503,
      body: {
        status: 'down',
        checked_at: expect.stringMatching(TIMESTAMP),
        error: 'database_unreachable',
      },
    });
  });

  it('answers 405 to POST and 204 to a CORS preflight', async () => {
    const post = await call(new Request(URL_, { method: 'POST' }));
    expect(post).toEqual({
      status: 405,
      body: { error: { code: 'method_not_allowed', message: 'Use GET or HEAD' } },
    });
    const preflight = await handler()(new Request(URL_, { method: 'OPTIONS' }));
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, HEAD, POST, OPTIONS');
  });
});

describe('profile-health with a token', () => {
  it.each<[string, () => Record<string, string>]>([
    ['the health token as a bearer', () => bearer(healthToken())],
    ['the health token in x-health-token', () => ({ 'x-health-token': healthToken() })],
    ['the secret key', () => bearer(api().stack.keys.secretKey)],
    ['the legacy service_role key', () => bearer(api().stack.keys.serviceRoleKey)],
  ])(
    'answers the full body, every check and 24 hours of stats, with %s',
    async (_label, headers) => {
      const result = await call<FullHealth>(get(headers()));
      expect(result).toEqual({
        status: 200,
        body: {
          status: 'ok',
          checked_at: expect.stringMatching(TIMESTAMP),
          checks: await databaseChecks(),
          stats: await databaseStats('24 hours'),
        },
      });
      expect(result.body.checks).toEqual({
        trigger_installed: { ok: true, value: true },
        trigger_enabled: { ok: true, value: true },
        missing_profiles: {
          ok: true,
          value: 0,
          threshold: 0,
          queued: 0,
          counted_at: result.body.checked_at,
          last_full_scan_at: null,
        },
        success_rate: expect.objectContaining({ ok: true, threshold: 0.99, window_seconds: 900 }),
        repair_queue_age: { ok: true, value: null, threshold: 900, open: 0 },
      });
      expect(result.body.stats.window.seconds).toBe(86400);
    },
  );

  it.each<[string, () => string]>([
    ['the legacy anon key', () => api().stack.keys.anonKey],
    ['the publishable key', () => api().stack.keys.publishableKey],
  ])(
    'serves the public body to a caller whose only bearer is %s, as supabase-js sends it',
    async (_label, key) => {
      expect(await call(get(bearer(key())))).toEqual({
        status: 200,
        body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) },
      });
    },
  );

  it('accepts x-health-token next to the anon key that supabase-js puts in Authorization', async () => {
    const result = await call<FullHealth>(
      get({ ...bearer(api().stack.keys.anonKey), 'x-health-token': healthToken() }),
    );
    expect(result.status).toBe(200);
    expect(Object.keys(result.body).sort()).toEqual(['checked_at', 'checks', 'stats', 'status']);
  });

  it.each([
    ['15m', 900],
    ['90s', 90],
    ['24h', 86400],
    ['7d', 604800],
    ['366d', 31622400],
  ])('passes ?window=%s to the stats as %i seconds', async (window, seconds) => {
    const result = await call<FullHealth>(get(bearer(healthToken()), `?window=${window}`));
    expect(result.status).toBe(200);
    expect(result.body.stats).toEqual(await databaseStats(`${seconds} seconds`));
    expect(result.body.stats.window.seconds).toBe(seconds);
  });

  it.each(['15x', '0m', '367d', 'abc', '-5m', '1000000s', ''])(
    'answers 400 naming window for ?window=%s',
    async (window) => {
      const result = await call(
        get(bearer(healthToken()), `?window=${encodeURIComponent(window)}`),
      );
      expect(result).toEqual({
        status: 400,
        body: {
          error: {
            code: 'validation_failed',
            message: `window ${WINDOW_MESSAGE}`,
            fields: { window: WINDOW_MESSAGE },
          },
        },
      });
    },
  );

  it('answers 400 naming format for an unknown format', async () => {
    expect(await call(get(bearer(healthToken()), '?format=xml'))).toEqual({
      status: 400,
      body: {
        error: {
          code: 'validation_failed',
          message: 'format must be json, prometheus or html',
          fields: { format: 'must be json, prometheus or html' },
        },
      },
    });
  });

  it.each<[string, () => Record<string, string>]>([
    ['a wrong bearer', () => bearer('not-the-health-token-at-all')],
    ['a wrong x-health-token', () => ({ 'x-health-token': 'not-the-health-token-at-all' })],
    ['the health token with a trailing character', () => bearer(`${healthToken()}x`)],
  ])('answers 401 to %s', async (_label, headers) => {
    expect(await call(get(headers()))).toEqual({
      status: 401,
      body: {
        error: { code: 'unauthorized', message: 'The health token or service key is not valid' },
      },
    });
  });

  it('answers 401 to the health token when PROFILE_HEALTH_TOKEN is unset, and still serves the public body', async () => {
    expect(await call(get(bearer(healthToken())), { PROFILE_HEALTH_TOKEN: '' })).toEqual({
      status: 401,
      body: {
        error: { code: 'unauthorized', message: 'The health token or service key is not valid' },
      },
    });
    expect(await call(get(), { PROFILE_HEALTH_TOKEN: '' })).toEqual({
      status: 200,
      body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) },
    });
  });

  it('answers 503 with the full degraded verdict when the trigger is switched off', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    const result = await call<FullHealth>(get(bearer(healthToken())));
    expect(result.status).toBe(503);
    expect(result.body.status).toBe('degraded');
    expect(result.body.checks.trigger_enabled).toEqual({ ok: false, value: false });
    expect(result.body.checks).toEqual(await databaseChecks());
  });

  it('answers 503 down with database_unreachable when the API cannot be reached', async () => {
    const result = await call(get(bearer(healthToken())), { SUPABASE_URL: 'http://127.0.0.1:1' });
    expect(result).toEqual({
      status: 503,
      body: {
        status: 'down',
        checked_at: expect.stringMatching(TIMESTAMP),
        error: 'database_unreachable',
      },
    });
  });

  it('answers 503 down with stats_unavailable and the verdict when only the stats fail', async () => {
    await db().query(
      'revoke execute on function public.profile_system_stats(interval) from service_role',
    );
    let result: { status: number; body: unknown };
    try {
      result = await call(get(bearer(healthToken())));
    } finally {
      await db().query(
        'grant execute on function public.profile_system_stats(interval) to service_role',
      );
    }
    expect(result).toEqual({
      status: 503,
      body: {
        status: 'down',
        checked_at: expect.stringMatching(TIMESTAMP),
        checks: await databaseChecks(),
        error: 'stats_unavailable',
      },
    });
  });

  it('answers 503 down with missing_profiles 1 as soon as a user signed up with the trigger switched off, and 200 once it has a profile', async () => {
    const id = await userWithoutProfile();
    try {
      // No grace period: the signup that just committed is counted by the very next call.
      expect(await call(get())).toEqual({
        status: 503,
        body: { status: 'down', checked_at: expect.stringMatching(TIMESTAMP) },
      });
      const full = await call<FullHealth>(get(bearer(healthToken())));
      expect(full.status).toBe(503);
      expect(full.body.status).toBe('down');
      expect(full.body.checks.missing_profiles).toEqual({
        ok: false,
        value: 1,
        threshold: 0,
        queued: 0,
        counted_at: full.body.checked_at,
        last_full_scan_at: null,
      });
      expect(full.body.checks.trigger_enabled).toEqual({ ok: true, value: true });
      expect(full.body.stats.missing_profiles).toBe(1);

      await db().query(`select private.ensure_profile($1, 'ensure')`, [id]);
      expect(await call(get())).toEqual({
        status: 200,
        body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) },
      });
    } finally {
      await removeUser(id);
    }
  });

  it('counts on every call: five calls in a row after a user goes missing all answer down, each counted at its own time', async () => {
    expect((await call(get())).status).toBe(200);
    const id = await userWithoutProfile();
    try {
      const countedAt: string[] = [];
      for (let i = 0; i < 5; i++) {
        const full = await call<FullHealth>(get(bearer(healthToken())));
        expect(full.status).toBe(503);
        expect(full.body.checks.missing_profiles).toMatchObject({
          ok: false,
          value: 1,
          counted_at: full.body.checked_at,
        });
        countedAt.push(full.body.checks.missing_profiles.counted_at);
      }
      expect(new Set(countedAt).size).toBe(5);
    } finally {
      await removeUser(id);
    }
    expect((await call(get())).status).toBe(200);
  });

  it('does not count a user whose repair waits in the queue as missing, but reports it as queued', async () => {
    const id = await userWithoutProfile();
    await db().query(
      `insert into private.repair_queue (user_id, source, reason, first_failed_at, next_attempt_at)
       values ($1, 'register', 'profile creation failed', now() - interval '2 minutes', now() + interval '1 hour')`,
      [id],
    );
    try {
      expect(await call(get())).toEqual({
        status: 200,
        body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) },
      });
      const full = await call<FullHealth>(get(bearer(healthToken())));
      expect(full.status).toBe(200);
      expect(full.body.checks.missing_profiles).toEqual({
        ok: true,
        value: 0,
        threshold: 0,
        queued: 1,
        counted_at: full.body.checked_at,
        last_full_scan_at: null,
      });
      expect(full.body.checks.repair_queue_age).toEqual({
        ok: true,
        value: expect.any(Number),
        threshold: 900,
        open: 1,
      });
      expect(full.body.checks.repair_queue_age.value).toBeGreaterThanOrEqual(120);
      expect(full.body.checks.repair_queue_age.value).toBeLessThan(180);
      expect(full.body.stats.missing_profiles).toBe(0);

      // Once nothing holds the user any more (the entry closed by hand, still no profile), it is missing.
      await db().query(
        `update private.repair_queue set resolved_at = now(), resolution = 'manual' where user_id = $1`,
        [id],
      );
      const after = await call<FullHealth>(get(bearer(healthToken())));
      expect(after.status).toBe(503);
      expect(after.body.checks.missing_profiles).toMatchObject({ ok: false, value: 1, queued: 0 });
    } finally {
      await removeUser(id);
    }
  });
});

describe('profile-health as Prometheus metrics', () => {
  it('answers 200 OpenMetrics text with the verdict and stats, ending with # EOF', async () => {
    const response = await handler()(get(bearer(healthToken()), '?format=prometheus&window=15m'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(
      'application/openmetrics-text; version=1.0.0; charset=utf-8',
    );
    const text = await response.text();
    const lines = text.split('\n');
    expect(lines.filter((line) => line.startsWith('profile_health_status'))).toEqual([
      'profile_health_status{status="ok"} 1',
      'profile_health_status{status="degraded"} 0',
      'profile_health_status{status="down"} 0',
    ]);
    expect(lines).toContain('profile_health_check_ok{check="trigger_enabled"} 1');
    expect(lines).toContain('profile_missing_profiles 0');
    expect(lines).toContain('profile_repair_queue_open 0');
    expect(lines).toContain('profile_window_seconds 900');
    expect(text.endsWith('\n# EOF\n')).toBe(true);
  });

  it('answers 200 while degraded, with the verdict in the metrics', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    const response = await handler()(
      get({ 'x-health-token': healthToken() }, '?format=prometheus'),
    );
    expect(response.status).toBe(200);
    const lines = (await response.text()).split('\n');
    expect(lines).toContain('profile_health_status{status="degraded"} 1');
    expect(lines).toContain('profile_health_check_ok{check="trigger_enabled"} 0');
    expect(lines).toContain('profile_window_seconds 86400');
  });

  it('answers 401 to a metrics request without a token', async () => {
    expect(await call(get({}, '?format=prometheus'))).toEqual({
      status: 401,
      body: {
        error: {
          code: 'unauthorized',
          message: 'Metrics need the health token or the service key',
        },
      },
    });
  });
});
