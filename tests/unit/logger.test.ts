import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redact } from '../../shared/logger.ts';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, log: createLogger({ destination, bindings: { function: 'register' } }) };
}

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.abc123_-';

describe('the logger', () => {
  it('writes one JSON line with level, time, bindings and fields', () => {
    const { lines, log } = capture();
    log.info({ request_id: 'r1', user_id: 'u1', attempt: 2, duration_ms: 12.5 }, 'profile ensured');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({
      level: 'info',
      function: 'register',
      request_id: 'r1',
      user_id: 'u1',
      attempt: 2,
      duration_ms: 12.5,
      msg: 'profile ensured',
    });
    expect(typeof line.time).toBe('string');
  });

  it('redacts passwords, tokens, keys and authorization headers at any depth', () => {
    const { lines, log } = capture();
    log.info({
      body: { email: 'a@example.test', password: 'hunter22', nested: { refresh_token: 'r' } },
      headers: {
        authorization: `Bearer ${JWT}`,
        apikey: 'sb_publishable_x',
        'content-type': 'application/json',
      },
      config: { serviceRoleKey: 'sb_secret_zzz', webhookSecret: 'whsec_abc', healthToken: 'tok' },
      access_token: JWT,
      captcha_token: 'c',
      has_password: true,
    }, 'incoming');
    const text = lines.join('');
    for (
      const secret of [
        'hunter22',
        JWT,
        'sb_publishable_x',
        'sb_secret_zzz',
        'whsec_abc',
        '"tok"',
        '"r"',
        '"c"',
      ]
    ) {
      expect(text).not.toContain(secret);
    }
    const line = JSON.parse(lines[0]!);
    expect(line.body).toEqual({
      email: 'a@example.test',
      password: '[Redacted]',
      nested: { refresh_token: '[Redacted]' },
    });
    expect(line.headers).toEqual({
      authorization: '[Redacted]',
      apikey: '[Redacted]',
      'content-type': 'application/json',
    });
    expect(line.has_password).toBe(true);
  });

  it('scrubs secrets out of messages and error texts, whatever the key', () => {
    const { lines, log } = capture();
    log.error(
      { err: new Error(`auth failed for Bearer ${JWT}`), detail: `key sb_secret_abc used` },
      `token ${JWT} rejected`,
    );
    const text = lines.join('');
    expect(text).not.toContain(JWT);
    expect(text).not.toContain('sb_secret_abc');
    const line = JSON.parse(lines[0]!);
    expect(line.msg).toBe('token [Redacted] rejected');
    expect(line.err.message).toBe('auth failed for [Redacted]');
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    expect(redact(a)).toEqual({ name: 'a', self: '[Circular]' });
  });
});
