// The two kinds of calls Supabase makes to us on its own: Database Webhooks (pg_net, no
// signature: a shared secret header we compare in constant time) and Auth Hooks (signed per
// Standard Webhooks: HMAC-SHA256 over id.timestamp.body, timestamps within five minutes).
import { Webhook } from 'standardwebhooks';
import { constantTimeEqual } from './caller-auth.ts';
import { AppError } from './errors.ts';

export const DATABASE_WEBHOOK_HEADER = 'x-webhook-secret';

export function verifyDatabaseWebhook(request: Request, secret: string | undefined): void {
  if (!secret) {
    throw new AppError(
      401,
      'webhook_not_configured',
      'Database webhooks are not configured for this function',
    );
  }
  const given = request.headers.get(DATABASE_WEBHOOK_HEADER) ?? '';
  if (!constantTimeEqual(given, secret)) {
    throw new AppError(401, 'invalid_webhook_secret', 'The webhook secret does not match');
  }
}

export function isAuthHook(request: Request): boolean {
  return request.headers.has('webhook-signature') || request.headers.has('webhook-id');
}

/** Verifies a Standard Webhooks signature over the raw body; returns the parsed payload. */
export function verifyAuthHook(
  request: Request,
  rawBody: string,
  secret: string | undefined,
): unknown {
  if (!secret) {
    throw new AppError(
      401,
      'hook_not_configured',
      'Auth hooks are not configured for this function',
    );
  }
  // Supabase shows the secret as "v1,whsec_<base64>"; the library takes "whsec_<base64>".
  const webhook = new Webhook(secret.replace(/^v1,/, ''));
  try {
    return webhook.verify(rawBody, {
      'webhook-id': request.headers.get('webhook-id') ?? '',
      'webhook-timestamp': request.headers.get('webhook-timestamp') ?? '',
      'webhook-signature': request.headers.get('webhook-signature') ?? '',
    });
  } catch (error) {
    throw new AppError(401, 'invalid_signature', 'The webhook signature or timestamp is invalid', {
      cause: error,
    });
  }
}
