import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.ts';
import { createHandler, json, readJson } from '../../shared/http.ts';
import { createLogger } from '../../shared/logger.ts';

function setup(route: Parameters<typeof createHandler>[1], methods = ['POST']) {
  const lines: string[] = [];
  const log = createLogger({
    destination: new Writable({
      write(c, _e, d) {
        lines.push(String(c));
        d();
      },
    }),
  });
  return { lines, handler: createHandler({ name: 'test', methods, log }, route) };
}

const post = (
  body: string | Uint8Array<ArrayBuffer> | null,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) => new Request('http://local/fn', { method: 'POST', body, headers });

describe('createHandler', () => {
  it('answers a CORS preflight with 204 and the CORS headers, without running the route', async () => {
    let ran = false;
    const { handler } = setup(async () => {
      ran = true;
      return json(200, {});
    });
    const response = await handler(new Request('http://local/fn', { method: 'OPTIONS' }));
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-headers')).toContain('idempotency-key');
    expect(ran).toBe(false);
  });

  it('gives other answers only the CORS headers a browser reads outside a preflight', async () => {
    const { handler } = setup(async () => json(200, {}));
    const response = await handler(post('{}'));
    expect([...response.headers.keys()].filter((name) => name.startsWith('access-control-')))
      .toEqual([
        'access-control-allow-origin',
        'access-control-expose-headers',
      ]);
    expect(response.headers.get('access-control-expose-headers')).toBe(
      'x-request-id, retry-after, idempotency-replayed',
    );
  });

  it('answers 405 with Allow for a method the function does not take', async () => {
    const { handler } = setup(async () => json(200, {}));
    const response = await handler(new Request('http://local/fn', { method: 'PUT' }));
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST, OPTIONS');
    expect(await response.json()).toEqual({
      error: { code: 'method_not_allowed', message: 'Use POST' },
    });
  });

  it('echoes a sane x-request-id and generates one otherwise', async () => {
    const { handler } = setup(async (_r, ctx) => json(200, { id: ctx.requestId }));
    const echoed = await handler(
      new Request('http://local/fn', { method: 'POST', headers: { 'x-request-id': 'abc-123' } }),
    );
    expect(echoed.headers.get('x-request-id')).toBe('abc-123');
    expect(await echoed.json()).toEqual({ id: 'abc-123' });
    const generated = await handler(
      new Request('http://local/fn', { method: 'POST', headers: { 'x-request-id': 'bad id\n' } }),
    );
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('turns an AppError into its status, code, message, fields and headers', async () => {
    const { handler } = setup(async () => {
      throw new AppError(429, 'rate_limited', 'Too many registrations', {
        headers: { 'Retry-After': '30' },
        fields: { email: 'x' },
      });
    });
    const response = await handler(post('{}'));
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('30');
    expect(await response.json()).toEqual({
      error: { code: 'rate_limited', message: 'Too many registrations', fields: { email: 'x' } },
    });
  });

  it('turns an unknown error into a generic 500 that leaks nothing, logged with the request id', async () => {
    const { handler, lines } = setup(async () => {
      throw new Error('connection string postgres://u:p@host/db');
    });
    const response = await handler(
      new Request('http://local/fn', { method: 'POST', headers: { 'x-request-id': 'req-9' } }),
    );
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({
      error: {
        code: 'internal_error',
        message: 'Something went wrong; the request id identifies it in our logs',
      },
    });
    expect(text).not.toContain('postgres://');
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.level === 'error');
    expect(logged).toMatchObject({ request_id: 'req-9', msg: 'unhandled error' });
  });

  it('logs one info line per request: request id, method, status, duration and what the route annotated; debug lines stay out', async () => {
    const { handler, lines } = setup(async (_r, ctx) => {
      ctx.log.debug({ step: 'inside' }, 'detail');
      ctx.annotate({ user_id: 'u-1', profile_status: 'created' });
      return json(201, {});
    });
    await handler(
      new Request('http://local/fn', { method: 'POST', headers: { 'x-request-id': 'req-7' } }),
    );
    const logged = lines.map((l) => JSON.parse(l));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      level: 'info',
      msg: 'request',
      request_id: 'req-7',
      method: 'POST',
      status: 201,
      user_id: 'u-1',
      profile_status: 'created',
    });
    expect(typeof logged[0].duration_ms).toBe('number');
  });

  it('adds the CORS headers and x-request-id also to a response whose headers cannot be changed', async () => {
    const { handler } = setup(async () => Response.redirect('http://local/elsewhere', 302));
    const response = await handler(
      new Request('http://local/fn', { method: 'POST', headers: { 'x-request-id': 'req-8' } }),
    );
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('http://local/elsewhere');
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('x-request-id')).toBe('req-8');
  });

  it('sends no body for HEAD but keeps status and headers', async () => {
    const { handler } = setup(async () => json(503, { status: 'down' }), ['GET', 'HEAD']);
    const response = await handler(new Request('http://local/fn', { method: 'HEAD' }));
    expect(response.status).toBe(503);
    expect(await response.text()).toBe('');
  });
});

describe('readJson', () => {
  it('parses a JSON body, streamed or of a declared length', async () => {
    expect(await readJson(post('{"a":1}'), 100)).toEqual({ a: 1 });
    expect(
      await readJson(
        post('{"a":"é"}', { 'content-type': 'application/json', 'content-length': '11' }),
        100,
      ),
    ).toEqual({ a: 'é' });
  });

  it.each([
    ['a missing content type', post('{}', {}), 415, 'unsupported_media_type'],
    [
      'a text content type',
      post('{}', { 'content-type': 'text/plain' }),
      415,
      'unsupported_media_type',
    ],
    ['malformed JSON', post('{"a":'), 400, 'invalid_json'],
    ['an empty body', post(''), 400, 'invalid_json'],
    ['invalid UTF-8', post(new Uint8Array([0x7b, 0xff, 0x7d])), 400, 'invalid_json'],
    [
      'a body over the limit',
      post(JSON.stringify({ a: 'x'.repeat(200) })),
      413,
      'payload_too_large',
    ],
    [
      'a declared length over the limit',
      post('{}', { 'content-type': 'application/json', 'content-length': '5000' }),
      413,
      'payload_too_large',
    ],
    [
      'a body longer than its declared length, past the limit',
      post(JSON.stringify({ a: 'x'.repeat(200) }), {
        'content-type': 'application/json',
        'content-length': '2',
      }),
      413,
      'payload_too_large',
    ],
    [
      'invalid UTF-8 with a declared length',
      post(new Uint8Array([0x7b, 0xff, 0x7d]), {
        'content-type': 'application/json',
        'content-length': '3',
      }),
      400,
      'invalid_json',
    ],
  ])('rejects %s', async (_label, request, status, code) => {
    await expect(readJson(request, 100)).rejects.toMatchObject({ status, code });
  });

  it('accepts a charset parameter on the content type', async () => {
    expect(await readJson(post('[1]', { 'content-type': 'application/json; charset=utf-8' }), 100))
      .toEqual([1]);
  });
});
