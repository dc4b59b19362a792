// Supabase Auth's HTTP hooks, after GoTrue internal/hooks/hookshttp/hookshttp.go and
// hookserrors/hookserrors.go: a Standard Webhooks signed POST under one 5-second deadline; 204, or
// 200/202 with a JSON body, lets the operation through unless the body is a refusal
// ({"error": {"http_code", "message"}}); anything else fails the operation (closed). GoTrue's
// retries (after a connection failure, or a 429/503 with Retry-After), its response size limit,
// its case-insensitive field names and its own message for each other status are left out: the
// hooks here (the project's ensure-profile function, a test's server) never need them.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { AuthError, internalError, UncodedAuthError, unprocessable } from './errors.ts';

export interface HttpHookOptions {
  url: string;
  /** "v1,whsec_<base64>"; several separated by "|", as in GOTRUE_HOOK_*_SECRETS. */
  secrets: string;
}

export interface HttpHook {
  url: string;
  secrets: string[];
}

const TIMEOUT_MS = 5_000;

export function resolveHttpHook(options: HttpHookOptions): HttpHook {
  return {
    url: options.url,
    secrets: options.secrets.split('|').filter((secret) => secret !== ''),
  };
}

function sign(secrets: string[], id: string, at: Date, payload: string): string {
  return secrets.map((secret) => new Webhook(secret.slice('v1,'.length)).sign(id, at, payload))
    .join(', ');
}

/** hookserrors.Check: a refusal has a non-empty message; http_code 0 or absent means 500. */
function refusal(body: unknown): UncodedAuthError | null {
  const error = (body as { error?: { http_code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error?.message !== 'string' || error.message === '') return null;
  const status =
    typeof error.http_code === 'number' && error.http_code >= 200 && error.http_code <= 599
      ? error.http_code
      : 500;
  return new UncodedAuthError(status, error.message);
}

/** Posts `payload` to the hook and returns when it allows; otherwise throws the AuthError GoTrue answers with. */
export async function invokeHttpHook(hook: HttpHook, payload: unknown): Promise<void> {
  const id = randomUUID();
  const at = new Date();
  const body = JSON.stringify(payload);
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
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    // GoTrue retries a connection failure twice within the same deadline; one attempt does here.
    if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
      throw unprocessable(
        'hook_timeout',
        `Failed to reach hook within maximum time of ${(TIMEOUT_MS / 1000).toFixed(6)} seconds`,
      );
    }
    throw unprocessable('hook_timeout_after_retry', 'Failed to reach hook after maximum retries');
  }
  if (response.status === 204) return;
  if (response.status !== 200 && response.status !== 202) {
    await response.body?.cancel();
    throw internalError(`Unexpected status code returned from hook: ${response.status}`);
  }
  const contentType = response.headers.get('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    await response.body?.cancel();
    throw new AuthError(
      400,
      'hook_payload_invalid_content_type',
      `Invalid JSON response. Received content-type: ${contentType}`,
    );
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(await response.text());
  } catch (error) {
    throw internalError('Error unmarshaling JSON output.', error);
  }
  const refused = refusal(decoded);
  if (refused) throw refused;
}
