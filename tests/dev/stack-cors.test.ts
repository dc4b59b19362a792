// CORS on the local stack as a browser meets it on a hosted project: /auth/v1 and /rest/v1 answer
// preflights themselves (no apikey on them) and put Access-Control-Allow-Origin and the headers a
// page may read on every answer; /functions/v1 passes the preflight to the function, which answers
// CORS itself, even where the gateway would verify a JWT. Real requests over HTTP, then the same
// calls from a page of another origin in Chromium, where the browser enforces all of it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS } from '../../dev/cors.ts';
import { createFunctionsGateway } from '../../dev/functions/gateway.ts';
import { CORS_HEADERS } from '../../shared/http.ts';
import { useBrowser } from '../helpers/browser.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

const db = useTestDatabase();
const api = useLocalApi(db, { functions: true });
const browser = useBrowser();

const PASSWORD = 'correct horse battery staple';
const unique = () => Math.random().toString(36).slice(2, 10);

/** A browser's preflight: no apikey, no Authorization, only what it asks to be allowed. */
function preflight(path: string, method: string, headers: string): Promise<Response> {
  return fetch(`${api().stack.apiUrl}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://app.example.test',
      'access-control-request-method': method,
      'access-control-request-headers': headers,
    },
  });
}

const listed = (value: string | null) =>
  (value ?? '').split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);

describe('preflights on /auth/v1 and /rest/v1', () => {
  it.each([
    ['/auth/v1/signup', 'POST'],
    ['/auth/v1/token?grant_type=password', 'POST'],
    ['/auth/v1/user', 'PUT'],
    ['/auth/v1/logout?scope=global', 'POST'],
    ['/rest/v1/user_profiles?select=*', 'GET'],
    ['/rest/v1/user_profiles?user_id=eq.00000000-0000-0000-0000-000000000000', 'PATCH'],
    ['/rest/v1/rpc/profile_system_health', 'POST'],
  ])(
    'OPTIONS %s (%s) is 204 with any origin, the methods and the headers supabase-js sends',
    async (path, method) => {
      const response = await preflight(
        path,
        method,
        'authorization,apikey,content-type,x-client-info,x-supabase-api-version,prefer,accept-profile,content-profile,x-retry-count,x-app-trace',
      );
      expect(response.status).toBe(204);
      expect(await response.text()).toBe('');
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(listed(response.headers.get('access-control-allow-methods'))).toEqual(
        ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'],
      );
      // The fixed list, then whatever else the preflight asked for (mirrored, as the gateway's CORS
      // plugin does).
      expect(listed(response.headers.get('access-control-allow-headers'))).toEqual([
        ...CORS_ALLOW_HEADERS,
        'x-app-trace',
      ]);
      expect(response.headers.get('access-control-max-age')).toBe('86400');
    },
  );
});

describe('answers on /auth/v1 and /rest/v1', () => {
  it('Auth: success and error answers allow any origin and expose X-Supabase-Api-Version', async () => {
    const { apiUrl, keys } = api().stack;
    const email = `cors-${unique()}@example.com`;
    const headers = {
      apikey: keys.publishableKey,
      'content-type': 'application/json',
      'x-supabase-api-version': '2024-01-01',
      origin: 'http://app.example.test',
    };
    const signup = await fetch(`${apiUrl}/auth/v1/signup`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    expect(signup.status).toBe(200);
    expect(signup.headers.get('access-control-allow-origin')).toBe('*');
    expect(signup.headers.get('access-control-expose-headers')).toBe(CORS_EXPOSE_HEADERS.auth);

    const refused = await fetch(`${apiUrl}/auth/v1/token?grant_type=password`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ email, password: 'wrong password' }),
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({
      code: 'invalid_credentials',
      message: 'Invalid login credentials',
    });
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect(refused.headers.get('x-supabase-api-version')).toBe('2024-01-01');
    expect(listed(refused.headers.get('access-control-expose-headers'))).toContain(
      'x-supabase-api-version',
    );
  });

  it('PostgREST: answers, refusals included, allow any origin and expose Content-Range', async () => {
    const { apiUrl, keys } = api().stack;
    const health = await fetch(`${apiUrl}/rest/v1/rpc/profile_system_health`, {
      method: 'POST',
      headers: { apikey: keys.secretKey, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(health.status).toBe(200);
    expect(health.headers.get('access-control-allow-origin')).toBe('*');
    expect(health.headers.get('access-control-expose-headers')).toBe(CORS_EXPOSE_HEADERS.rest);

    // anon has no grant on the table: PostgREST's 401, which the page may read too.
    const refused = await fetch(`${apiUrl}/rest/v1/user_profiles?select=user_id`, {
      headers: { apikey: keys.publishableKey, origin: 'http://app.example.test' },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
    expect(refused.headers.get('access-control-expose-headers')).toBe(CORS_EXPOSE_HEADERS.rest);

    const missing = await fetch(`${apiUrl}/rest/v1/no_such_table`, {
      headers: { apikey: keys.publishableKey },
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('the gateway refusing an unknown key still lets the page read why', async () => {
    const response = await fetch(`${api().stack.apiUrl}/rest/v1/user_profiles`, {
      headers: { apikey: 'sb_publishable_not_this_project' },
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ message: 'Invalid API key' });
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('/functions/v1 preflights', () => {
  it.each(['register', 'ensure-profile', 'profile-health'])(
    'OPTIONS /functions/v1/%s reaches the function, with no apikey, and gets its CORS answer',
    async (name) => {
      const response = await preflight(
        `/functions/v1/${name}`,
        'POST',
        'authorization,apikey,content-type,x-client-info',
      );
      expect(response.status).toBe(204);
      expect(Object.fromEntries(
        Object.keys(CORS_HEADERS).map((header) => [header, response.headers.get(header)]),
      )).toEqual(CORS_HEADERS);
    },
  );

  describe('behind verify_jwt', () => {
    let worker: Server;
    let gateway: Server;
    let base = '';
    const methods: string[] = [];

    beforeAll(async () => {
      const listen = (server: Server) =>
        new Promise<number>((resolve) =>
          server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
        );
      worker = createServer((request, response) => {
        methods.push(request.method!);
        response.writeHead(204, { 'access-control-allow-origin': '*' }).end();
      });
      const workerPort = await listen(worker);
      gateway = createServer(createFunctionsGateway({
        pool: {
          workers: new Map([['guarded', {
            name: 'guarded',
            port: workerPort,
            exited: () => null,
          }]]),
          stop: async () => {},
        },
        keys: api().stack.keys,
        verifyJwt: () => true,
      }));
      base = `http://127.0.0.1:${await listen(gateway)}/functions/v1`;
    });
    afterAll(async () => {
      for (const server of [gateway, worker]) {
        server?.closeAllConnections();
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      }
    });

    it('passes OPTIONS without a JWT to the function, and still refuses a POST without one', async () => {
      const options = await fetch(`${base}/guarded`, { method: 'OPTIONS' });
      expect(options.status).toBe(204);
      expect(options.headers.get('access-control-allow-origin')).toBe('*');
      const post = await fetch(`${base}/guarded`, { method: 'POST', body: '{}' });
      expect(post.status).toBe(401);
      expect(await post.json()).toEqual({ msg: 'Invalid JWT' });
      expect(methods).toEqual(['OPTIONS']);
    });
  });
});

describe('from a page of another origin, in Chromium', () => {
  let page: Server;
  let pageUrl = '';

  beforeAll(async () => {
    page = createServer((_request, response) =>
      response.writeHead(200, { 'content-type': 'text/html' }).end(
        '<!doctype html><title>app</title>',
      )
    );
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    // localhost, not 127.0.0.1: another origin than the API's.
    pageUrl = `http://localhost:${(page.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    page?.closeAllConnections();
    await new Promise<void>((resolve) => (page ? page.close(() => resolve()) : resolve()));
  });

  it('signs up, signs in, reads its row and calls a function, reading the exposed headers', async () => {
    const context = await browser().newContext();
    try {
      const tab = await context.newPage();
      await tab.goto(pageUrl);
      const { apiUrl, keys } = api().stack;
      const email = `cors-page-${unique()}@example.com`;
      const seen = await tab.evaluate(async ({ apiUrl, key, email, password }) => {
        const json = { apikey: key, 'content-type': 'application/json', 'x-client-info': 'page' };
        const auth = { ...json, 'x-supabase-api-version': '2024-01-01' };
        const signup = await fetch(`${apiUrl}/auth/v1/signup`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ email, password }),
        });
        const wrong = await fetch(`${apiUrl}/auth/v1/token?grant_type=password`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ email, password: 'not it' }),
        });
        const token = await fetch(`${apiUrl}/auth/v1/token?grant_type=password`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ email, password }),
        });
        const session = await token.json() as { access_token: string };
        const bearer = { authorization: `Bearer ${session.access_token}` };
        const rows = await fetch(`${apiUrl}/rest/v1/user_profiles?select=email`, {
          headers: {
            ...json,
            ...bearer,
            prefer: 'return=representation',
            'accept-profile': 'public',
          },
        });
        const ensured = await fetch(`${apiUrl}/functions/v1/ensure-profile`, {
          method: 'POST',
          headers: { ...json, ...bearer },
          body: '{}',
        });
        return {
          signup: signup.status,
          wrong: [wrong.status, wrong.headers.get('x-supabase-api-version')],
          token: token.status,
          rows: [rows.status, rows.headers.get('content-range'), await rows.json()],
          ensured: [ensured.status, ensured.headers.get('x-request-id') !== null],
        };
      }, { apiUrl, key: keys.publishableKey, email, password: PASSWORD });
      expect(seen).toEqual({
        signup: 200,
        wrong: [400, '2024-01-01'],
        token: 200,
        rows: [200, '0-0/*', [{ email }]],
        ensured: [200, true],
      });
    } finally {
      await context.close();
    }
  });
});
