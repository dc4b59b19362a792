import { describe, expect, it } from 'vitest';
import {
  backoffDelay,
  isTransient,
  retry,
  RetryExhausted,
  type RetryPolicy,
} from '../../shared/retry.ts';

const POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 1000,
  deadlineMs: 10_000,
};

describe('backoffDelay', () => {
  it('draws uniformly below an exponential ceiling capped at maxDelay (full jitter)', () => {
    const ceilings = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, POLICY, () => 0.999999) + 1);
    expect(ceilings).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 3].map((n) => backoffDelay(n, POLICY, () => 0))).toEqual([0, 0, 0]);
    expect(backoffDelay(3, POLICY, () => 0.5)).toBe(200);
  });
});

describe('isTransient', () => {
  it.each([
    [
      'a network failure from fetch',
      Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }),
    ],
    ['a reset socket', { code: 'ECONNRESET' }],
    ['a timeout abort', { name: 'TimeoutError' }],
    ["supabase-js's AuthRetryableFetchError", { name: 'AuthRetryableFetchError', status: 503 }],
    ['HTTP 502', { status: 502 }],
    ['HTTP 503', { status: 503 }],
    ['HTTP 504', { status: 504 }],
    ['a serialization failure', { code: '40001' }],
    ['a deadlock', { code: '40P01' }],
    ['an admin shutdown', { code: '57P01' }],
    ['a connection exception', { code: '08006' }],
    ['too many connections', { code: '53300' }],
    ['PostgREST cannot connect', { code: 'PGRST000' }],
    ['PostgREST pool timeout', { code: 'PGRST003' }],
  ])('retries %s', (_label, error) => {
    expect(isTransient(error)).toBe(true);
  });

  it.each([
    ['a validation error', { status: 400, code: 'validation_failed' }],
    ['a weak password', { status: 422, code: 'weak_password' }],
    ['a conflict', { status: 409 }],
    ['a unique violation', { code: '23505' }],
    ['a check violation', { code: '23514' }],
    ['permission denied', { code: '42501' }],
    ['an unauthorised call', { status: 401 }],
    ['a forbidden call', { status: 403 }],
    ['rate limiting', { status: 429 }],
    ['a generic 500', { status: 500 }],
    ['a missing function', { code: 'PGRST202' }],
    ['a bad JWT', { code: 'PGRST301' }],
    ['an auth user that does not exist', { code: 'UP404' }],
    ['a plain error', new Error('boom')],
    ['null', null],
  ])('does not retry %s', (_label, error) => {
    expect(isTransient(error)).toBe(false);
  });
});

describe('retry', () => {
  function clock() {
    let t = 0;
    const sleeps: number[] = [];
    return {
      now: () => t,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        t += ms;
      },
      sleeps,
    };
  }

  it('returns the first success and sleeps the jittered schedule between transient failures', async () => {
    const c = clock();
    const attempts: number[] = [];
    const result = await retry(
      async (attempt) => {
        attempts.push(attempt);
        if (attempt < 4) throw { status: 503 };
        return 'ok';
      },
      POLICY,
      { ...c, random: () => 0.5 },
    );
    expect(result).toBe('ok');
    expect(attempts).toEqual([1, 2, 3, 4]);
    expect(c.sleeps).toEqual([50, 100, 200]);
  });

  it('stops at once on a permanent failure', async () => {
    const c = clock();
    const error = { status: 409 };
    await expect(retry(
      async () => {
        throw error;
      },
      POLICY,
      c,
    )).rejects.toMatchObject({
      attempts: 1,
      reason: 'permanent',
      lastError: error,
    });
    expect(c.sleeps).toEqual([]);
  });

  it('gives up after maxAttempts', async () => {
    const c = clock();
    let calls = 0;
    const failure = retry(
      async () => {
        calls++;
        throw { code: '40001' };
      },
      POLICY,
      { ...c, random: () => 0 },
    );
    await expect(failure).rejects.toBeInstanceOf(RetryExhausted);
    await expect(failure).rejects.toMatchObject({ attempts: 5, reason: 'attempts' });
    expect(calls).toBe(5);
  });

  it('never sleeps past the deadline', async () => {
    const c = clock();
    const policy = { ...POLICY, deadlineMs: 250, maxDelayMs: 200 };
    await expect(retry(
      async () => {
        throw { status: 504 };
      },
      policy,
      { ...c, random: () => 0.99 },
    )).rejects.toMatchObject({
      reason: 'deadline',
    });
    expect(c.now()).toBeLessThan(250);
    expect(c.sleeps).toEqual([99]);
  });

  it('shares one absolute deadline between calls: together they never sleep past it', async () => {
    const c = clock();
    const deadlineAt = 1000;
    const failing = () =>
      retry(
        async () => {
          throw { status: 503 };
        },
        { ...POLICY, maxAttempts: 100 },
        { ...c, random: () => 0.99, deadlineAt },
      );
    await expect(failing()).rejects.toMatchObject({ reason: 'deadline' });
    expect(c.sleeps).toEqual([99, 198, 396]);
    await expect(failing()).rejects.toMatchObject({ reason: 'deadline', attempts: 3 });
    expect(c.sleeps).toEqual([99, 198, 396, 99, 198]);
    expect(c.now()).toBe(990);
  });

  it('reports each retry with its attempt, delay and error', async () => {
    const seen: unknown[] = [];
    await retry(
      async (n) => {
        if (n === 1) throw { code: 'PGRST001' };
        return n;
      },
      POLICY,
      {
        ...clock(),
        random: () => 0.1,
        onRetry: (info) => seen.push(info),
      },
    );
    expect(seen).toEqual([{ attempt: 1, delayMs: 10, error: { code: 'PGRST001' } }]);
  });
});
