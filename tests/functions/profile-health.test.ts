import { afterEach, describe, expect, it } from 'vitest';
import { createProfileHealthHandler } from '../../shared/profile-health-handler.ts';
import { useTestDatabase } from '../helpers/database.ts';
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

/**
 * Health reads the stored missing-profile count while it is younger than
 * settings.missing_count_max_age (a minute): a test that just made a user go missing (or fixed
 * one) forgets the stored count, as a reconcile run would refresh it.
 */
async function forgetMissingCount(): Promise<void> {
  await db().query('delete from private.missing_profile_census');
}

function handler(overrides: Record<string, string> = {}): (request: Request) => Promise<Response> {
  return createProfileHealthHandler({ config: api().config(overrides) });
}

function get(headers: Record<string, string> = {}, query = '', method = 'GET'): Request {
  return new Request(`${URL_}${query}`, { method, headers });
}

async function call(request: Request, overrides: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const response = await handler(overrides)(request);
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

const healthToken = () => api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** What the database itself says right now, to compare the full body against. */
async function databaseChecks(): Promise<unknown> {
  return (await db().one<{ checks: unknown }>(`select public.profile_system_health() -> 'checks' as checks`)).checks;
}

async function databaseStats(window: string): Promise<Record<string, unknown>> {
  const { stats } = await db().one<{ stats: Record<string, unknown> }>('select public.profile_system_stats($1::interval) as stats', [window]);
  return { ...stats, window: { from: expect.stringMatching(TIMESTAMP), to: expect.stringMatching(TIMESTAMP), seconds: (stats.window as { seconds: number }).seconds } };
}

describe('profile-health without a token', () => {
  it('answers 200 with only status and checked_at when the system is ok', async () => {
    const result = await call(get());
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
    const result = await call(get());
    expect(result).toEqual({ status: 503, body: { status: 'degraded', checked_at: expect.stringMatching(TIMESTAMP) } });
    expect(Object.keys(result.body)).toEqual(['status', 'checked_at']);
  });

  it('ignores ?window, which only shapes the stats a token unlocks', async () => {
    expect(await call(get({}, '?window=nonsense'))).toEqual({ status: 200, body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) } });
  });

  it('answers 503 down with error database_unreachable when the API cannot be reached', async () => {
    const result = await call(get(), { SUPABASE_URL: 'http://127.0.0.1:1' });
    expect(result).toEqual({ status: 503, body: { status: 'down', checked_at: expect.stringMatching(TIMESTAMP), error: 'database_unreachable' } });
  });

  it('answers 405 to POST and 204 to a CORS preflight', async () => {
    const post = await call(new Request(URL_, { method: 'POST' }));
    expect(post).toEqual({ status: 405, body: { error: { code: 'method_not_allowed', message: 'Use GET or HEAD' } } });
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
  ])('answers the full body, every check and 24 hours of stats, with %s', async (_label, headers) => {
    const result = await call(get(headers()));
    expect(result).toEqual({
      status: 200,
      body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP), checks: await databaseChecks(), stats: await databaseStats('24 hours') },
    });
    expect(result.body.checks).toEqual({
      trigger_installed: { ok: true, value: true },
      trigger_enabled: { ok: true, value: true },
      missing_profiles: { ok: true, value: 0, threshold: 0, grace_period_seconds: 300, counted_at: expect.stringMatching(TIMESTAMP) },
      success_rate: expect.objectContaining({ ok: true, threshold: 0.99, window_seconds: 900 }),
      repair_queue_age: { ok: true, value: null, threshold: 900, open: 0 },
    });
    expect(result.body.stats.window.seconds).toBe(86400);
  });

  it.each<[string, () => string]>([
    ['the legacy anon key', () => api().stack.keys.anonKey],
    ['the publishable key', () => api().stack.keys.publishableKey],
  ])('serves the public body to a caller whose only bearer is %s, as supabase-js sends it', async (_label, key) => {
    expect(await call(get(bearer(key())))).toEqual({ status: 200, body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) } });
  });

  it('accepts x-health-token next to the anon key that supabase-js puts in Authorization', async () => {
    const result = await call(get({ ...bearer(api().stack.keys.anonKey), 'x-health-token': healthToken() }));
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
    const result = await call(get(bearer(healthToken()), `?window=${window}`));
    expect(result.status).toBe(200);
    expect(result.body.stats).toEqual(await databaseStats(`${seconds} seconds`));
    expect(result.body.stats.window.seconds).toBe(seconds);
  });

  it.each(['15x', '0m', '367d', 'abc', '-5m', '1000000s', ''])('answers 400 naming window for ?window=%s', async (window) => {
    const result = await call(get(bearer(healthToken()), `?window=${encodeURIComponent(window)}`));
    expect(result).toEqual({
      status: 400,
      body: { error: { code: 'validation_failed', message: `window ${WINDOW_MESSAGE}`, fields: { window: WINDOW_MESSAGE } } },
    });
  });

  it('answers 400 naming format for an unknown format', async () => {
    expect(await call(get(bearer(healthToken()), '?format=xml'))).toEqual({
      status: 400,
      body: { error: { code: 'validation_failed', message: 'format must be json, prometheus or html', fields: { format: 'must be json, prometheus or html' } } },
    });
  });

  it.each<[string, () => Record<string, string>]>([
    ['a wrong bearer', () => bearer('not-the-health-token-at-all')],
    ['a wrong x-health-token', () => ({ 'x-health-token': 'not-the-health-token-at-all' })],
    ['the health token with a trailing character', () => bearer(`${healthToken()}x`)],
  ])('answers 401 to %s', async (_label, headers) => {
    expect(await call(get(headers()))).toEqual({
      status: 401,
      body: { error: { code: 'unauthorized', message: 'The health token or service key is not valid' } },
    });
  });

  it('answers 401 to the health token when PROFILE_HEALTH_TOKEN is unset, and still serves the public body', async () => {
    expect(await call(get(bearer(healthToken())), { PROFILE_HEALTH_TOKEN: '' })).toEqual({
      status: 401,
      body: { error: { code: 'unauthorized', message: 'The health token or service key is not valid' } },
    });
    expect(await call(get(), { PROFILE_HEALTH_TOKEN: '' })).toEqual({ status: 200, body: { status: 'ok', checked_at: expect.stringMatching(TIMESTAMP) } });
  });

  it('answers 503 with the full degraded verdict when the trigger is switched off', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    const result = await call(get(bearer(healthToken())));
    expect(result.status).toBe(503);
    expect(result.body.status).toBe('degraded');
    expect(result.body.checks.trigger_enabled).toEqual({ ok: false, value: false });
    expect(result.body.checks).toEqual(await databaseChecks());
  });

  it('answers 503 down with database_unreachable when the API cannot be reached', async () => {
    const result = await call(get(bearer(healthToken())), { SUPABASE_URL: 'http://127.0.0.1:1' });
    expect(result).toEqual({ status: 503, body: { status: 'down', checked_at: expect.stringMatching(TIMESTAMP), error: 'database_unreachable' } });
  });

  it('answers 503 down with stats_unavailable and the verdict when only the stats fail', async () => {
    await db().query('revoke execute on function public.profile_system_stats(interval) from service_role');
    let result: { status: number; body: any };
    try {
      result = await call(get(bearer(healthToken())));
    } finally {
      await db().query('grant execute on function public.profile_system_stats(interval) to service_role');
    }
    expect(result).toEqual({
      status: 503,
      body: { status: 'down', checked_at: expect.stringMatching(TIMESTAMP), checks: await databaseChecks(), error: 'stats_unavailable' },
    });
  });

  it('answers 503 down, with missing_profiles 1, when a user older than the grace period has no profile', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    const id = await signUpAsSupabaseAuth(db(), { createdAt: new Date(Date.now() - 10 * 60_000) });
    await db().query('update private.settings set trigger_enabled = true');
    await forgetMissingCount();
    try {
      expect(await call(get())).toEqual({ status: 503, body: { status: 'down', checked_at: expect.stringMatching(TIMESTAMP) } });
      const full = await call(get(bearer(healthToken())));
      expect(full.status).toBe(503);
      expect(full.body.status).toBe('down');
      expect(full.body.checks.missing_profiles).toEqual({ ok: false, value: 1, threshold: 0, grace_period_seconds: 300, counted_at: expect.stringMatching(TIMESTAMP) });
      expect(full.body.stats.missing_profiles).toBe(1);
    } finally {
      await db().query('delete from auth.users where id = $1', [id]);
      await forgetMissingCount();
    }
    expect((await call(get())).status).toBe(200);
  });

  it('counts missing profiles at most once per missing_count_max_age, however many calls come', async () => {
    await forgetMissingCount();
    expect((await call(get())).status).toBe(200);
    const first = await db().one<{ counted_at: Date }>('select counted_at from private.missing_profile_census');

    // A user goes missing: callers keep the stored count (ok) until it is a minute old...
    await db().query('update private.settings set trigger_enabled = false');
    const id = await signUpAsSupabaseAuth(db(), { createdAt: new Date(Date.now() - 10 * 60_000) });
    await db().query('update private.settings set trigger_enabled = true');
    try {
      for (let i = 0; i < 5; i++) expect((await call(get())).status).toBe(200);
      const full = await call(get(bearer(healthToken())));
      expect(full.body.checks.missing_profiles).toEqual({ ok: true, value: 0, threshold: 0, grace_period_seconds: 300, counted_at: expect.stringMatching(TIMESTAMP) });
      expect(Date.parse(full.body.checks.missing_profiles.counted_at)).toBe(first.counted_at.getTime());

      // ...and once it is older, the next call counts again and finds the user.
      await db().query(`update private.missing_profile_census set counted_at = counted_at - interval '61 seconds'`);
      expect((await call(get())).body.status).toBe('down');
      const recounted = await call(get(bearer(healthToken())));
      expect(recounted.body.checks.missing_profiles).toMatchObject({ ok: false, value: 1 });
      expect(Date.parse(recounted.body.checks.missing_profiles.counted_at)).toBeGreaterThan(first.counted_at.getTime());
    } finally {
      await db().query('delete from auth.users where id = $1', [id]);
      await forgetMissingCount();
    }
  });

  it('does not count a user younger than the grace period as missing', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    const id = await signUpAsSupabaseAuth(db(), { createdAt: new Date(Date.now() - 60_000) });
    await db().query('update private.settings set trigger_enabled = true');
    await forgetMissingCount();
    try {
      const full = await call(get(bearer(healthToken())));
      expect(full.status).toBe(200);
      expect(full.body.checks.missing_profiles).toEqual({ ok: true, value: 0, threshold: 0, grace_period_seconds: 300, counted_at: expect.stringMatching(TIMESTAMP) });
    } finally {
      await db().query('delete from auth.users where id = $1', [id]);
    }
  });
});

describe('profile-health as Prometheus metrics', () => {
  it('answers 200 OpenMetrics text with the verdict and stats, ending with # EOF', async () => {
    const response = await handler()(get(bearer(healthToken()), '?format=prometheus&window=15m'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
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
    const response = await handler()(get({ 'x-health-token': healthToken() }, '?format=prometheus'));
    expect(response.status).toBe(200);
    const lines = (await response.text()).split('\n');
    expect(lines).toContain('profile_health_status{status="degraded"} 1');
    expect(lines).toContain('profile_health_check_ok{check="trigger_enabled"} 0');
    expect(lines).toContain('profile_window_seconds 86400');
  });

  it('answers 401 to a metrics request without a token', async () => {
    expect(await call(get({}, '?format=prometheus'))).toEqual({
      status: 401,
      body: { error: { code: 'unauthorized', message: 'Metrics need the health token or the service key' } },
    });
  });
});
