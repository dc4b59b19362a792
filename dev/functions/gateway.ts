// /functions/v1/<name>: the edge gateway's part. Checks the caller's JWT when the function's
// config.toml section says verify_jwt (the default), then proxies to the function's worker.
// It works on Node's own request and response objects, not through the Fetch API adapter the
// rest of the stack is served with: one read of the body, one fetch to the worker, one write of
// the answer, so the hop costs what any plain reverse proxy costs (the http benchmark puts an
// equally plain one in front of its naive function).
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { parse } from 'smol-toml';
import { bearerToken, verifyJwt } from '../jwt.ts';
import type { LocalKeys } from '../keys.ts';
import type { WorkerPool } from './workers.ts';

/** verify_jwt per function from supabase/config.toml (true when a function has no section). */
export async function readVerifyJwt(root: string): Promise<(name: string) => boolean> {
  const config = parse(await readFile(path.join(root, 'supabase', 'config.toml'), 'utf8')) as {
    functions?: Record<string, { verify_jwt?: boolean }>;
  };
  return (name) => config.functions?.[name]?.verify_jwt ?? true;
}

export const FUNCTIONS_PREFIX = '/functions/v1/';

// Hop-by-hop fields describe one connection, so a proxy does not pass them on (RFC 9110 §7.6.1).
// Expect among them: Node's server has already answered 100 Continue and the body is read here,
// so the expectation is met; passed on, undici's fetch refuses the whole request ("expect header
// not supported"), turning every curl upload over 1 MiB into a WORKER_ERROR.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'expect',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
// fetch sets these from the worker's URL and the body it is given.
const SET_BY_FETCH = new Set(['host', 'content-length']);
// These statuses may carry no body at all, not even an empty one.
const NO_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * Which headers carry the caller's address to the function, as a platform in front of it would
 * write them (the TCP peer standing in for the client). Hosted Supabase does not document its
 * chain, so each plausible one can be reproduced:
 * - 'append-xff': the peer appended to whatever x-forwarded-for the client sent; nothing else.
 * - 'cloudflare': cf-connecting-ip set to the peer, replacing any the client sent; the peer
 *   appended to x-forwarded-for; a client's x-real-ip removed (Cloudflare's documented handling).
 * - 'kong': x-real-ip set to the peer and the peer appended to x-forwarded-for, as the Supabase
 *   CLI's local gateway (Kong, and its TypeScript successor) does.
 * - 'envoy': x-envoy-external-address set to the peer and the peer appended to x-forwarded-for,
 *   as Envoy with use_remote_address does (Supabase's self-hosted gateway). Envoy leaves the
 *   header out for callers on internal addresses; here it is always set, since every local
 *   caller would be internal.
 * - 'none': no address header written; whatever the client sent passes through untouched.
 */
export type ClientAddressShape = 'append-xff' | 'cloudflare' | 'kong' | 'envoy' | 'none';

const SHAPES: Record<
  ClientAddressShape,
  { appendXff: boolean; setToPeer: readonly string[]; remove: readonly string[] }
> = {
  'append-xff': { appendXff: true, setToPeer: [], remove: [] },
  cloudflare: { appendXff: true, setToPeer: ['cf-connecting-ip'], remove: ['x-real-ip'] },
  kong: { appendXff: true, setToPeer: ['x-real-ip'], remove: [] },
  envoy: { appendXff: true, setToPeer: ['x-envoy-external-address'], remove: [] },
  none: { appendXff: false, setToPeer: [], remove: [] },
};

/** Hop-by-hop by definition, or made so by the message's own Connection header. */
function hopByHop(name: string, nominated: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || nominated.has(name);
}

/** The field names a Connection header lists (its connection options), lower-cased. */
function connectionOptions(values: readonly string[]): Set<string> {
  return new Set(
    values.flatMap((value) => value.split(',')).map((option) => option.trim().toLowerCase()).filter(
      Boolean,
    ),
  );
}

export type Gateway = (request: IncomingMessage, response: ServerResponse) => void;

function answer(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

async function readBody(request: IncomingMessage): Promise<Buffer<ArrayBuffer>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The request's headers for the worker: hop-by-hop ones dropped, the caller's address written as `shape` says. */
function forwardedHeaders(request: IncomingMessage, shape: ClientAddressShape): [string, string][] {
  const { appendXff, setToPeer, remove } = SHAPES[shape];
  const raw = request.rawHeaders;
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') connection.push(raw[i + 1]!);
  }
  const nominated = connectionOptions(connection);
  const headers: [string, string][] = [];
  const forwardedFor: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (
      hopByHop(name, nominated) || SET_BY_FETCH.has(name) || setToPeer.includes(name) ||
      remove.includes(name)
    ) continue;
    if (name === 'x-forwarded-for' && appendXff) forwardedFor.push(raw[i + 1]!);
    else headers.push([name, raw[i + 1]!]);
  }
  if (!appendXff) return headers;
  const peer = request.socket.remoteAddress ?? '127.0.0.1';
  headers.push(['x-forwarded-for', [...forwardedFor, peer].join(', ')]);
  for (const name of setToPeer) headers.push([name, peer]);
  return headers;
}

export interface GatewayOptions {
  pool: WorkerPool;
  keys: LocalKeys;
  verifyJwt: (name: string) => boolean;
  /**
   * Answer text/html as text/plain, as the hosted platform does on *.supabase.co (against
   * phishing pages on its domain), so tests can see what an operator there sees.
   */
  htmlAsPlainText?: boolean;
  /** How the caller's address reaches the function (see ClientAddressShape); 'append-xff' by default. */
  clientAddressShape?: ClientAddressShape;
}

/** text/html (any parameters kept) as text/plain; other types unchanged. */
function plainInsteadOfHtml(contentType: string): string {
  return contentType.replace(/^\s*text\/html\b/i, 'text/plain');
}

/** Handles every request under FUNCTIONS_PREFIX. */
export function createFunctionsGateway(options: GatewayOptions): Gateway {
  const shape = options.clientAddressShape ?? 'append-xff';
  async function proxy(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const target = (request.url ?? '/').slice(FUNCTIONS_PREFIX.length - 1);
    const name = /^\/([^/?#]+)/.exec(target)?.[1] ?? '';
    const worker = options.pool.workers.get(name);
    if (!worker) {
      return answer(response, 404, {
        code: 'NOT_FOUND',
        message: 'Requested function was not found',
      });
    }
    if (worker.exited() !== null) {
      return answer(response, 503, {
        code: 'BOOT_ERROR',
        message: 'Function failed to start (please check logs)',
      });
    }
    // A preflight carries no credentials: it goes to the function, which answers CORS itself (as
    // the edge runtime's main service skips JWT verification for OPTIONS).
    if (request.method !== 'OPTIONS' && options.verifyJwt(name)) {
      const token = bearerToken(request.headers.authorization);
      try {
        if (!token) throw new Error('missing');
        await verifyJwt(token, options.keys);
      } catch {
        return answer(response, 401, { msg: 'Invalid JWT' });
      }
    }
    const method = request.method ?? 'GET';
    const body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(request);
    let status: number;
    let headers: [string, string | string[]][];
    let payload: Buffer | undefined;
    try {
      const upstream = await fetch(`http://127.0.0.1:${worker.port}${target}`, {
        method,
        headers: forwardedHeaders(request, shape),
        body,
        redirect: 'manual',
      });
      status = upstream.status;
      headers = [];
      const nominated = connectionOptions([upstream.headers.get('connection') ?? '']);
      for (const [key, value] of upstream.headers) {
        if (hopByHop(key, nominated) || key === 'content-length' || key === 'set-cookie') continue;
        headers.push([
          key,
          key === 'content-type' && options.htmlAsPlainText ? plainInsteadOfHtml(value) : value,
        ]);
      }
      const cookies = upstream.headers.getSetCookie();
      if (cookies.length > 0) headers.push(['set-cookie', cookies]);
      const noBody = method === 'HEAD' || NO_BODY_STATUSES.has(status);
      payload = noBody ? undefined : Buffer.from(await upstream.arrayBuffer());
    } catch {
      // The worker died mid-request: the edge runtime's answer.
      return answer(response, 500, {
        code: 'WORKER_ERROR',
        message: 'Function exited due to an error (please check logs)',
      });
    }
    response.statusCode = status;
    for (const [key, value] of headers) response.setHeader(key, value);
    // end() with the whole body sets Content-Length itself.
    response.end(payload);
  }

  // Anything else (the caller hung up while sending its body) leaves nobody to answer.
  return (request, response) => void proxy(request, response).catch(() => response.destroy());
}
