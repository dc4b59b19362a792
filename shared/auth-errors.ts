// Supabase Auth's answers, mapped faithfully to ours. supabase-js gives AuthApiError with
// `status` and `code` (error codes of API version 2024-01-01), AuthWeakPasswordError with
// `reasons`, and AuthRetryableFetchError for network failures and 5xx.
import { AppError, serviceUnavailable } from './errors.ts';

interface AuthErrorLike {
  name?: string;
  status?: number;
  code?: string;
  message?: string;
  reasons?: string[];
}

// Retry-After when Auth cannot be reached (after our retries): a network blip or Auth restarting,
// which takes seconds; a caller asking sooner would find it in the same state.
export const AUTH_RETRY_AFTER_SECONDS = 5;

// Auth's rate-limit answers say no time. A minute is its default shortest interval between two
// mails to one address (GOTRUE_SMTP_MAX_FREQUENCY), and its other limits count per hour: no
// retry within the minute can pass.
const AUTH_RATE_LIMIT_RETRY_AFTER_SECONDS = 60;

const EMAIL_TAKEN = new Set(['email_exists', 'user_already_exists', 'phone_exists']);
const RATE_LIMITED = new Set([
  'over_request_rate_limit',
  'over_email_send_rate_limit',
  'over_sms_send_rate_limit',
]);
const BAD_EMAIL = new Set([
  'validation_failed',
  'email_address_invalid',
  'email_address_not_authorized',
]);

export function isEmailTaken(error: unknown): boolean {
  const e = error as AuthErrorLike | null;
  return !!e && typeof e.code === 'string' && EMAIL_TAKEN.has(e.code);
}

export function emailTaken(): AppError {
  return new AppError(409, 'email_taken', 'An account with this email already exists', {
    fields: { email: 'is already registered' },
  });
}

/** An AppError for a failed Auth call (after our retries, for transient ones). */
export function authFailure(error: unknown): AppError {
  const e = (error ?? {}) as AuthErrorLike;
  const code = e.code ?? '';
  if (isEmailTaken(e)) return emailTaken();
  if (code === 'weak_password' || e.name === 'AuthWeakPasswordError') {
    const reasons = e.reasons?.length ? e.reasons.join(', ') : 'too weak';
    return new AppError(422, 'weak_password', 'The password is too weak', {
      fields: { password: `is too weak (${reasons})` },
      cause: error,
    });
  }
  if (RATE_LIMITED.has(code) || e.status === 429) {
    return new AppError(429, 'rate_limited', 'Too many sign-up attempts; try again later', {
      headers: { 'Retry-After': String(AUTH_RATE_LIMIT_RETRY_AFTER_SECONDS) },
      cause: error,
    });
  }
  if (code === 'captcha_failed') {
    return new AppError(400, 'captcha_failed', 'The CAPTCHA check failed', {
      fields: { captcha_token: 'was not accepted' },
      cause: error,
    });
  }
  if (BAD_EMAIL.has(code)) {
    return new AppError(400, 'validation_failed', 'The email address was not accepted', {
      fields: { email: e.message ?? 'is invalid' },
      cause: error,
    });
  }
  if (code === 'signup_disabled' || code === 'email_provider_disabled') {
    return new AppError(403, 'signup_disabled', 'Sign-ups are disabled for this project', {
      cause: error,
    });
  }
  // A before-user-created hook that refuses the signup: Auth answers with the hook's http_code and
  // message, and no error code of its own ("unknown"). The message is the hook's, written for
  // the person signing up.
  if (
    typeof e.status === 'number' && e.status >= 400 && e.status < 500 &&
    (code === '' || code === 'unknown')
  ) {
    const status = e.status === 401 || e.status === 407 ? 403 : e.status;
    return new AppError(status, 'signup_rejected', e.message || 'The sign-up was refused', {
      cause: error,
    });
  }
  if (
    e.name === 'AuthRetryableFetchError' || (typeof e.status === 'number' && e.status >= 500) ||
    e.status === 0
  ) {
    return serviceUnavailable(
      'Supabase Auth is unavailable; try again shortly',
      AUTH_RETRY_AFTER_SECONDS,
      error,
    );
  }
  // Anything else is a misconfiguration (bad service key, 401/403 from Auth): ours, not the caller's.
  return new AppError(500, 'auth_rejected', 'Supabase Auth refused the request', { cause: error });
}
