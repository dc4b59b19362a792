// The before-user-created HTTP hook of the Auth stand-in, against a hook server in this process
// whose answer each test chooses (GoTrue internal/hooks/hookshttp/hookshttp.go, signup.go).
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuthApp } from '../../dev/auth/app.ts';
import type { AuthOptions } from '../../dev/auth/app.ts';
import { type LocalKeys, localKeys } from '../../dev/keys.ts';
import { freePort } from '../../dev/postgres.ts';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

const db = useTestDatabase();
const VERSION = { 'X-Supabase-Api-Version': '2024-01-01' };
const SECRET = `v1,whsec_${
  Buffer.from('a-hook-secret-of-at-least-thirty-two-bytes').toString('base64')
}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface HookCall {
  headers: IncomingHttpHeaders;
  body: string;
  /** Users with the signed-up address while the hook was running. */
  usersMeanwhile: number;
}

type Behaviour = (request: IncomingMessage, response: ServerResponse) => void;

let keys: LocalKeys;
let hookServer: Server;
let hookUrl = '';
let behaviour: Behaviour;
let calls: HookCall[] = [];
const closers: Array<() => Promise<void>> = [];

const json = (status: number, body: unknown): Behaviour => (_request, response) => {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

async function startAuth(options: Partial<AuthOptions>): Promise<string> {
  let server: Server | undefined;
  const port = await new Promise<number>((resolve) => {
    // app is made below, once the port is known; nothing calls the server before then.
    server = serve({
      fetch: (request, env) => app.fetch(request, env),
      port: 0,
      hostname: '127.0.0.1',
    }, (info) => resolve(info.port)) as Server;
  });
  const url = `http://127.0.0.1:${port}`;
  const app = new Hono().route(
    '/auth/v1',
    createAuthApp({
      pool: db().auth,
      keys,
      apiUrl: url,
      autoconfirm: true,
      bcryptCost: 4,
      onEmail: () => {},
      ...options,
    }),
  );
  closers.push(
    () =>
      new Promise<void>((resolve, reject) => {
        server!.closeAllConnections();
        server!.close((error) => (error ? reject(error) : resolve()));
      }),
  );
  return url;
}

let hooked: string; // Auth with the hook
let unreachable: string; // Auth whose hook listens nowhere

async function signUp(
  url: string,
  email: string,
  init: { headers?: Record<string, string>; data?: Record<string, unknown> } = {},
) {
  const response = await fetch(`${url}/auth/v1/signup`, {
    method: 'POST',
    headers: {
      apikey: keys.anonKey,
      Authorization: `Bearer ${keys.anonKey}`,
      'Content-Type': 'application/json',
      ...init.headers,
    },
    body: JSON.stringify({
      email,
      password: 'secret-123',
      ...(init.data ? { data: init.data } : {}),
    }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? null : JSON.parse(text),
  };
}

async function usersWith(email: string): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from auth.users where email = $1',
    [email],
  )).n;
}

beforeAll(async () => {
  keys = await localKeys();
  hookServer = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const body = Buffer.concat(chunks).toString();
      const email = (JSON.parse(body) as { user: { email: string } }).user.email;
      calls.push({ headers: request.headers, body, usersMeanwhile: await usersWith(email) });
      behaviour(request, response);
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
  hooked = await startAuth({ beforeUserCreatedHook: { url: hookUrl, secrets: SECRET } });
  unreachable = await startAuth({
    beforeUserCreatedHook: { url: `http://127.0.0.1:${await freePort()}/hook`, secrets: SECRET },
  });
});

afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  hookServer.closeAllConnections();
  await new Promise((resolve) => hookServer.close(resolve));
});

beforeEach(() => {
  calls = [];
  behaviour = (_request, response) => void response.writeHead(204).end();
});

describe('the before-user-created hook', () => {
  it("is called before anything is written, with Auth's payload signed per Standard Webhooks, and 204 lets the signup through", async () => {
    const { data, error } = await appClient(hooked, keys.anonKey).auth.signUp({
      email: 'Hooked@Example.test',
      password: 'secret-123',
      options: { data: { full_name: 'Hedy Lamarr' } },
    });
    expect(error).toBeNull();
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call!.usersMeanwhile).toBe(0);
    expect(call!.headers['content-type']).toBe('application/json');
    expect(call!.headers['webhook-id']).toMatch(UUID);
    expect(Math.abs(Number(call!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(
      5,
    );
    expect(call!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);

    const payload = new Webhook(SECRET.slice('v1,'.length)).verify(call!.body, {
      'webhook-id': call!.headers['webhook-id'] as string,
      'webhook-timestamp': call!.headers['webhook-timestamp'] as string,
      'webhook-signature': call!.headers['webhook-signature'] as string,
    }) as { metadata: Record<string, unknown>; user: Record<string, unknown> };
    expect(payload).toEqual({
      metadata: {
        uuid: expect.stringMatching(UUID),
        time: expect.any(String),
        name: 'before-user-created',
        ip_address: '127.0.0.1',
      },
      user: {
        id: data.user!.id,
        aud: 'authenticated',
        role: '',
        email: 'hooked@example.test',
        phone: '',
        app_metadata: { provider: 'email', providers: ['email'] },
        user_metadata: { full_name: 'Hedy Lamarr' },
        identities: [],
        created_at: '0001-01-01T00:00:00Z',
        updated_at: '0001-01-01T00:00:00Z',
        is_anonymous: false,
      },
    });
    // models.User's field order, as Go's encoder writes it.
    expect(Object.keys(payload.user)).toEqual([
      'id',
      'aud',
      'role',
      'email',
      'phone',
      'app_metadata',
      'user_metadata',
      'identities',
      'created_at',
      'updated_at',
      'is_anonymous',
    ]);
    expect(Math.abs(Date.parse(payload.metadata.time as string) - Date.now())).toBeLessThan(5_000);
    expect(() =>
      new Webhook(Buffer.from('some-other-secret-entirely-0123456789').toString('base64')).verify(
        call!.body,
        {
          'webhook-id': call!.headers['webhook-id'] as string,
          'webhook-timestamp': call!.headers['webhook-timestamp'] as string,
          'webhook-signature': call!.headers['webhook-signature'] as string,
        },
      )
    ).toThrow('No matching signature found');
    expect(await usersWith('hooked@example.test')).toBe(1);
  });

  it('allows the signup on 200 with {} and on an error that carries no message', async () => {
    behaviour = json(200, {});
    expect((await signUp(hooked, 'empty-object@example.test')).status).toBe(200);
    behaviour = json(200, { error: { http_code: 403 } });
    expect((await signUp(hooked, 'no-message@example.test')).status).toBe(200);
    expect(await usersWith('empty-object@example.test')).toBe(1);
    expect(await usersWith('no-message@example.test')).toBe(1);
  });

  it("refuses the signup with the hook's http_code and message, under GoTrue's code 'unknown' and without x-sb-error-code", async () => {
    behaviour = json(200, { error: { http_code: 409, message: 'username is already taken' } });
    const viaClient = await appClient(hooked, keys.anonKey).auth.signUp({
      email: 'refused@example.test',
      password: 'secret-123',
    });
    expect(viaClient.data).toEqual({ user: null, session: null });
    expect(viaClient.error).toMatchObject({
      name: 'AuthApiError',
      status: 409,
      code: 'unknown',
      message: 'username is already taken',
    });

    const current = await signUp(hooked, 'refused@example.test', { headers: VERSION });
    expect({ status: current.status, body: current.body }).toEqual({
      status: 409,
      body: { code: 'unknown', message: 'username is already taken' },
    });
    expect(current.headers.get('x-sb-error-code')).toBeNull();
    const legacy = await signUp(hooked, 'refused@example.test');
    expect({ status: legacy.status, body: legacy.body }).toEqual({
      status: 409,
      body: { code: 409, error_code: 'unknown', msg: 'username is already taken' },
    });
    expect(await usersWith('refused@example.test')).toBe(0);
  });

  it('refuses with 500 when the refusal names no http_code', async () => {
    behaviour = json(200, { error: { message: 'no reason given' } });
    const current = await signUp(hooked, 'refused-500@example.test', { headers: VERSION });
    expect({ status: current.status, body: current.body }).toEqual({
      status: 500,
      body: { code: 'unexpected_failure', message: 'no reason given' },
    });
    expect(await usersWith('refused-500@example.test')).toBe(0);
  });

  it('fails closed when the hook cannot be reached: 422 hook_timeout_after_retry', async () => {
    behaviour = (request) => request.socket.destroy();
    const reset = await signUp(hooked, 'reset@example.test', { headers: VERSION });
    expect({ status: reset.status, body: reset.body }).toEqual({
      status: 422,
      body: {
        code: 'hook_timeout_after_retry',
        message: 'Failed to reach hook after maximum retries',
      },
    });
    expect(calls).toHaveLength(1);

    const down = await signUp(unreachable, 'down@example.test', { headers: VERSION });
    expect({ status: down.status, body: down.body }).toEqual({
      status: 422,
      body: {
        code: 'hook_timeout_after_retry',
        message: 'Failed to reach hook after maximum retries',
      },
    });
    expect(await usersWith('reset@example.test')).toBe(0);
    expect(await usersWith('down@example.test')).toBe(0);
  });

  it("fails closed with 422 hook_timeout when the hook answers after GoTrue's 5-second deadline", async () => {
    behaviour = (_request, response) => void setTimeout(() => response.writeHead(204).end(), 6_000);
    const started = Date.now();
    const slow = await signUp(hooked, 'slow@example.test', { headers: VERSION });
    expect({ status: slow.status, body: slow.body }).toEqual({
      status: 422,
      body: {
        code: 'hook_timeout',
        message: 'Failed to reach hook within maximum time of 5.000000 seconds',
      },
    });
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(await usersWith('slow@example.test')).toBe(0);
  });

  it('fails closed on any other answer: another status, a body that is not JSON', async () => {
    const cases: Array<[Behaviour, number, string, string]> = [
      [json(401, {}), 500, 'unexpected_failure', 'Unexpected status code returned from hook: 401'],
      [
        (_q, r) => void r.writeHead(429, { 'retry-after': '1' }).end(),
        500,
        'unexpected_failure',
        'Unexpected status code returned from hook: 429',
      ],
      [
        (_q, r) => void r.writeHead(200, { 'content-type': 'text/plain' }).end('ok'),
        400,
        'hook_payload_invalid_content_type',
        'Invalid JSON response. Received content-type: text/plain',
      ],
      [
        (_q, r) => void r.writeHead(200, { 'content-type': 'application/json' }).end(),
        500,
        'unexpected_failure',
        'Error unmarshaling JSON output.',
      ],
    ];
    for (const [answer, status, code, message] of cases) {
      behaviour = answer;
      const result = await signUp(hooked, 'picky@example.test', { headers: VERSION });
      expect({ status: result.status, body: result.body }).toEqual({
        status,
        body: { code, message },
      });
    }
    expect(await usersWith('picky@example.test')).toBe(0);
  });

  it('is not called for an existing address nor by the admin API', async () => {
    expect((await signUp(hooked, 'twice-hooked@example.test')).status).toBe(200);
    expect(calls).toHaveLength(1);
    behaviour = json(200, { error: { http_code: 403, message: 'would refuse' } });
    const again = await signUp(hooked, 'twice-hooked@example.test', { headers: VERSION });
    expect({ status: again.status, body: again.body }).toEqual({
      status: 422,
      body: { code: 'user_already_exists', message: 'User already registered' },
    });
    const { error } = await appClient(hooked, keys.serviceRoleKey).auth.admin.createUser({
      email: 'admin-made@example.test',
      password: 'secret-123',
    });
    expect(error).toBeNull();
    expect(calls).toHaveLength(1);
  });
});

describe("the stack's 'ensure-profile' hook", () => {
  const api = useLocalApi(db, { functions: true, beforeUserCreatedHook: 'ensure-profile' });

  it("sends signups through the local ensure-profile function, signed with the functions' AUTH_HOOK_SECRET", async () => {
    const anon = appClient(api().stack.apiUrl, api().stack.keys.anonKey);
    const refused = await anon.auth.signUp({
      email: 'bad-name@example.test',
      password: 'secret-123',
      options: { data: { username: '-nope-' } },
    });
    expect(refused.error).toMatchObject({
      name: 'AuthApiError',
      status: 400,
      code: 'unknown',
      message:
        'username must be 3-39 letters, digits, "_", "." or "-", not starting or ending with "." or "-"',
    });
    expect(await usersWith('bad-name@example.test')).toBe(0);

    const allowed = await anon.auth.signUp({
      email: 'good-name@example.test',
      password: 'secret-123',
      options: { data: { username: 'good_name' } },
    });
    expect(allowed.error).toBeNull();
    expect(await usersWith('good-name@example.test')).toBe(1);
  });
});
