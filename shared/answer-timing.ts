// Equal timing for answers that must not be told apart. With email confirmation on, register
// answers "check your email" both to the request that created the account and to one whose
// email was registered already; the second path skips Auth's password hashing and the profile
// stage, so by itself it would answer several times faster. Both paths therefore wait until the
// same target has passed since the request began: the 90th percentile of how long the first
// path's work took recently (it follows the project's real speed, where a fixed floor would be
// too short on a slow day and needlessly long on a fast one), with a little jitter. Nearly every
// answer of either path then leaves at a time drawn from one distribution; only the slowest
// tenth of the first path is later, and by no more than its own work.

// How many recent durations the target follows: enough that the 90th percentile rests on several
// samples above it, few enough that it follows a change of speed within a few dozen signups.
const DEFAULT_SIZE = 64;
// A fresh instance's guess before any signup: about register's median on a local stack
// (BENCHMARKS.md, 231 ms); the first recorded durations replace it.
const DEFAULT_INITIAL_MS = 250;
// The percentile of recent durations the answers wait for (see above).
const TARGET_PERCENTILE = 0.9;
// Up to a tenth more, at random, so the padded answers draw no sharp edge of their own.
const MAX_JITTER = 0.1;

export interface AnswerTiming {
  /** Adds how long the work of a first-path answer took (before its pad). */
  record(durationMs: number): void;
  /** Resolves once the target time since startedAt (performance.now()) has passed. */
  pad(startedAt: number): Promise<void>;
}

interface AnswerTimingOptions {
  /** How many recent durations are kept. */
  size?: number;
  /** The typical duration assumed before any was recorded (a fresh instance). */
  initialMs?: number;
  random?: () => number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function createAnswerTiming(options: AnswerTimingOptions = {}): AnswerTiming {
  const size = options.size ?? DEFAULT_SIZE;
  const initialMs = options.initialMs ?? DEFAULT_INITIAL_MS;
  const random = options.random ?? Math.random;
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ??
    ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const recent: number[] = [];
  let next = 0;
  return {
    record(durationMs) {
      if (!Number.isFinite(durationMs) || durationMs < 0) return;
      if (recent.length < size) recent.push(durationMs);
      else recent[next] = durationMs;
      next = (next + 1) % size;
    },
    async pad(startedAt) {
      const sorted = [...recent].sort((a, b) => a - b);
      const p90 = sorted.length > 0
        ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * TARGET_PERCENTILE))]!
        : initialMs;
      const target = p90 * (1 + random() * MAX_JITTER);
      const wait = target - (now() - startedAt);
      if (wait > 0) await sleep(wait);
    },
  };
}
