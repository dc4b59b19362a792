// Everything PostgREST derives from the request before touching the database: the role and claims,
// the schema (Accept-Profile / Content-Profile; only public is exposed), the Prefer header, the
// media type, and the headers it exposes to SQL as request.headers (the audit trail reads the
// request id from them).
import type { Context } from 'hono';
import { ANON_ROLE, authenticate } from './auth.ts';
import { mediaTypeError, notImplemented, unacceptableSchema } from './errors.ts';
import type { RestDeps } from './deps.ts';

export const EXPOSED_SCHEMA = 'public';

/** The preferences this project sends; PostgREST's others are refused (parsePrefer). */
export interface Preferences {
  return?: 'representation' | 'minimal';
  resolution?: 'ignore-duplicates';
}

export interface RequestContext {
  role: string;
  claims: Record<string, unknown>;
  /** PostgREST's "authenticated": any role but anon. */
  authenticated: boolean;
  /** Whether a profile header named the schema, so the response names it in Content-Profile. */
  schemaNegotiated: boolean;
  prefer: Preferences;
  headers: Record<string, string>;
  query: URLSearchParams;
}

/**
 * Prefer may be repeated and comma-separated; the first value of each preference wins and names
 * PostgREST does not know are ignored, as PostgREST does. Preferences supabase-js can send that
 * PostgREST would honour but this stand-in does not (count, missing, merge-duplicates, …) are
 * refused, so that no caller gets a plain answer to a question it did not ask.
 */
function parsePrefer(header: string | undefined): Preferences {
  const prefer: Preferences = {};
  for (const item of (header ?? '').split(',')) {
    const [rawKey = '', rawValue = ''] = item.split('=', 2);
    const key = rawKey.trim().toLowerCase();
    const value = rawValue.trim().toLowerCase();
    if (key === 'return' && (value === 'representation' || value === 'minimal')) {
      prefer.return ??= value;
    } else if (key === 'resolution' && value === 'ignore-duplicates') prefer.resolution ??= value;
    else if (
      [
        'return',
        'resolution',
        'count',
        'missing',
        'handling',
        'tx',
        'max-affected',
        'params',
        'timezone',
      ].includes(key)
    ) {
      throw notImplemented(
        `Prefer: ${item.trim()} is not supported by the local PostgREST stand-in`,
      );
    }
  }
  return prefer;
}

/**
 * JSON arrays (and a function's JSON value) are all this stand-in answers: a singular object, a
 * stripped or CSV answer is refused rather than served as an array (PostgREST picks the first
 * acceptable type in Accept order).
 */
function checkAccept(accept: string | undefined): void {
  if (!accept || accept.trim() === '') return;
  const offered = accept.split(',').map((entry) => entry.split(';')[0]!.trim().toLowerCase())
    .filter((type) => type !== '');
  for (const type of offered) {
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return;
    if (type.startsWith('application/vnd.pgrst.')) {
      throw notImplemented(`Accept: ${type} is not supported by the local PostgREST stand-in`);
    }
  }
  throw mediaTypeError(offered);
}

export async function requestContext(c: Context, deps: RestDeps): Promise<RequestContext> {
  const headers = c.req.header();
  const { role, claims } = await authenticate(headers['authorization'], deps.keys);

  const method = c.req.method.toUpperCase();
  // Reads name the schema in Accept-Profile, writes in Content-Profile (PostgREST's getSchema).
  const profileHeader = method === 'GET' || method === 'HEAD'
    ? headers['accept-profile']
    : headers['content-profile'];
  if (profileHeader !== undefined && profileHeader !== EXPOSED_SCHEMA) {
    throw unacceptableSchema(profileHeader, EXPOSED_SCHEMA);
  }
  checkAccept(headers['accept']);

  // PostgREST exposes cookies apart, as request.cookies, which nothing here reads.
  const { cookie: _cookie, ...exposedHeaders } = headers;
  return {
    role,
    claims,
    authenticated: role !== ANON_ROLE,
    schemaNegotiated: profileHeader !== undefined,
    prefer: parsePrefer(headers['prefer']),
    headers: exposedHeaders,
    query: new URL(c.req.url).searchParams,
  };
}
