// GoTrue's per-address token buckets (internal/api/apilimiter/apilimiter.go), on a clock the test
// moves.
import { describe, expect, it } from 'vitest';
import { AddressLimiter, DEFAULT_SIGNUP_RATE_LIMIT } from '../../dev/auth/rate-limit.ts';

function clockedLimiter(limit = DEFAULT_SIGNUP_RATE_LIMIT) {
  let now = 1_000_000;
  const limiter = new AddressLimiter(limit, () => now);
  return { limiter, advance: (ms: number) => (now += ms) };
}

const takes = (limiter: AddressLimiter, key: string, count: number) =>
  Array.from({ length: count }, () => limiter.allow(key));

describe('the per-address limiter', () => {
  it("defaults to GOTRUE_RATE_LIMIT_OTP's 30 per 5 minutes: a burst of 30, then one request per 10 seconds", () => {
    expect(DEFAULT_SIGNUP_RATE_LIMIT).toEqual({ max: 30, windowSeconds: 300 });
    const { limiter, advance } = clockedLimiter();
    expect(takes(limiter, '198.51.100.1', 31)).toEqual([...Array(30).fill(true), false]);
    advance(9_999);
    expect(limiter.allow('198.51.100.1')).toBe(false);
    advance(1);
    expect(takes(limiter, '198.51.100.1', 2)).toEqual([true, false]);
  });

  it('keeps one bucket per key, and a refused request takes no token', () => {
    const { limiter, advance } = clockedLimiter({ max: 2, windowSeconds: 20 });
    expect(takes(limiter, 'a', 5)).toEqual([true, true, false, false, false]);
    expect(takes(limiter, 'b', 2)).toEqual([true, true]);
    advance(10_000);
    expect(takes(limiter, 'a', 2)).toEqual([true, false]);
  });

  it("forgets a key an hour after its bucket was made, as tollbooth's expirable buckets do", () => {
    const { limiter, advance } = clockedLimiter({ max: 3, windowSeconds: 86_400 });
    expect(takes(limiter, 'a', 4)).toEqual([true, true, true, false]);
    advance(60 * 60 * 1000 - 1);
    expect(limiter.allow('a')).toBe(false);
    advance(1);
    expect(takes(limiter, 'a', 4)).toEqual([true, true, true, false]);
  });
});
