// The public SQL contract of supabase/migrations, as TypeScript: what backfill_missing_profiles,
// profile_system_stats and profile_system_health return (checked in rpc-results.ts), and the
// validation rules the database enforces, so callers can check input before it reaches SQL.
// Runtime-neutral: no imports, runs under Deno and Node alike.

/** Layers that create profiles (user_profiles.created_via). */
export const PROFILE_CREATORS = ['trigger', 'register', 'ensure', 'webhook', 'backfill'] as const;
export type ProfileCreator = (typeof PROFILE_CREATORS)[number];

/** Sources a caller may pass to ensure_user_profile (the trigger is the database's own). */
const ENSURE_SOURCES = ['register', 'ensure', 'webhook', 'backfill', 'reconcile'] as const;
export type EnsureSource = (typeof ENSURE_SOURCES)[number];

/** SQLSTATEs the contract raises on purpose. */
export const SQLSTATE = {
  /** ensure_user_profile: the auth user does not exist. */
  AUTH_USER_NOT_FOUND: 'UP404',
  /** Any contract function: an argument is invalid; the message names it. */
  INVALID_PARAMETER: '22023',
} as const;

/** Mirrors private.is_valid_username: 3-39 of [A-Za-z0-9_.-], first and last not '.' or '-'. */
export const USERNAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{1,37}[A-Za-z0-9_]$/;
export const FULL_NAME_MAX_LENGTH = 200;
export const AVATAR_URL_MAX_LENGTH = 2048;
export const METADATA_MAX_BYTES = 16384;

// PostgreSQL text and jsonb cannot hold U+0000, and an unpaired UTF-16 surrogate cannot become
// UTF-8: such input is refused up front instead of failing (and being retried) in the database.
// deno-lint-ignore no-control-regex -- matching U+0000 is the point of this pattern
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Deeper metadata is refused: real profile metadata is shallow, and deep values overflow parsers. */
export const METADATA_MAX_DEPTH = 32;

/** Nesting depth of a JSON value (a scalar is 0), computed without recursion. */
export function jsonDepth(value: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > METADATA_MAX_DEPTH) return deepest;
    for (const child of Object.values(item as Record<string, unknown>)) {
      stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/**
 * Object keys profile metadata may not have at any depth, in objects and in arrays alike: an app
 * that merges metadata into its own objects (Object.assign, spread, a deep merge) would let the
 * user who wrote it reach the prototype chain. Mirrors private.reserved_metadata_keys(); the
 * database strips them from provider metadata and refuses them in ensure_user_profile.
 */
export const RESERVED_METADATA_KEYS = ['__proto__', 'constructor', 'prototype'] as const;
type ReservedMetadataKey = (typeof RESERVED_METADATA_KEYS)[number];

const RESERVED_KEY_SET: ReadonlySet<string> = new Set(RESERVED_METADATA_KEYS);
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * The first reserved key in a JSON value, in document order, and where it is: `at` is the path
 * of the object holding it, starting at `root` (`metadata.a.list[2]`, `metadata["odd key"]`).
 * Null when there is none. Computed without recursion, like jsonDepth.
 */
export function findReservedKey(
  value: unknown,
  root = 'metadata',
): { key: ReservedMetadataKey; at: string } | null {
  const stack: Array<[unknown, string]> = [[value, root]];
  while (stack.length > 0) {
    const [item, at] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push([item[i], `${at}[${i}]`]);
      continue;
    }
    // Own keys only, "__proto__" included: JSON.parse makes it an own property.
    const keys = Object.keys(item);
    const reserved = keys.find((key) => RESERVED_KEY_SET.has(key));
    if (reserved !== undefined) return { key: reserved as ReservedMetadataKey, at };
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      stack.push([
        (item as Record<string, unknown>)[key],
        PLAIN_KEY.test(key) ? `${at}.${key}` : `${at}[${JSON.stringify(key)}]`,
      ]);
    }
  }
  return null;
}

export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text);
}

export function isStorableJson(value: unknown): boolean {
  if (typeof value === 'string') return isStorableText(value);
  if (Array.isArray(value)) return value.every(isStorableJson);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([k, v]) => isStorableText(k) && isStorableJson(v));
  }
  return true;
}

/** A number as jsonb prints it: never in exponent notation. */
function numericText(n: number): string {
  const text = JSON.stringify(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i.exec(text);
  if (!m || m[4] === undefined) return text;
  const [, sign, whole, fraction = ''] = m;
  const digits = whole! + fraction;
  const point = whole!.length + Number(m[4]);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/**
 * Bytes of value::jsonb::text, which user_profiles_metadata_check limits: jsonb prints
 * ", " and ": " separators and numbers in full, so JSON.stringify's length undercounts it.
 */
export function jsonbTextBytes(value: unknown): number {
  const encoder = new TextEncoder();
  const size = (item: unknown): number => {
    if (item === null || typeof item === 'boolean') return String(item).length;
    if (typeof item === 'number') return numericText(item).length;
    if (typeof item === 'string') return encoder.encode(JSON.stringify(item)).length;
    if (Array.isArray(item)) {
      return 2 + item.reduce<number>((sum, v, i) => sum + size(v) + (i > 0 ? 2 : 0), 0);
    }
    if (typeof item === 'object') {
      return 2 + Object.entries(item as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .reduce<number>(
          (sum, [k, v], i) =>
            sum + encoder.encode(JSON.stringify(k)).length + 2 + size(v) + (i > 0 ? 2 : 0),
          0,
        );
    }
    return 0;
  };
  return size(value);
}

export function isValidUsername(username: string): boolean {
  return USERNAME_PATTERN.test(username);
}

/** Mirrors private.is_valid_avatar_url: http(s), no whitespace, at most 2048 characters. */
export function isValidAvatarUrl(url: string): boolean {
  // PostgreSQL's char_length counts code points; String.length counts UTF-16 units.
  return [...url].length <= AVATAR_URL_MAX_LENGTH && /^https?:\/\/\S+$/.test(url);
}

// The shapes the database answers in, defined once with their runtime checks in rpc-results.ts.
export type { BackfillBatch, SystemHealth, SystemStats, UserProfile } from './rpc-results.ts';
