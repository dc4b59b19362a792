// Supabase Auth's HTTP hooks, following GoTrue internal/hooks/hookshttp/hookshttp.go (dispatch,
// retries, status handling), hookserrors/hookserrors.go (the {"error": …} refusal) and
// v0hooks/manager.go: Standard Webhooks signatures, one deadline over every attempt, and every
// failure fails the operation (closed).
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { AuthError, internalError, unprocessable, UncodedAuthError } from './errors.ts';

export interface HttpHookOptions {
  /** https, or http to localhost, 127.0.0.1, ::1 or host.docker.internal only (GoTrue's config check). */
  url: string;
  /** "v1,whsec_<base64>"; several separated by "|", as in GOTRUE_HOOK_*_SECRETS. */
  secrets: string;
  /** Dev/test only: the deadline over all attempts; GoTrue's is fixed at 5 s. */
  timeoutMs?: number;
  /** Dev/test only: the wait after a connection failure before the next attempt; GoTrue's is 2 s. */
  retryBackoffMs?: number;
}

export interface HttpHook {
  url: string;
  secrets: string[];
  timeoutMs: number;
  retryBackoffMs: number;
}

const ATTEMPTS = 3;
const RESPONSE_LIMIT_BYTES = 200 * 1024;
// conf/configuration.go: symmetricSecretFormat (a prefix match, as there).
const SYMMETRIC_SECRET = /^v1,whsec_[A-Za-z0-9+/=]{32,88}/;
const LOCAL_HTTP_HOSTS = new Set(['localhost', '127.0.0.1', '::1', 'host.docker.internal']);

/** ValidateExtensibilityPoint, at start-up, so a misconfigured hook never serves a request. */
export function resolveHttpHook(options: HttpHookOptions): HttpHook {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new Error(`hook url is not a URL: ${options.url}`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol === 'http:' && !LOCAL_HTTP_HOSTS.has(host)) {
    throw new Error('hook url: only localhost, 127.0.0.1, and ::1 are supported with http');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('hook url must be http(s); Postgres hooks are not modelled');
  const secrets = options.secrets.split('|').filter((secret) => secret !== '');
  if (secrets.length === 0) throw new Error('hook secrets are required');
  for (const secret of secrets) {
    // Asymmetric (v1a,whpk_…) secrets fail GoTrue's signing too ("invalid signature format").
    if (!SYMMETRIC_SECRET.test(secret)) throw new Error('hook secrets: invalid secret format (expected v1,whsec_<base64>)');
  }
  const timeoutMs = options.timeoutMs ?? 5_000;
  const retryBackoffMs = options.retryBackoffMs ?? 2_000;
  if (!(timeoutMs > 0) || !(retryBackoffMs >= 0)) throw new Error('hook timeoutMs must be positive and retryBackoffMs not negative');
  return { url: options.url, secrets, timeoutMs, retryBackoffMs };
}

function sign(secrets: string[], id: string, at: Date, payload: string): string {
  return secrets.map((secret) => new Webhook(secret.slice('v1,'.length)).sign(id, at, payload)).join(', ');
}

/** The body, or null when it is longer than GoTrue reads (200 KiB). */
async function readLimited(response: Response): Promise<string | null> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > RESPONSE_LIMIT_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** encoding/json's field lookup: the exact key first, else any key equal ignoring case. */
function goField(object: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(object, name)) return object[name];
  const key = Object.keys(object).find((candidate) => candidate.toLowerCase() === name);
  return key === undefined ? undefined : object[key];
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * hookserrors.Check: a refusal is {"error": {"http_code", "message"}} with a non-empty message;
 * http_code 0 or absent means 500. A body Go cannot decode into that shape (a string error, a
 * string http_code) is no refusal at all.
 */
function refusal(body: string): AuthError | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  const error = goField(value, 'error');
  if (error === undefined || error === null || !isObject(error)) return null;
  const httpCode = goField(error, 'http_code') ?? 0;
  const message = goField(error, 'message') ?? '';
  if (typeof httpCode !== 'number' || !Number.isInteger(httpCode) || typeof message !== 'string') return null;
  if (message === '') return null;
  // A Fetch Response cannot carry a status outside 200-599; GoTrue would write it as given.
  const status = httpCode === 0 || httpCode < 200 || httpCode > 599 ? 500 : httpCode;
  return new UncodedAuthError(status, message);
}

/** Go's mime.ParseMediaType, reduced to what decides GoTrue's answer: the media type. */
function mediaType(contentType: string): string | null {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type) ? type : null;
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

/**
 * Posts `payload` to the hook and returns when it allows (204, or 200/202 with a JSON body that is
 * no refusal); otherwise throws the AuthError GoTrue answers with.
 */
export async function invokeHttpHook(hook: HttpHook, payload: unknown): Promise<void> {
  const deadline = Date.now() + hook.timeoutMs;
  const body = JSON.stringify(payload);
  const timedOut = () =>
    unprocessable('hook_timeout', `Failed to reach hook within maximum time of ${(hook.timeoutMs / 1000).toFixed(6)} seconds`);

  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const id = randomUUID();
    const at = new Date();
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw timedOut();
    let response: Response;
    try {
      response = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': sign(hook.secrets, id, at, body),
          'Accept-Encoding': 'identity',
        },
        body,
        signal: AbortSignal.timeout(remaining),
      });
    } catch (error) {
      if (isTimeout(error) || Date.now() >= deadline) throw timedOut();
      if (attempt < ATTEMPTS - 1) {
        // The backoff counts against the same deadline.
        const wait = Math.min(hook.retryBackoffMs, deadline - Date.now());
        await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 0)));
        if (Date.now() >= deadline) throw timedOut();
        continue;
      }
      throw unprocessable('hook_timeout_after_retry', 'Failed to reach hook after maximum retries');
    }

    switch (response.status) {
      case 204:
        await response.body?.cancel();
        return;
      case 200:
      case 202: {
        const contentType = response.headers.get('content-type') ?? '';
        if (contentType === '') {
          await response.body?.cancel();
          throw new AuthError(400, 'hook_payload_invalid_content_type', 'Invalid Content-Type: Missing Content-Type header');
        }
        const type = mediaType(contentType);
        if (type === null) {
          await response.body?.cancel();
          throw new AuthError(400, 'hook_payload_invalid_content_type', 'Invalid Content-Type header: mime: no media type');
        }
        if (type !== 'application/json') {
          await response.body?.cancel();
          throw new AuthError(400, 'hook_payload_invalid_content_type', `Invalid JSON response. Received content-type: ${contentType}`);
        }
        let text: string | null;
        try {
          text = await readLimited(response);
        } catch (error) {
          // manager.go wraps an error that is no HTTPError, such as a read cut off by the deadline.
          throw internalError(`Error running hook URI: ${hook.url}`, error);
        }
        if (text === null) {
          throw unprocessable('hook_payload_over_size_limit', `Payload size exceeded size limit of ${RESPONSE_LIMIT_BYTES} bytes`);
        }
        const refused = refusal(text);
        if (refused) throw refused;
        // The output (an empty struct for before-user-created) must still decode: an empty body,
        // an array or a bare value does not.
        let decoded: unknown;
        try {
          decoded = JSON.parse(text);
        } catch (error) {
          throw internalError('Error unmarshaling JSON output.', error);
        }
        if (decoded !== null && !isObject(decoded)) throw internalError('Error unmarshaling JSON output.');
        return;
      }
      case 429:
      case 503:
        await response.body?.cancel();
        if (response.headers.get('retry-after')) continue;
        throw internalError('Service currently unavailable due to hook');
      case 400:
        await response.body?.cancel();
        throw internalError('Invalid payload sent to hook');
      case 401:
        await response.body?.cancel();
        throw internalError('Hook requires authorization token');
      default:
        await response.body?.cancel();
        throw internalError(`Unexpected status code returned from hook: ${response.status}`);
    }
  }
  throw internalError('Service currently unavailable due to hook');
}
