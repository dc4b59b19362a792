import { describe, expect, it } from 'vitest';
import { authFailure, isEmailTaken } from '../../shared/auth-errors.ts';

describe('authFailure maps Supabase Auth answers to ours', () => {
  it.each([
    [
      'email_exists (admin create)',
      { name: 'AuthApiError', status: 422, code: 'email_exists' },
      409,
      'email_taken',
      { email: 'is already registered' },
    ],
    [
      'user_already_exists (signup)',
      { name: 'AuthApiError', status: 422, code: 'user_already_exists' },
      409,
      'email_taken',
      { email: 'is already registered' },
    ],
    [
      'weak_password with reasons',
      {
        name: 'AuthWeakPasswordError',
        status: 422,
        code: 'weak_password',
        reasons: ['length', 'characters'],
      },
      422,
      'weak_password',
      { password: 'is too weak (length, characters)' },
    ],
    [
      'over_request_rate_limit',
      { name: 'AuthApiError', status: 429, code: 'over_request_rate_limit' },
      429,
      'rate_limited',
      undefined,
    ],
    [
      'over_email_send_rate_limit',
      { name: 'AuthApiError', status: 429, code: 'over_email_send_rate_limit' },
      429,
      'rate_limited',
      undefined,
    ],
    [
      'captcha_failed',
      { name: 'AuthApiError', status: 400, code: 'captcha_failed' },
      400,
      'captcha_failed',
      { captcha_token: 'was not accepted' },
    ],
    [
      'validation_failed on the email',
      {
        name: 'AuthApiError',
        status: 400,
        code: 'validation_failed',
        message: 'Unable to validate email address: invalid format',
      },
      400,
      'validation_failed',
      { email: 'Unable to validate email address: invalid format' },
    ],
    [
      'signup_disabled',
      { name: 'AuthApiError', status: 422, code: 'signup_disabled' },
      403,
      'signup_disabled',
      undefined,
    ],
    [
      'AuthRetryableFetchError (network or 5xx)',
      { name: 'AuthRetryableFetchError', status: 503 },
      503,
      'service_unavailable',
      undefined,
    ],
    [
      'a 500 with no code',
      { name: 'AuthApiError', status: 500, code: 'unexpected_failure' },
      503,
      'service_unavailable',
      undefined,
    ],
    [
      'not_admin (a wrong service key)',
      { name: 'AuthApiError', status: 403, code: 'not_admin' },
      500,
      'auth_rejected',
      undefined,
    ],
    [
      'a hook refusal with its http_code 403',
      {
        name: 'AuthApiError',
        status: 403,
        code: 'unknown',
        message: 'Sign-ups from this domain are closed',
      },
      403,
      'signup_rejected',
      undefined,
    ],
    [
      'a hook refusal with its http_code 409',
      { name: 'AuthApiError', status: 409, code: 'unknown', message: 'username is already taken' },
      409,
      'signup_rejected',
      undefined,
    ],
    [
      'a hook refusal with http_code 401, which is not about our key',
      { name: 'AuthApiError', status: 401, code: 'unknown', message: 'no' },
      403,
      'signup_rejected',
      undefined,
    ],
  ])('%s', (_label, error, status, code, fields) => {
    const mapped = authFailure(error);
    expect({ status: mapped.status, code: mapped.code, fields: mapped.fields }).toEqual({
      status,
      code,
      fields,
    });
  });

  it("answers a hook refusal with the hook's own message", () => {
    expect(
      authFailure({
        name: 'AuthApiError',
        status: 400,
        code: 'unknown',
        message: 'Use your work address',
      }).message,
    ).toBe('Use your work address');
  });

  it('sets Retry-After on 429 and 503', () => {
    expect(authFailure({ status: 429, code: 'over_request_rate_limit' }).headers).toEqual({
      'Retry-After': '60',
    });
    expect(authFailure({ name: 'AuthRetryableFetchError' }).headers).toEqual({
      'Retry-After': '5',
    });
  });

  it('recognises every "already registered" code and nothing else', () => {
    expect(
      ['email_exists', 'user_already_exists', 'phone_exists'].map((code) => isEmailTaken({ code })),
    ).toEqual([true, true, true]);
    expect([{ code: 'weak_password' }, { status: 422 }, null, 'email_exists'].map(isEmailTaken))
      .toEqual([false, false, false, false]);
  });
});
