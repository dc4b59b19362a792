// The /functions/v1 gateway in front of the function workers, against plain HTTP servers that
// stand in for the workers (the Deno workers behind it are covered by the e2e suite), and the
// register function's own handler served by Node where its answer is what is under test.
import {
  createServer,
  type IncomingHttpHeaders,
  request as httpRequest,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClientAddressShape,
  createFunctionsGateway,
  type GatewayOptions,
} from '../../dev/functions/gateway.ts';
import type { FunctionWorker, WorkerPool } from '../../dev/functions/workers.ts';
import { freePort } from '../../dev/postgres.ts';
import { type LocalKeys, localKeys, signHs256 } from '../../dev/keys.ts';
import { loadConfig } from '../../shared/config.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface RawAnswer {
  /** Whether the gateway said 100 Continue before the body was sent. */
  continued: boolean;
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

let keys: LocalKeys;
let pool: WorkerPool;
let gatewayPort = 0;
let base = '';
const seen: Seen[] = [];
const servers: Server[] = [];

const listen = (server: Server) =>
  new Promise<number>((resolve) => {
    servers.push(server);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
const worker = (name: string, port: number, exited: string | null = null): FunctionWorker => ({
  name,
  port,
  exited: () => exited,
});
const startGateway = (options: Partial<GatewayOptions> = {}) =>
  listen(
    createServer(createFunctionsGateway({
      pool,
      keys,
      verifyJwt: (name) => name === 'guarded',
      ...options,
    })),
  );

/**
 * A request sent as curl sends a large upload: headers with Expect: 100-continue first, the body
 * only once the server has said 100 Continue.
 */
function sendAfterContinue(path: string, body: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const request = httpRequest({
      host: '127.0.0.1',
      port: gatewayPort,
      path,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        expect: '100-continue',
      },
    });
    request.on('continue', () => {
      continued = true;
      request.end(body);
    });
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on(
        'end',
        () =>
          resolve({
            continued,
            status: response.statusCode!,
            headers: response.headers,
            body: Buffer.concat(chunks).toString(),
          }),
      );
    });
    request.on('error', reject);
  });
}

beforeAll(async () => {
  keys = await localKeys();
  // A worker that tells what it received, and answers as the path asks.
  const echo = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({
        method: request.method!,
        url: request.url!,
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      });
      if (request.url!.startsWith('/echo/empty')) {
        return response.writeHead(204, { 'x-kept': 'yes' }).end();
      }
      response.setHeader('set-cookie', ['a=1', 'b=2']);
      response.writeHead(201, {
        'content-type': 'application/json',
        'x-kept': 'yes',
        connection: 'keep-alive',
      });
      response.end(JSON.stringify({ ok: true }));
    });
  });
  const echoPort = await listen(echo);
  // Auth is never reached: the body is refused before anything else happens.
  const register = createRegisterHandler({
    config: loadConfig({
      SUPABASE_URL: `http://127.0.0.1:${await freePort()}`,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
      LOG_LEVEL: 'silent',
    }),
  });
  const registerPort = await listen(createServer(getRequestListener(register)));
  pool = {
    workers: new Map([
      ['echo', worker('echo', echoPort)],
      ['guarded', worker('guarded', echoPort)],
      ['crashed', worker('crashed', echoPort, '1')],
      ['gone', worker('gone', await freePort())],
      ['register', worker('register', registerPort)],
    ]),
    stop: async () => {},
  };
  gatewayPort = await startGateway();
  base = `http://127.0.0.1:${gatewayPort}/functions/v1`;
});

afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

describe('the functions gateway', () => {
  it("forwards method, path, query, headers and body to the function's worker, appending the caller's address to x-forwarded-for", async () => {
    seen.length = 0;
    const response = await fetch(`${base}/echo/sub/path?x=1`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': 'req-1',
        'x-forwarded-for': '203.0.113.9',
      },
      body: '{"hello":"world"}',
    });
    expect(response.status).toBe(201);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/echo/sub/path?x=1',
      body: '{"hello":"world"}',
    });
    expect(seen[0]!.headers).toMatchObject({
      'content-type': 'application/json',
      'x-request-id': 'req-1',
      'x-forwarded-for': '203.0.113.9, 127.0.0.1',
    });
  });

  it("answers with the worker's status, headers (every set-cookie) and body, without its hop-by-hop headers", async () => {
    const response = await fetch(`${base}/echo`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(201);
    expect(response.headers.get('x-kept')).toBe('yes');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(response.headers.get('content-length')).toBe('11');
    expect(await response.json()).toEqual({ ok: true });
  });

  it('sends no body for HEAD and for a 204', async () => {
    const head = await fetch(`${base}/echo`, { method: 'HEAD' });
    expect(head.status).toBe(201);
    expect(await head.text()).toBe('');
    const empty = await fetch(`${base}/echo/empty`, { method: 'POST', body: '{}' });
    expect(empty.status).toBe(204);
    expect(empty.headers.get('x-kept')).toBe('yes');
    expect(await empty.text()).toBe('');
  });

  it('answers as the edge runtime does for an unknown function, one that failed to boot, and one that dies mid-request', async () => {
    const answer = async (path: string) => {
      const response = await fetch(`${base}${path}`, { method: 'POST', body: '{}' });
      return { status: response.status, body: await response.json() };
    };
    expect(await answer('/nope')).toEqual({
      status: 404,
      body: { code: 'NOT_FOUND', message: 'Requested function was not found' },
    });
    expect(await answer('/crashed')).toEqual({
      status: 503,
      body: { code: 'BOOT_ERROR', message: 'Function failed to start (please check logs)' },
    });
    expect(await answer('/gone')).toEqual({
      status: 500,
      body: {
        code: 'WORKER_ERROR',
        message: 'Function exited due to an error (please check logs)',
      },
    });
  });

  it('checks the JWT of a function with verify_jwt: 401 without one or with a bad one, forwarded with a valid one', async () => {
    const call = (headers: Record<string, string>) =>
      fetch(`${base}/guarded`, { method: 'POST', headers, body: '{}' });
    const missing = await call({});
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ msg: 'Invalid JWT' });
    const forged = await signHs256({
      role: 'service_role',
      exp: Math.floor(Date.now() / 1000) + 60,
    }, 'another-secret-that-is-long-enough-0123456');
    expect((await call({ authorization: `Bearer ${forged}` })).status).toBe(401);
    expect((await call({ authorization: `Bearer ${keys.anonKey}` })).status).toBe(201);
  });
  it('passes a request sent with Expect: 100-continue on to the function like any other, without the Expect header', async () => {
    seen.length = 0;
    const answer = await sendAfterContinue('/functions/v1/echo', '{"hello":"world"}');
    expect(answer).toMatchObject({ continued: true, status: 201, body: '{"ok":true}' });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/echo', body: '{"hello":"world"}' });
    expect(seen[0]!.headers.expect).toBeUndefined();
    expect(seen[0]!.headers['content-length']).toBe('17');
  });

  it('lets the function refuse a body over its MAX_BODY_BYTES sent with Expect: 100-continue with its own 413, not a gateway 500', async () => {
    const oversized = JSON.stringify({ padding: 'x'.repeat(16_384) });
    const answer = await sendAfterContinue('/functions/v1/register', oversized);
    expect(answer.continued).toBe(true);
    expect(answer.status).toBe(413);
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'payload_too_large', message: 'The request body must be at most 16384 bytes' },
    });
  });

  it('keeps hop-by-hop headers, and those the Connection header names, from the function', async () => {
    seen.length = 0;
    const sent = {
      connection: 'keep-alive, x-hop',
      'x-hop': 'for this connection only',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      trailer: 'x-checksum',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      'proxy-connection': 'keep-alive',
      'x-end-to-end': 'kept',
    };
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest({
        host: '127.0.0.1',
        port: gatewayPort,
        path: '/functions/v1/echo',
        method: 'POST',
        headers: sent,
      });
      request.on(
        'response',
        (response) => response.resume().on('end', () => resolve(response.statusCode!)),
      );
      request.on('error', reject);
      request.end('{}');
    });
    expect(status).toBe(201);
    const received = Object.fromEntries(
      Object.keys(sent).flatMap((
        name,
      ) => (name in seen[0]!.headers ? [[name, seen[0]!.headers[name]]] : [])),
    );
    // The Connection header the function sees is the gateway's own, for its own connection.
    expect(received).toEqual({ connection: 'keep-alive', 'x-end-to-end': 'kept' });
  });

  describe("writes the caller's address as the chosen platform would", () => {
    const ADDRESS_HEADERS = [
      'x-forwarded-for',
      'cf-connecting-ip',
      'x-real-ip',
      'x-envoy-external-address',
    ];
    const CLAIMED = {
      'x-forwarded-for': '203.0.113.9',
      'cf-connecting-ip': '198.51.100.1',
      'x-real-ip': '198.51.100.2',
      'x-envoy-external-address': '198.51.100.3',
    };
    // What the function receives when the client claims CLAIMED, and when it claims nothing.
    const DELIVERED: Record<
      ClientAddressShape,
      { claimed: Record<string, string>; plain: Record<string, string> }
    > = {
      'append-xff': {
        claimed: {
          'x-forwarded-for': '203.0.113.9, 127.0.0.1',
          'cf-connecting-ip': '198.51.100.1',
          'x-real-ip': '198.51.100.2',
          'x-envoy-external-address': '198.51.100.3',
        },
        plain: { 'x-forwarded-for': '127.0.0.1' },
      },
      cloudflare: {
        claimed: {
          'x-forwarded-for': '203.0.113.9, 127.0.0.1',
          'cf-connecting-ip': '127.0.0.1',
          'x-envoy-external-address': '198.51.100.3',
        },
        plain: { 'x-forwarded-for': '127.0.0.1', 'cf-connecting-ip': '127.0.0.1' },
      },
      kong: {
        claimed: {
          'x-forwarded-for': '203.0.113.9, 127.0.0.1',
          'cf-connecting-ip': '198.51.100.1',
          'x-real-ip': '127.0.0.1',
          'x-envoy-external-address': '198.51.100.3',
        },
        plain: { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1' },
      },
      envoy: {
        claimed: {
          'x-forwarded-for': '203.0.113.9, 127.0.0.1',
          'cf-connecting-ip': '198.51.100.1',
          'x-real-ip': '198.51.100.2',
          'x-envoy-external-address': '127.0.0.1',
        },
        plain: { 'x-forwarded-for': '127.0.0.1', 'x-envoy-external-address': '127.0.0.1' },
      },
      none: {
        claimed: {
          'x-forwarded-for': '203.0.113.9',
          'cf-connecting-ip': '198.51.100.1',
          'x-real-ip': '198.51.100.2',
          'x-envoy-external-address': '198.51.100.3',
        },
        plain: {},
      },
    };
    const addressHeaders = (headers: IncomingHttpHeaders) =>
      Object.fromEntries(
        ADDRESS_HEADERS.flatMap((name) => (name in headers ? [[name, headers[name]]] : [])),
      );

    it.each(Object.entries(DELIVERED))(
      '%s: exactly its own address headers, whatever the client claims',
      async (shape, delivered) => {
        const port = await startGateway({ clientAddressShape: shape as ClientAddressShape });
        seen.length = 0;
        for (const headers of [CLAIMED, {}]) {
          const response = await fetch(`http://127.0.0.1:${port}/functions/v1/echo`, {
            method: 'POST',
            headers,
            body: '{}',
          });
          expect(response.status).toBe(201);
        }
        expect(seen.map((request) => addressHeaders(request.headers))).toEqual([
          delivered.claimed,
          delivered.plain,
        ]);
      },
    );
  });
});
