// GoTrue's per-address request limits (internal/api/apilimiter/apilimiter.go): tollbooth token
// buckets, one per key, that start full and refill continuously; tollbooth drops a key's bucket an
// hour after creating it (ExpirableOptions), so the key then starts full again. A refused request
// takes no token.
export interface RateLimit {
  /** Bucket capacity: how many requests a fresh key may make at once. */
  max: number;
  /** How long an empty bucket takes to refill completely. */
  windowSeconds: number;
}

/**
 * GOTRUE_RATE_LIMIT_OTP's default: 30 per 5 minutes (newLimiterPer5mOver1h, burst 30). GoTrue's
 * burst stays 30 whatever the rate; here the capacity is `max`, which is the same for the default.
 */
export const DEFAULT_SIGNUP_RATE_LIMIT: RateLimit = { max: 30, windowSeconds: 300 };

// tollbooth's DefaultExpirationTTL for these limiters.
const KEY_TTL_MS = 60 * 60 * 1000;

interface Bucket {
  tokens: number;
  createdAt: number;
  updatedAt: number;
}

export class AddressLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly refillPerMs: number;
  private lastSweep: number;

  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {
    this.refillPerMs = limit.max / (limit.windowSeconds * 1000);
    this.lastSweep = now();
  }

  /** Takes a token from `key`'s bucket; false when it is empty. */
  allow(key: string): boolean {
    const at = this.now();
    this.sweep(at);
    const known = this.buckets.get(key);
    const bucket = known && at - known.createdAt < KEY_TTL_MS
      ? known
      : { tokens: this.limit.max, createdAt: at, updatedAt: at };
    bucket.tokens = Math.min(
      this.limit.max,
      bucket.tokens + (at - bucket.updatedAt) * this.refillPerMs,
    );
    bucket.updatedAt = at;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  // Keeps the map from growing with every address ever seen.
  private sweep(at: number): void {
    if (at - this.lastSweep < 60_000) return;
    this.lastSweep = at;
    for (const [key, bucket] of this.buckets) {
      if (at - bucket.createdAt >= KEY_TTL_MS) this.buckets.delete(key);
    }
  }
}
