// Request bodies the functions accept, validated with zod. Rules that the database also
// enforces come from profile-contract.ts, so a body that passes here never fails a check there.
import { z } from 'zod';
import type { Json } from './database.types.ts';
import { AppError, type FieldErrors } from './errors.ts';
import {
  AVATAR_URL_MAX_LENGTH,
  findReservedKey,
  FULL_NAME_MAX_LENGTH,
  isStorableJson,
  isStorableText,
  isValidAvatarUrl,
  isValidUsername,
  jsonbTextBytes,
  jsonDepth,
  METADATA_MAX_BYTES,
  METADATA_MAX_DEPTH,
} from './profile-contract.ts';

const UNSTORABLE_MESSAGE = 'must not contain U+0000 or unpaired surrogates';

// bcrypt, which Supabase Auth hashes with, ignores bytes past 72.
const PASSWORD_MAX_BYTES = 72;
export const PASSWORD_MIN_LENGTH = 6;
// The longest address SMTP can deliver to: RFC 5321's 256-octet path less its angle brackets.
const EMAIL_MAX_LENGTH = 254;
// hCaptcha and Turnstile tokens run to about two thousand characters (Turnstile documents 2048
// as its maximum): twice that accepts any real one and keeps arbitrary blobs from the provider.
const CAPTCHA_TOKEN_MAX_LENGTH = 4096;

const email = z
  .string({ error: 'must be a string' })
  .trim()
  .max(EMAIL_MAX_LENGTH, `must be at most ${EMAIL_MAX_LENGTH} characters`)
  .pipe(z.email({ error: 'must be a valid email address' }))
  .transform((v) => v.toLowerCase());

const fullName = z
  .string({ error: 'must be a string' })
  .trim()
  .min(1, 'must not be empty')
  .refine(
    (v) => [...v].length <= FULL_NAME_MAX_LENGTH,
    `must be at most ${FULL_NAME_MAX_LENGTH} characters`,
  )
  .refine(isStorableText, UNSTORABLE_MESSAGE);

const username = z
  .string({ error: 'must be a string' })
  .refine(
    isValidUsername,
    'must be 3-39 letters, digits, "_", "." or "-", not starting or ending with "." or "-"',
  );

const avatarUrl = z
  .string({ error: 'must be a string' })
  .refine(isValidAvatarUrl, `must be an http(s) URL of at most ${AVATAR_URL_MAX_LENGTH} characters`)
  .refine(isStorableText, UNSTORABLE_MESSAGE);

// Not z.record: it rebuilds the object key by key, and a "__proto__" key would silently vanish
// (here it is refused, with the other reserved keys, at any depth).
const metadata = z
  // A request body is parsed JSON, so an object here holds only JSON values.
  .custom<{ [key: string]: Json }>(
    (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
    { error: 'must be a JSON object' },
  )
  // First, and aborting: the checks after it recurse into the value.
  .refine((v) => jsonDepth(v) <= METADATA_MAX_DEPTH, {
    message: `must be nested at most ${METADATA_MAX_DEPTH} levels deep`,
    abort: true,
  })
  .superRefine((v, ctx) => {
    const reserved = findReservedKey(v);
    if (reserved) {
      ctx.addIssue({
        code: 'custom',
        message: `must not contain the key "${reserved.key}" (at ${reserved.at})`,
      });
    }
  })
  .refine(isStorableJson, UNSTORABLE_MESSAGE)
  .refine(
    (v) => jsonbTextBytes(v) <= METADATA_MAX_BYTES,
    `must be at most ${METADATA_MAX_BYTES} bytes of JSON`,
  );

export const RegisterBody = z
  .object({
    email,
    password: z
      .string({ error: 'must be a string' })
      .refine(
        (v) => new TextEncoder().encode(v).length <= PASSWORD_MAX_BYTES,
        `must be at most ${PASSWORD_MAX_BYTES} bytes`,
      ),
    full_name: fullName.optional(),
    username: username.optional(),
    avatar_url: avatarUrl.optional(),
    metadata: metadata.optional(),
    captcha_token: z.string({ error: 'must be a string' }).max(CAPTCHA_TOKEN_MAX_LENGTH).optional(),
  })
  .strict();
export type RegisterBody = z.infer<typeof RegisterBody>;

export const EnsureProfileBody = z
  .object({ user_id: z.uuid({ error: 'must be a UUID' }) })
  .strict();

/** A Supabase Database Webhook for INSERT on auth.users. */
export const DatabaseWebhookBody = z.object({
  type: z.literal('INSERT', { error: 'must be "INSERT"' }),
  table: z.literal('users', { error: 'must be "users"' }),
  schema: z.literal('auth', { error: 'must be "auth"' }),
  record: z.object({ id: z.uuid({ error: 'must be a UUID' }) }).passthrough(),
  old_record: z.null({ error: 'must be null for INSERT' }),
});

/** Supabase Auth's before-user-created hook payload. */
export const BeforeUserCreatedBody = z.object({
  metadata: z.object({ uuid: z.string(), time: z.string(), name: z.literal('before-user-created') })
    .passthrough(),
  user: z
    .object({
      id: z.string().optional(),
      email: z.string().optional(),
      user_metadata: z.unknown().optional(),
      raw_user_meta_data: z.unknown().optional(),
    })
    .passthrough(),
});

function has(input: unknown, path: PropertyKey[]): boolean {
  let node: unknown = input;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return false;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return true;
}

/**
 * zod issues as {field: message}, one message per field (the first), paths dotted; a field the
 * input lacks "is required", an unexpected one "is not a known field".
 */
export function fieldErrors(error: z.ZodError, input: unknown): FieldErrors {
  const fields: FieldErrors = {};
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        fields[[...issue.path, key].join('.')] ??= 'is not a known field';
      }
      continue;
    }
    if (issue.path.length === 0) {
      fields.body ??= issue.code === 'invalid_type' ? 'must be a JSON object' : issue.message;
      continue;
    }
    fields[issue.path.join('.')] ??= has(input, issue.path) ? issue.message : 'is required';
  }
  return fields;
}

/** The 400 for a body its schema refuses, with fieldErrors' message per field. */
export function invalidBody(error: z.ZodError, input: unknown): AppError {
  return new AppError(400, 'validation_failed', 'The request body is invalid', {
    fields: fieldErrors(error, input),
  });
}
