import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger };

// Keys whose values are secret wherever they appear, at any depth.
const SECRET_KEY =
  /pass(word)?|secret|token|authorization|api_?key|service_?role|cookie|signature|captcha/i;
// Values that are secrets whatever their key: JWTs, Supabase secret keys, webhook secrets, bearer headers.
const SECRET_VALUE = /eyJ[\w-]+\.[\w-]+\.[\w-]*|sb_secret_[\w-]+|whsec_[\w+/=-]+|Bearer\s+\S+/g;
const REDACTED = '[Redacted]';

function scrubString(value: string): string {
  return value.replace(SECRET_VALUE, REDACTED);
}

/** A deep copy with secret keys and secret-looking values replaced; cycles are cut. */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) {
    return {
      type: value.name,
      message: scrubString(value.message),
      ...(redact({ ...value }, seen) as object),
    };
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, seen));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] =
      SECRET_KEY.test(key) && item !== null && item !== undefined && typeof item !== 'boolean'
        ? REDACTED
        : redact(item, seen);
  }
  return out;
}

interface LoggerOptions {
  level?: string;
  /** Fields on every line, e.g. { function: 'register' }. */
  bindings?: Record<string, unknown>;
  /** Where lines go; stdout by default (Deno and Node). Tests pass a capturing stream. */
  destination?: DestinationStream;
}

/** JSON lines (pino) that never carry a password, token, key or authorization header. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: options.bindings ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label: string) => ({ level: label }),
      log: (object: Record<string, unknown>) => redact(object) as Record<string, unknown>,
    },
    hooks: {
      // Messages are strings too: scrub them like values.
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? scrubString(arg) : arg)));
      },
    },
  };
  // Synchronous writes to stdout, as console.log does: a function writes about one line per
  // request, and handing each to a background write costs more than writing it (and can be lost
  // when the worker is stopped).
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}
