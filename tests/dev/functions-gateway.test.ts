// The /functions/v1 gateway in front of the function workers, against plain HTTP servers that
// stand in for the workers (the Deno workers behind it are covered by the e2e suite).
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFunctionsGateway } from '../../dev/functions/gateway.ts';
import type { FunctionWorker, WorkerPool } from '../../dev/functions/workers.ts';
import { freePort } from '../../dev/postgres.ts';
import { localKeys, signHs256, type LocalKeys } from '../../dev/keys.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let keys: LocalKeys;
let echo: Server;
let gateway: Server;
let base = '';
const seen: Seen[] = [];

const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
const worker = (name: string, port: number, exited: string | null = null): FunctionWorker => ({ name, port, exited: () => exited });

beforeAll(async () => {
  keys = await localKeys();
  // A worker that tells what it received, and answers as the path asks.
  echo = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({ method: request.method!, url: request.url!, headers: request.headers, body: Buffer.concat(chunks).toString() });
      if (request.url!.startsWith('/echo/empty')) return response.writeHead(204, { 'x-kept': 'yes' }).end();
      response.setHeader('set-cookie', ['a=1', 'b=2']);
      response.writeHead(201, { 'content-type': 'application/json', 'x-kept': 'yes', connection: 'keep-alive' });
      response.end(JSON.stringify({ ok: true }));
    });
  });
  const echoPort = await listen(echo);
  const pool: WorkerPool = {
    workers: new Map([
      ['echo', worker('echo', echoPort)],
      ['guarded', worker('guarded', echoPort)],
      ['crashed', worker('crashed', echoPort, '1')],
      ['gone', worker('gone', await freePort())],
    ]),
    stop: async () => {},
  };
  const handle = createFunctionsGateway({ pool, keys, verifyJwt: (name) => name === 'guarded' });
  gateway = createServer(handle);
  base = `http://127.0.0.1:${await listen(gateway)}/functions/v1`;
});

afterAll(async () => {
  await Promise.all([echo, gateway].map((server) => new Promise((resolve) => server.close(resolve))));
});

describe('the functions gateway', () => {
  it("forwards method, path, query, headers and body to the function's worker, appending the caller's address to x-forwarded-for", async () => {
    seen.length = 0;
    const response = await fetch(`${base}/echo/sub/path?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-1', 'x-forwarded-for': '203.0.113.9' },
      body: '{"hello":"world"}',
    });
    expect(response.status).toBe(201);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/echo/sub/path?x=1', body: '{"hello":"world"}' });
    expect(seen[0]!.headers).toMatchObject({ 'content-type': 'application/json', 'x-request-id': 'req-1', 'x-forwarded-for': '203.0.113.9, 127.0.0.1' });
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
    expect(await answer('/nope')).toEqual({ status: 404, body: { code: 'NOT_FOUND', message: 'Requested function was not found' } });
    expect(await answer('/crashed')).toEqual({ status: 503, body: { code: 'BOOT_ERROR', message: 'Function failed to start (please check logs)' } });
    expect(await answer('/gone')).toEqual({
      status: 500,
      body: { code: 'WORKER_ERROR', message: 'Function exited due to an error (please check logs)' },
    });
  });

  it('checks the JWT of a function with verify_jwt: 401 without one or with a bad one, forwarded with a valid one', async () => {
    const call = (headers: Record<string, string>) => fetch(`${base}/guarded`, { method: 'POST', headers, body: '{}' });
    const missing = await call({});
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ msg: 'Invalid JWT' });
    const forged = await signHs256({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-that-is-long-enough-0123456');
    expect((await call({ authorization: `Bearer ${forged}` })).status).toBe(401);
    expect((await call({ authorization: `Bearer ${keys.anonKey}` })).status).toBe(201);
  });
});
