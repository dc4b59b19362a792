// The operator CLIs' flag parsing: strict, and done before any network call, so a bad flag or
// value is a UsageError that main() prints with the usage and exits 2 for.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad flag or value: main() prints it with the usage and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs in strict mode, no positionals; any parse error becomes a UsageError. */
export function parseFlags<T extends Options>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A whole number in [min, max] written as plain digits ("1e3", "12abc" and "" are refused). */
export function intFlag(
  name: string,
  raw: string | undefined,
  fallback: number | undefined,
  min: number,
  max: number,
): number | undefined {
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** A decimal number above zero ("0.5", "2"); negative, zero, "Infinity" and "1e3" are refused. */
export function positiveNumberFlag(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${name} must be a number greater than 0, got ${JSON.stringify(raw)}`);
  }
  return value;
}
