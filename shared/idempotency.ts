// Idempotency-Key handling for POST endpoints, stored in the database (idempotency_claim and
// friends) so every function instance sees the same keys.
import { AppError, serviceUnavailable } from './errors.ts';
import type { RetryPolicy } from './retry.ts';
import type { Json } from './database.types.ts';
import type { Claim } from './rpc-results.ts';
import { callRpc, rpcOnce } from './rpc.ts';
import type { SupabaseClient } from './supabase-client.ts';

const KEY = /^[\x21-\x7e]{1,255}$/;

/** The Idempotency-Key header, or null; a malformed key is the caller's error. */
export function idempotencyKeyOf(request: Request): string | null {
  const key = request.headers.get('idempotency-key');
  if (key === null) return null;
  if (!KEY.test(key)) {
    throw new AppError(400, 'validation_failed', 'Idempotency-Key must be 1-255 printable ASCII characters', {
      fields: { 'Idempotency-Key': 'must be 1-255 printable ASCII characters' },
    });
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
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(canonicalJson(body)));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export type { Claim };

export interface IdempotencyStore {
  /** deadlineAt: the request's deadline, within which a transient failure is retried. */
  claim(key: string, hash: string, deadlineAt?: number): Promise<Claim>;
  complete(key: string, hash: string, status: number, response: unknown, deadlineAt?: number): Promise<void>;
  release(key: string, hash: string): Promise<void>;
}

/** What the database stores of an answer: its JSON text, read back (undefined members dropped). */
function asJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null));
}

export function databaseIdempotencyStore(supabase: SupabaseClient, scope: string, ttlSeconds: number, policy: RetryPolicy): IdempotencyStore {
  const hooks = (deadlineAt: number | undefined) => (deadlineAt !== undefined ? { deadlineAt } : {});
  return {
    async claim(key, hash, deadlineAt) {
      try {
        return await callRpc(supabase, 'idempotency_claim', { p_scope: scope, p_key: key, p_request_hash: hash, p_ttl_seconds: ttlSeconds }, policy, hooks(deadlineAt));
      } catch (error) {
        throw serviceUnavailable('Could not check the Idempotency-Key; try again shortly', 2, error);
      }
    },
    async complete(key, hash, status, response, deadlineAt) {
      try {
        await callRpc(supabase, 'idempotency_complete', { p_scope: scope, p_key: key, p_request_hash: hash, p_status: status, p_response: asJson(response) }, policy, hooks(deadlineAt));
      } catch (error) {
        throw serviceUnavailable('Could not store the answer for the Idempotency-Key', 2, error);
      }
    },
    async release(key, hash) {
      await rpcOnce(supabase, 'idempotency_release', { p_scope: scope, p_key: key, p_request_hash: hash });
    },
  };
}

/** What a claim that is not ours means for the caller. */
export function answerForClaim(claim: Exclude<Claim, { state: 'claimed' }>): { status: number; body: unknown; headers: Record<string, string> } {
  switch (claim.state) {
    case 'replay':
      return { status: claim.status, body: claim.response, headers: { 'Idempotency-Replayed': 'true' } };
    case 'in_progress':
      throw new AppError(409, 'idempotency_in_progress', 'A request with this Idempotency-Key is still running; retry shortly', {
        headers: { 'Retry-After': '1' },
      });
    case 'mismatch':
      throw new AppError(422, 'idempotency_key_reused', 'This Idempotency-Key was used for a different request', {
        fields: { 'Idempotency-Key': 'was used for a different request body' },
      });
  }
}
