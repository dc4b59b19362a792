// ensure-profile's caller (d): Supabase Auth's before-user-created hook, signed per Standard
// Webhooks. It checks that the pending user's metadata will make a valid profile and rejects the
// signup if not, leaving a 'refused' audit row with the request id.
import { UUID } from './caller-auth.ts';
import type { Config } from './config.ts';
import { json, type RequestContext } from './http.ts';
import { FULL_NAME_MAX_LENGTH, isValidAvatarUrl, isValidUsername } from './profile-contract.ts';
import { BeforeUserCreatedBody, invalidBody } from './schemas.ts';
import type { SupabaseClient } from './supabase-client.ts';
import { verifyAuthHook } from './webhooks.ts';

/** Why the before-user-created hook refused a signup (the refused audit row's details.reason). */
type RefusalReason =
  | 'username_invalid'
  | 'full_name_too_long'
  | 'avatar_url_invalid'
  | 'username_taken';

/** How long the hook waits for its refusal's audit row before answering Auth regardless. */
const REFUSAL_AUDIT_TIMEOUT_MS = 1_000;

/** The first non-blank string among keys, as the database's metadata mapping picks it. */
function metadataText(metadata: Record<string, unknown>, keys: string[]): string | null {
  for (const key of keys) {
    const value = metadata[key];
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return null;
}

export function createBeforeUserCreatedHook(
  config: Config,
  supabase: SupabaseClient,
): (request: Request, rawBody: string, ctx: RequestContext) => Promise<Response> {
  /**
   * Before-user-created: reject, the way Auth understands (200 with {"error": {"http_code",
   * "message"}}), an email signup whose chosen username, name or avatar would be dropped from
   * the profile; allow (204) everything else. OAuth metadata is never a reason to refuse a
   * signup: the database drops what does not fit.
   */
  async function authHook(
    request: Request,
    rawBody: string,
    ctx: RequestContext,
  ): Promise<Response> {
    const startedAt = performance.now();
    const payload = verifyAuthHook(request, rawBody, config.authHookSecret);
    const parsed = BeforeUserCreatedBody.safeParse(payload);
    if (!parsed.success) throw invalidBody(parsed.error, payload);
    const user = parsed.data.user as Record<string, unknown>;
    const appMetadata = (user.app_metadata ?? {}) as Record<string, unknown>;
    const provider = typeof appMetadata.provider === 'string' ? appMetadata.provider : 'email';
    const raw = user.user_metadata ?? user.raw_user_meta_data ?? {};
    const metadata = raw !== null && typeof raw === 'object' && !Array.isArray(raw)
      ? (raw as Record<string, unknown>)
      : {};
    const reject = async (httpCode: number, reason: RefusalReason, message: string) => {
      ctx.annotate({ hook: 'before-user-created', hook_http_code: httpCode });
      ctx.log.debug({ message }, 'signup rejected by the profile hook');
      await recordRefusal(user.id, reason, httpCode, startedAt, ctx);
      return json(200, { error: { http_code: httpCode, message } });
    };
    if (provider === 'email') {
      const username = metadataText(metadata, ['username', 'user_name', 'preferred_username']);
      const fullName = metadataText(metadata, ['full_name', 'name']);
      const avatarUrl = metadataText(metadata, ['avatar_url', 'picture']);
      if (username !== null && !isValidUsername(username)) {
        return await reject(
          400,
          'username_invalid',
          'username must be 3-39 letters, digits, "_", "." or "-", not starting or ending with "." or "-"',
        );
      }
      if (fullName !== null && [...fullName].length > FULL_NAME_MAX_LENGTH) {
        return await reject(
          400,
          'full_name_too_long',
          `full_name must be at most ${FULL_NAME_MAX_LENGTH} characters`,
        );
      }
      if (avatarUrl !== null && !isValidAvatarUrl(avatarUrl)) {
        return await reject(
          400,
          'avatar_url_invalid',
          'avatar_url must be an http(s) URL of at most 2048 characters',
        );
      }
      if (username !== null) {
        // Asks the database, which also releases the name when its holder never confirmed and
        // the claim has lapsed (private.settings.unconfirmed_username_ttl).
        const available = await supabase.rpc('username_available', { p_username: username });
        if (available.error) {
          // Never block signups on our own outage: the database will drop a taken name anyway.
          ctx.log.warn(
            { code: available.error.code },
            'could not check username availability in the hook; allowing',
          );
        } else if (available.data === false) {
          return await reject(409, 'username_taken', 'username is already taken');
        }
      }
    }
    return new Response(null, { status: 204 });
  }

  /**
   * The refusal's audit row (source 'hook', outcome 'refused'), with the id Auth gave the pending
   * user. Auth is waiting for the answer, so this waits at most REFUSAL_AUDIT_TIMEOUT_MS, once,
   * and a failure is only logged: the refusal stands either way.
   */
  async function recordRefusal(
    userId: unknown,
    reason: RefusalReason,
    httpCode: number,
    startedAt: number,
    ctx: RequestContext,
  ) {
    const { error, status } = await supabase
      .rpc('record_signup_refusal', {
        p_user_id: typeof userId === 'string' && UUID.test(userId) ? userId : null,
        p_reason: reason,
        p_http_code: httpCode,
        p_request_id: ctx.requestId,
        p_duration_ms: Math.round((performance.now() - startedAt) * 1000) / 1000,
      })
      .abortSignal(AbortSignal.timeout(REFUSAL_AUDIT_TIMEOUT_MS));
    if (error) {
      ctx.log.warn(
        { code: error.code, status, err: error.message },
        'could not record the refused signup in the audit trail',
      );
    }
  }

  return authHook;
}
