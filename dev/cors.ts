// CORS as the hosted API gateway answers browsers on /auth/v1 and /rest/v1 (Kong's cors plugin in
// front of GoTrue and PostgREST), done on Node's request and response before anything else reads
// them: an OPTIONS preflight is answered by the gateway itself (no apikey needed, the service never
// sees it), and every other answer carries Access-Control-Allow-Origin * and the headers the
// service lets a page read (GoTrue: api.go's cors options; PostgREST: Cors.hs). /functions/v1 is
// not covered: functions answer CORS themselves.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Everything supabase-js (auth-js, postgrest-js) sends on these routes. */
export const CORS_ALLOW_HEADERS: readonly string[] = [
  'authorization',
  'apikey',
  'content-type',
  'accept',
  'accept-profile',
  'content-profile',
  'prefer',
  'range',
  'x-client-info',
  'x-supabase-api-version',
  'x-retry-count',
];

export const CORS_ALLOW_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** The headers each service lets a page read. */
export const CORS_EXPOSE_HEADERS = {
  auth: 'X-Total-Count, Link, X-Supabase-Api-Version',
  rest:
    'Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit',
} as const;

function serviceOf(url: string): keyof typeof CORS_EXPOSE_HEADERS | null {
  if (url.startsWith('/auth/v1/')) return 'auth';
  if (url.startsWith('/rest/v1/')) return 'rest';
  return null;
}

/** The fixed list, then any other header the preflight asks for (mirrored, as the gateway's plugin does). */
function allowedHeaders(request: IncomingMessage): string {
  const asked = String(request.headers['access-control-request-headers'] ?? '')
    .split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  const extra = asked.filter((name, i) =>
    !CORS_ALLOW_HEADERS.includes(name) && asked.indexOf(name) === i
  );
  return [...CORS_ALLOW_HEADERS, ...extra].join(', ');
}

/**
 * True when this was a preflight, now answered 204. Otherwise (false) the CORS headers are set on
 * the response for /auth/v1 and /rest/v1, to be merged into whatever the service answers.
 */
export function applyCors(request: IncomingMessage, response: ServerResponse): boolean {
  const service = serviceOf(request.url ?? '');
  if (!service) return false;
  if (request.method === 'OPTIONS') {
    response.writeHead(204, {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': CORS_ALLOW_METHODS,
      'access-control-allow-headers': allowedHeaders(request),
      'access-control-max-age': '86400',
    }).end();
    return true;
  }
  response.setHeader('access-control-allow-origin', '*');
  response.setHeader('access-control-expose-headers', CORS_EXPOSE_HEADERS[service]);
  return false;
}
