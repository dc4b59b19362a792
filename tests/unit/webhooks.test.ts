import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, isServiceKey } from '../../shared/caller-auth.ts';
import { AppError } from '../../shared/errors.ts';
import {
  DATABASE_WEBHOOK_HEADER,
  isAuthHook,
  verifyAuthHook,
  verifyDatabaseWebhook,
} from '../../shared/webhooks.ts';

const WEBHOOK_SECRET = 'a-database-webhook-secret-of-some-length';
const HOOK_SECRET_BASE64 = Buffer.from('a-test-auth-hook-secret-for-unit-tests').toString('base64');
/** As Supabase shows it in the dashboard and as AUTH_HOOK_SECRET holds it. */
const HOOK_SECRET = `v1,whsec_${HOOK_SECRET_BASE64}`;

function post(headers: Record<string, string>, body = '{}'): Request {
  return new Request('http://local/ensure-profile', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

function caught(work: () => unknown): AppError {
  try {
    work();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError, but nothing was thrown');
}

interface SignedHook {
  request: Request;
  body: string;
}

/** A before-user-created delivery as Supabase Auth signs it (Standard Webhooks). */
function signedHook(
  options: { body?: string; at?: Date; secret?: string; id?: string } = {},
): SignedHook {
  const body = options.body ??
    JSON.stringify({
      metadata: { name: 'before-user-created' },
      user: { email: 'ada@example.test' },
    });
  const at = options.at ?? new Date();
  const id = options.id ?? 'msg_2a4f0c6b1e';
  const signature = new Webhook(`whsec_${options.secret ?? HOOK_SECRET_BASE64}`).sign(id, at, body);
  const request = post({
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signature,
  }, body);
  return { request, body };
}

describe('verifyDatabaseWebhook', () => {
  it.each([
    ['undefined', undefined],
    ['empty', ''],
  ])(
    'rejects every call with 401 webhook_not_configured when the secret is %s',
    (_label, secret) => {
      const error = caught(() =>
        verifyDatabaseWebhook(post({ [DATABASE_WEBHOOK_HEADER]: WEBHOOK_SECRET }), secret)
      );
      expect(error).toMatchObject({ status: 401, code: 'webhook_not_configured' });
    },
  );

  it.each([
    ['a wrong secret', { [DATABASE_WEBHOOK_HEADER]: 'not-the-database-webhook-secret' }],
    ['the secret with a trailing character', { [DATABASE_WEBHOOK_HEADER]: `${WEBHOOK_SECRET}x` }],
    ['a prefix of the secret', { [DATABASE_WEBHOOK_HEADER]: WEBHOOK_SECRET.slice(0, -1) }],
    ['an empty header', { [DATABASE_WEBHOOK_HEADER]: '' }],
    ['no header at all', {}],
    ['the secret in another header', { authorization: `Bearer ${WEBHOOK_SECRET}` }],
  ])('rejects %s with 401 invalid_webhook_secret', (_label, headers) => {
    const error = caught(() => verifyDatabaseWebhook(post(headers), WEBHOOK_SECRET));
    expect(error).toMatchObject({
      status: 401,
      code: 'invalid_webhook_secret',
      message: 'The webhook secret does not match',
    });
  });

  it('accepts the configured secret in x-webhook-secret', () => {
    expect(DATABASE_WEBHOOK_HEADER).toBe('x-webhook-secret');
    expect(verifyDatabaseWebhook(post({ 'X-Webhook-Secret': WEBHOOK_SECRET }), WEBHOOK_SECRET))
      .toBeUndefined();
  });
});

describe('isAuthHook', () => {
  it('recognises a call carrying webhook-signature or webhook-id, and nothing else', () => {
    expect(isAuthHook(post({ 'webhook-signature': 'v1,abc' }))).toBe(true);
    expect(isAuthHook(post({ 'webhook-id': 'msg_1' }))).toBe(true);
    expect(isAuthHook(post({ 'webhook-timestamp': '1' }))).toBe(false);
    expect(isAuthHook(post({ [DATABASE_WEBHOOK_HEADER]: WEBHOOK_SECRET }))).toBe(false);
  });
});

describe('verifyAuthHook', () => {
  it('returns the parsed payload of a correctly signed, current delivery', () => {
    const payload = {
      metadata: { name: 'before-user-created', uuid: 'u-1' },
      user: { email: 'ada@example.test', user_metadata: { username: 'ada' } },
    };
    const { request, body } = signedHook({ body: JSON.stringify(payload) });
    expect(verifyAuthHook(request, body, HOOK_SECRET)).toEqual(payload);
  });

  it('accepts a delivery signed a little under five minutes ago', () => {
    const { request, body } = signedHook({ at: new Date(Date.now() - 4 * 60_000) });
    expect(verifyAuthHook(request, body, HOOK_SECRET)).toEqual({
      metadata: { name: 'before-user-created' },
      user: { email: 'ada@example.test' },
    });
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
  ])('rejects with 401 hook_not_configured when the secret is %s', (_label, secret) => {
    const { request, body } = signedHook();
    expect(caught(() => verifyAuthHook(request, body, secret))).toMatchObject({
      status: 401,
      code: 'hook_not_configured',
    });
  });

  it.each<[string, () => SignedHook]>([
    [
      'signed with another secret',
      () => signedHook({ secret: Buffer.from('some-other-auth-hook-secret').toString('base64') }),
    ],
    ['signed ten minutes ago', () => signedHook({ at: new Date(Date.now() - 10 * 60_000) })],
    ['signed six minutes ago', () => signedHook({ at: new Date(Date.now() - 6 * 60_000) })],
    [
      'dated ten minutes in the future',
      () => signedHook({ at: new Date(Date.now() + 10 * 60_000) }),
    ],
    [
      'with a tampered body',
      () => {
        const hook = signedHook();
        return {
          request: hook.request,
          body: hook.body.replace('ada@example.test', 'eve@example.test'),
        };
      },
    ],
    [
      'with a signature made for another message id',
      () => {
        const hook = signedHook({ id: 'msg_original' });
        const headers = new Headers(hook.request.headers);
        headers.set('webhook-id', 'msg_replayed');
        return {
          request: new Request(hook.request.url, { method: 'POST', headers, body: hook.body }),
          body: hook.body,
        };
      },
    ],
    [
      'with a non-numeric timestamp',
      () => {
        const hook = signedHook();
        const headers = new Headers(hook.request.headers);
        headers.set('webhook-timestamp', 'yesterday');
        return {
          request: new Request(hook.request.url, { method: 'POST', headers, body: hook.body }),
          body: hook.body,
        };
      },
    ],
    [
      'without a signature header',
      () => {
        const hook = signedHook();
        const headers = new Headers(hook.request.headers);
        headers.delete('webhook-signature');
        return {
          request: new Request(hook.request.url, { method: 'POST', headers, body: hook.body }),
          body: hook.body,
        };
      },
    ],
  ])('rejects a delivery %s with 401 invalid_signature', (_label, make) => {
    const { request, body } = make();
    const error = caught(() => verifyAuthHook(request, body, HOOK_SECRET));
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({
      status: 401,
      code: 'invalid_signature',
      message: 'The webhook signature or timestamp is invalid',
    });
  });
});

describe('constantTimeEqual', () => {
  it.each<[string, string, string, boolean]>([
    ['identical strings', 'sb_secret_abc', 'sb_secret_abc', true],
    ['two empty strings', '', '', true],
    ['strings differing in the last character', 'sb_secret_abc', 'sb_secret_abd', false],
    ['strings differing in the first character', 'xb_secret_abc', 'sb_secret_abc', false],
    ['a string and its prefix', 'sb_secret_abc', 'sb_secret_ab', false],
    ['a string and the empty string', 'sb_secret_abc', '', false],
    ['a string and itself plus a NUL', 'abc', 'abc\u0000', false],
    ['strings differing only in case', 'Secret', 'secret', false],
    ['identical non-ASCII strings', 'clé-🔑-密钥', 'clé-🔑-密钥', true],
    ['precomposed and decomposed é', 'caf\u00e9', 'cafe\u0301', false],
    ['emoji differing in one code point', '🔑🔑', '🔑🔒', false],
  ])('compares %s', (_label, a, b, equal) => {
    expect(constantTimeEqual(a, b)).toBe(equal);
    expect(constantTimeEqual(b, a)).toBe(equal);
  });
});

describe('isServiceKey', () => {
  const keys = ['sb_secret_new_style_key', 'eyJhbGciOiJIUzI1NiJ9.legacy.service_role'];

  it('recognises each of the configured keys', () => {
    expect(isServiceKey('sb_secret_new_style_key', keys)).toBe(true);
    expect(isServiceKey('eyJhbGciOiJIUzI1NiJ9.legacy.service_role', keys)).toBe(true);
  });

  it('rejects a token that is not exactly one of the keys', () => {
    expect(isServiceKey('sb_secret_new_style_ke', keys)).toBe(false);
    expect(isServiceKey('sb_secret_new_style_key ', keys)).toBe(false);
    expect(isServiceKey('SB_SECRET_NEW_STYLE_KEY', keys)).toBe(false);
    expect(isServiceKey('sb_publishable_key', keys)).toBe(false);
  });

  it('recognises nothing when no service key is configured', () => {
    expect(isServiceKey('sb_secret_new_style_key', [])).toBe(false);
  });
});
