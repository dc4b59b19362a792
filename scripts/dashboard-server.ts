// The operator dashboard for a hosted project, served from the operator's own machine. Supabase
// answers an Edge Function's text/html as text/plain on *.supabase.co, so profile-health cannot
// show its page there; this server shows the same page (shared/dashboard/page.ts, same strict
// CSP) on 127.0.0.1 and relays the page's one kind of request, the health JSON, to the project.
// The page stays same-origin (connect-src 'self'), and the server holds no secret: the token
// travels from the page's URL fragment in the page's own x-health-token header, is passed on to
// profile-health and nowhere else, and is never logged.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cspNonce, dashboardHeaders } from '../shared/dashboard/headers.ts';
import { renderDashboardHtml } from '../shared/dashboard/page.ts';

/** The hosted gateway may take a while to wake a cold function; past this the page is told. */
export const UPSTREAM_TIMEOUT_MS = 20_000;
/** A health body with operations is a few kB; anything near this is not profile-health. */
const MAX_UPSTREAM_BYTES = 2 * 1024 * 1024;

/** The windows profile-health accepts (90s, 15m, 24h, 7d); it checks the range itself. */
const WINDOW = /^\d{1,6}[smhd]$/;
/** What an HTTP header may carry; a token outside it could not be sent anyway. */
const TOKEN = /^[\x21-\x7e]{1,1024}$/;

// Answers of this server are data only: nothing in them may run or be framed, whatever the body.
const JSON_HEADERS = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
} as const;

interface DashboardServerOptions {
  /** The project's functions URL, e.g. https://<ref>.supabase.co/functions/v1 (no trailing slash needed). */
  functionsUrl: string;
  /** 0 picks a free port. */
  port: number;
  upstreamTimeoutMs?: number;
  /** One line per failed relay (never the token). */
  log?: (line: string) => void;
}

export interface DashboardServer {
  /** http://127.0.0.1:<port>/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Every refusal and every problem on the way to profile-health, in the shape the page draws: a
 * `status` it shows as the verdict and an `error` code it spells out in its banner.
 */
function answerError(
  response: ServerResponse,
  status: number,
  error: string,
  message: string,
): void {
  const body = JSON.stringify({ status: 'unknown', error, message });
  response.writeHead(status, { ...JSON_HEADERS, 'Content-Length': Buffer.byteLength(body) }).end(
    body,
  );
}

/** The body, or null once it grows past limit (the rest is not read). */
async function readLimited(upstream: Response, limit: number): Promise<string | null> {
  if (!upstream.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of upstream.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startDashboardServer(
  options: DashboardServerOptions,
): Promise<DashboardServer> {
  const healthUrl = `${options.functionsUrl.replace(/\/+$/, '')}/profile-health`;
  const timeoutMs = options.upstreamTimeoutMs ?? UPSTREAM_TIMEOUT_MS;
  const log = options.log ?? (() => undefined);
  let port = 0;

  async function relay(
    request: IncomingMessage,
    response: ServerResponse,
    query: URLSearchParams,
  ): Promise<void> {
    // Only the request the page makes, rebuilt from checked parts: nothing else reaches the project.
    const keys = [...query.keys()].sort().join(',');
    const window = query.get('window') ?? '24h';
    if (
      (keys !== 'format,include' && keys !== 'format,include,window') ||
      query.get('include') !== 'operations' || !WINDOW.test(window)
    ) {
      return answerError(
        response,
        400,
        'unsupported_query',
        'only format=json, include=operations and a window such as 1h, 24h or 7d are relayed',
      );
    }
    // A request from another site could not read the answer, but has no business here either.
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') {
      return answerError(response, 403, 'cross_site_request', 'only the dashboard page may ask');
    }
    const token = request.headers['x-health-token'];
    if (typeof token !== 'string' || !TOKEN.test(token)) {
      return answerError(
        response,
        401,
        'health_token_required',
        'send the health token in x-health-token',
      );
    }

    const target = `${healthUrl}?format=json&include=operations&window=${
      encodeURIComponent(window)
    }`;
    const started = Date.now();
    let upstream: Response;
    try {
      // Never followed: a redirect would carry x-health-token to wherever it points.
      upstream = await fetch(target, {
        headers: { 'x-health-token': token, accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      log(
        `profile-health ${
          timedOut
            ? `gave no answer within ${timeoutMs} ms`
            : `could not be reached: ${causeOf(error)}`
        } (window ${window})`,
      );
      return timedOut
        ? answerError(
          response,
          504,
          'profile_health_timed_out',
          `profile-health gave no answer within ${timeoutMs / 1000} s`,
        )
        : answerError(
          response,
          502,
          'profile_health_unreachable',
          `profile-health could not be reached: ${causeOf(error)}`,
        );
    }
    if (upstream.status >= 300 && upstream.status < 400) {
      await upstream.body?.cancel();
      log(`profile-health answered with a redirect (HTTP ${upstream.status}), not followed`);
      return answerError(
        response,
        502,
        'profile_health_redirected',
        `profile-health answered with a redirect (HTTP ${upstream.status}): give the address it leads to as --functions-url`,
      );
    }
    let text: string | null;
    try {
      text = await readLimited(upstream, MAX_UPSTREAM_BYTES);
    } catch (error) {
      log(`profile-health's answer broke off: ${causeOf(error)}`);
      return answerError(
        response,
        502,
        'profile_health_unreachable',
        `profile-health's answer broke off: ${causeOf(error)}`,
      );
    }
    if (text === null) {
      return answerError(
        response,
        502,
        'profile_health_answer_too_large',
        `profile-health answered more than ${MAX_UPSTREAM_BYTES} bytes`,
      );
    }
    try {
      JSON.parse(text);
    } catch {
      log(
        `profile-health answered HTTP ${upstream.status} with ${
          upstream.headers.get('content-type') ?? 'no type'
        }, not JSON (${Date.now() - started} ms)`,
      );
      return answerError(
        response,
        502,
        'profile_health_answer_not_json',
        `profile-health answered HTTP ${upstream.status} without JSON: is --functions-url right?`,
      );
    }
    // The status passes through (401 makes the page ask for the token again, 503 is a verdict);
    // the headers are this server's own, so the body is only ever read as JSON.
    response.writeHead(upstream.status, {
      ...JSON_HEADERS,
      'Content-Length': Buffer.byteLength(text),
    }).end(text);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // A page on another site that renames itself to 127.0.0.1 (DNS rebinding) still sends its own Host.
    if (
      request.headers.host !== `127.0.0.1:${port}` && request.headers.host !== `localhost:${port}`
    ) {
      return answerError(response, 421, 'wrong_host', `open http://127.0.0.1:${port}/`);
    }
    const url = new URL(request.url ?? '/', `http://127.0.0.1:${port}`);
    if (url.pathname !== '/') {
      return answerError(response, 404, 'not_found', 'the dashboard is at /');
    }
    const method = request.method ?? 'GET';
    const format = url.searchParams.get('format');
    if (format === 'json') {
      if (method !== 'GET') return answerError(response, 405, 'method_not_allowed', 'GET only');
      return relay(request, response, url.searchParams);
    }
    if (url.search !== '' && !(format === 'html' && [...url.searchParams.keys()].length === 1)) {
      return answerError(
        response,
        400,
        'unsupported_query',
        'the page is at / (or /?format=html), its data at /?format=json&include=operations',
      );
    }
    if (method !== 'GET' && method !== 'HEAD') {
      return answerError(response, 405, 'method_not_allowed', 'GET or HEAD only');
    }
    // A fresh nonce per answer, as profile-health does: the page's one script and one style run, nothing else.
    const nonce = cspNonce();
    const html = renderDashboardHtml(nonce);
    response.writeHead(200, {
      ...dashboardHeaders(nonce),
      'Content-Length': Buffer.byteLength(html),
    });
    response.end(method === 'HEAD' ? undefined : html);
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log(`dashboard request failed: ${causeOf(error)}`);
      if (!response.headersSent) {
        answerError(response, 500, 'internal_error', 'the dashboard server failed; see its output');
      } else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // The page keeps a connection open between its refreshes; stopping must not wait for it.
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A fetch failure's reason: undici hides ECONNREFUSED and friends in cause. */
function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}
