// /functions/v1/<name>: the edge gateway's part. Checks the caller's JWT when the function's
// config.toml section says verify_jwt (the default), then proxies to the function's worker.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Hono } from 'hono';
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

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'content-length'];

export function createFunctionsGateway(options: { pool: WorkerPool; keys: LocalKeys; verifyJwt: (name: string) => boolean }): Hono {
  const app = new Hono();
  app.all('/:name/*', (c) => proxy(c.req.raw, c.req.param('name'), c.env as { remoteAddress?: string }));
  app.all('/:name', (c) => proxy(c.req.raw, c.req.param('name'), c.env as { remoteAddress?: string }));

  async function proxy(request: Request, name: string, env: { remoteAddress?: string }): Promise<Response> {
    const worker = options.pool.workers.get(name);
    if (!worker) return Response.json({ code: 'NOT_FOUND', message: 'Requested function was not found' }, { status: 404 });
    if (worker.exited() !== null) {
      return Response.json({ code: 'BOOT_ERROR', message: 'Function failed to start (please check logs)' }, { status: 503 });
    }
    if (options.verifyJwt(name)) {
      const token = bearerToken(request.headers.get('authorization'));
      try {
        if (!token) throw new Error('missing');
        await verifyJwt(token, options.keys);
      } catch {
        return Response.json({ msg: 'Invalid JWT' }, { status: 401 });
      }
    }
    const url = new URL(request.url);
    const target = `http://127.0.0.1:${worker.port}${url.pathname.replace(/^\/functions\/v1/, '')}${url.search}`;
    const headers = new Headers(request.headers);
    for (const h of HOP_BY_HOP) headers.delete(h);
    const client = env.remoteAddress ?? '127.0.0.1';
    headers.set('x-forwarded-for', headers.get('x-forwarded-for') ? `${headers.get('x-forwarded-for')}, ${client}` : client);
    try {
      const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer();
      const response = await fetch(target, { method: request.method, headers, body, redirect: 'manual' });
      const out = new Headers(response.headers);
      for (const h of HOP_BY_HOP) out.delete(h);
      // These statuses may carry no body at all, not even an empty one.
      const noBody = request.method === 'HEAD' || [101, 204, 205, 304].includes(response.status);
      return new Response(noBody ? null : await response.arrayBuffer(), { status: response.status, headers: out });
    } catch {
      // The worker died mid-request: the edge runtime's answer.
      return Response.json({ code: 'WORKER_ERROR', message: 'Function exited due to an error (please check logs)' }, { status: 500 });
    }
  }
  return app;
}
