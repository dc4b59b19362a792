// One way in and one way out for every function: CORS preflight, method and content-type
// checks, a body size limit, request ids, JSON answers, and errors turned into
// {"error": {"code", "message", "fields"?}}. Unknown errors become a generic 500 that leaks
// nothing and is logged with the request id.
import { AppError } from './errors.ts';
import type { Logger } from './logger.ts';

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers':
    'authorization, x-client-info, apikey, content-type, idempotency-key, x-request-id, x-supabase-api-version, ' +
    'webhook-id, webhook-timestamp, webhook-signature, x-webhook-secret, x-health-token',
  'Access-Control-Allow-Methods': 'GET, HEAD, POST, OPTIONS',
  'Access-Control-Expose-Headers': 'x-request-id, retry-after, idempotency-replayed',
  'Access-Control-Max-Age': '86400',
};

// What an answer other than a preflight needs: browsers read Allow-Headers, Allow-Methods and
// Max-Age only from the preflight, so sending them on every answer only makes it longer.
const CORS_ENTRIES = Object.entries(CORS_HEADERS).filter(([name]) =>
  ['Access-Control-Allow-Origin', 'Access-Control-Expose-Headers'].includes(name)
);

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestContext {
  requestId: string;
  log: Logger;
  /** Adds fields (user_id, profile_status, …) to the request's one access line. */
  annotate(fields: Record<string, unknown>): void;
}

type Route = (request: Request, context: RequestContext) => Promise<Response>;

export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
  });
}

export function errorBody(error: AppError): { error: Record<string, unknown> } {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.fields ? { fields: error.fields } : {}),
      ...(error.details ?? {}),
    },
  };
}

/** A caller's x-request-id when it is sane, else a fresh one. */
function requestIdOf(request: Request): string {
  const given = request.headers.get('x-request-id');
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

/**
 * Reads the body as text: 415 unless Content-Type is application/json, 413 past maxBytes
 * (checked on the bytes actually read, not only on Content-Length), 400 unless it is UTF-8.
 * Signature checks need these exact bytes; readJson parses them.
 */
export async function readText(request: Request, maxBytes: number): Promise<string> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new AppError(415, 'unsupported_media_type', 'Content-Type must be application/json');
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (declared > 0) {
    // HTTP framing holds the body to the declared length; read it at once (and check it anyway).
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
    return decodeUtf8(bytes);
  }
  const reader = request.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return decodeUtf8(bytes);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new AppError(400, 'invalid_json', 'The request body is not valid UTF-8');
  }
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError(400, 'invalid_json', 'The request body is not valid JSON');
  }
}

/** readText, then JSON.parse with a 400 for anything that is not JSON. */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  return parseJson(await readText(request, maxBytes));
}

function tooLarge(maxBytes: number): AppError {
  return new AppError(
    413,
    'payload_too_large',
    `The request body must be at most ${maxBytes} bytes`,
  );
}

interface HandlerOptions {
  name: string;
  methods: readonly string[];
  log: Logger;
}

/** Wraps a route into the plain (Request) => Promise<Response> that Deno.serve and tests call. */
export function createHandler(
  options: HandlerOptions,
  route: Route,
): (request: Request) => Promise<Response> {
  const allowed = new Set(options.methods);
  return async (request) => {
    if (request.method === 'OPTIONS') {
      return new Response(null, { status: 204, headers: CORS_HEADERS });
    }
    const started = performance.now();
    const requestId = requestIdOf(request);
    const log = options.log.child({ request_id: requestId });
    const annotations: Record<string, unknown> = {};
    const annotate = (fields: Record<string, unknown>) => void Object.assign(annotations, fields);
    let response: Response;
    try {
      if (!allowed.has(request.method)) {
        throw new AppError(405, 'method_not_allowed', `Use ${options.methods.join(' or ')}`, {
          headers: { Allow: [...options.methods, 'OPTIONS'].join(', ') },
        });
      }
      response = await route(request, { requestId, log, annotate });
    } catch (error) {
      response = errorResponse(error, log);
    }
    // The one line every request leaves at info; what happened inside is logged at debug.
    log.info(
      {
        method: request.method,
        status: response.status,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
        ...annotations,
      },
      'request',
    );
    return finish(request, response, requestId);
  };
}

/** The route's answer with the CORS headers and x-request-id, and without a body for HEAD. */
function finish(request: Request, response: Response, requestId: string): Response {
  if (request.method !== 'HEAD') {
    try {
      // Routes build their own responses, whose headers can be set in place.
      for (const [key, value] of CORS_ENTRIES) response.headers.set(key, value);
      response.headers.set('x-request-id', requestId);
      return response;
    } catch {
      // Immutable headers (a Response from fetch): copy below.
    }
  }
  const headers = new Headers(response.headers);
  for (const [key, value] of CORS_ENTRIES) headers.set(key, value);
  headers.set('x-request-id', requestId);
  return new Response(request.method === 'HEAD' ? null : response.body, {
    status: response.status,
    headers,
  });
}

function errorResponse(error: unknown, log: Logger): Response {
  if (error instanceof AppError) {
    if (error.status >= 500) log.error({ err: error, cause: error.cause }, error.message);
    return json(error.status, errorBody(error), error.headers);
  }
  log.error({ err: error }, 'unhandled error');
  return json(500, {
    error: {
      code: 'internal_error',
      message: 'Something went wrong; the request id identifies it in our logs',
    },
  });
}
