// Idempotency-Key handling for POST endpoints, stored in the database (idempotency_claim and
// friends) so every function instance sees the same keys.
import type { Json } from './database.types.ts';
import { AppError, serviceUnavailable } from './errors.ts';
import { errorBody } from './http.ts';
import type { Logger } from './logger.ts';
import type { RetryPolicy } from './retry.ts';
import type { Claim } from './rpc-results.ts';
import { callRpc, rpcOnce } from './rpc.ts';
import type { SupabaseClient } from './supabase-client.ts';

const KEY = /^[\x21-\x7e]{1,255}$/;

// When the key's store cannot be reached. A failed claim comes before any work, so an early retry
// costs little; a failed complete is only logged (the answer stands, see answerOncePerKey).
const STORE_RETRY_AFTER_SECONDS = 2;

// The first request with the key is still running, and its deadline (PROFILE_RETRY_DEADLINE_MS,
// seconds) bounds how long: asking again each second finds its answer soon after it is stored.
const IN_PROGRESS_RETRY_AFTER_SECONDS = 1;

/** The Idempotency-Key header, or null; a malformed key is the caller's error. */
function idempotencyKeyOf(request: Request): string | null {
  const key = request.headers.get('idempotency-key');
  if (key === null) return null;
  if (!KEY.test(key)) {
    throw new AppError(
      400,
      'validation_failed',
      'Idempotency-Key must be 1-255 printable ASCII characters',
      {
        fields: { 'Idempotency-Key': 'must be 1-255 printable ASCII characters' },
      },
    );
  }
  return key;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** HMAC-SHA256 of the canonical body keyed with a server secret: comparable, not guessable. */
export async function requestHash(secret: string, body: unknown): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(canonicalJson(body)));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export interface IdempotencyStore {
  /** deadlineAt: the request's deadline, within which a transient failure is retried. */
  claim(key: string, hash: string, deadlineAt?: number): Promise<Claim>;
  complete(
    key: string,
    hash: string,
    status: number,
    response: unknown,
    deadlineAt?: number,
  ): Promise<void>;
  release(key: string, hash: string): Promise<void>;
}

/** What the database stores of an answer: its JSON text, read back (undefined members dropped). */
function asJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null));
}

export function databaseIdempotencyStore(
  supabase: SupabaseClient,
  scope: string,
  ttlSeconds: number,
  policy: RetryPolicy,
): IdempotencyStore {
  const hooks = (
    deadlineAt: number | undefined,
  ) => (deadlineAt !== undefined ? { deadlineAt } : {});
  return {
    async claim(key, hash, deadlineAt) {
      try {
        return await callRpc(
          supabase,
          'idempotency_claim',
          { p_scope: scope, p_key: key, p_request_hash: hash, p_ttl_seconds: ttlSeconds },
          policy,
          hooks(deadlineAt),
        );
      } catch (error) {
        throw serviceUnavailable(
          'Could not check the Idempotency-Key; try again shortly',
          STORE_RETRY_AFTER_SECONDS,
          error,
        );
      }
    },
    async complete(key, hash, status, response, deadlineAt) {
      try {
        await callRpc(
          supabase,
          'idempotency_complete',
          {
            p_scope: scope,
            p_key: key,
            p_request_hash: hash,
            p_status: status,
            p_response: asJson(response),
          },
          policy,
          hooks(deadlineAt),
        );
      } catch (error) {
        throw serviceUnavailable(
          'Could not store the answer for the Idempotency-Key',
          STORE_RETRY_AFTER_SECONDS,
          error,
        );
      }
    },
    async release(key, hash) {
      await rpcOnce(supabase, 'idempotency_release', {
        p_scope: scope,
        p_key: key,
        p_request_hash: hash,
      });
    },
  };
}

export interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** What a claim that is not ours means for the caller. */
function answerForClaim(claim: Exclude<Claim, { state: 'claimed' }>): Answer {
  switch (claim.state) {
    case 'replay':
      return {
        status: claim.status,
        body: claim.response,
        headers: { 'Idempotency-Replayed': 'true' },
      };
    case 'in_progress':
      throw new AppError(
        409,
        'idempotency_in_progress',
        'A request with this Idempotency-Key is still running; retry shortly',
        {
          headers: { 'Retry-After': String(IN_PROGRESS_RETRY_AFTER_SECONDS) },
        },
      );
    case 'mismatch':
      throw new AppError(
        422,
        'idempotency_key_reused',
        'This Idempotency-Key was used for a different request',
        {
          fields: { 'Idempotency-Key': 'was used for a different request body' },
        },
      );
  }
}

interface AnswerOncePerKeyOptions {
  store: IdempotencyStore;
  /** Keys requestHash: a server secret, so a body's hash cannot be guessed. */
  secret: string;
  deadlineAt: number;
  log: Logger;
}

/**
 * Answers a request through `run` at most once per Idempotency-Key: a repeat with the same body
 * gets the stored answer (Idempotency-Replayed), one while the first still runs a 409, the key
 * with another body a 422. `run` gets the key and the body's hash, or null without a key. Its
 * answer, or its final refusal (a 4xx other than 429), is stored; any other failure frees the key.
 */
export async function answerOncePerKey(
  request: Request,
  body: unknown,
  options: AnswerOncePerKeyOptions,
  run: (idempotency: { key: string; hash: string } | null) => Promise<Answer>,
): Promise<Answer> {
  const { store, deadlineAt, log } = options;
  const key = idempotencyKeyOf(request);
  if (key === null) return await run(null);
  const hash = await requestHash(options.secret, body);
  const claim = await store.claim(key, hash, deadlineAt);
  if (claim.state !== 'claimed') return answerForClaim(claim);
  const notStored = (cause: unknown) =>
    log.warn(
      { err: cause instanceof Error ? cause.message : String(cause) },
      'could not store the answer for the Idempotency-Key',
    );
  let answer: Answer;
  try {
    answer = await run({ key, hash });
  } catch (error) {
    if (error instanceof AppError && error.status < 500 && error.status !== 429) {
      await store.complete(key, hash, error.status, errorBody(error), deadlineAt).catch(notStored);
    } else {
      await store.release(key, hash).catch(() => undefined);
    }
    throw error;
  }
  // Storing the answer may fail; the answer itself stands. A retry with the key then finds it
  // claimed (409 in progress) until the claim expires, or runs again, and `run` must make that
  // harmless (register recognises the user it created by its attempt id).
  await store.complete(key, hash, answer.status, answer.body, deadlineAt).catch(notStored);
  return answer;
}
