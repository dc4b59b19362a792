// Everything PostgREST derives from the request before touching the database: the role and claims,
// the schema (Accept-Profile / Content-Profile; only public is exposed), the Prefer header, the
// media type (a JSON array, or one JSON object for supabase-js's .single()), and the headers it
// exposes to SQL as request.headers (the audit trail reads the request id from them).
import type { Context } from 'hono';
import { ANON_ROLE, authenticate } from './auth.ts';
import { mediaTypeError, notImplemented, unacceptableSchema } from './errors.ts';
import type { RestDeps } from './deps.ts';

export const EXPOSED_SCHEMA = 'public';

/** The preferences this project sends; PostgREST's others are refused (parsePrefer). */
export interface Preferences {
  return?: 'representation' | 'minimal';
  resolution?: 'ignore-duplicates' | 'merge-duplicates';
}

export interface RequestContext {
  role: string;
  claims: Record<string, unknown>;
  /** PostgREST's "authenticated": any role but anon. */
  authenticated: boolean;
  /** Whether a profile header named the schema, so the response names it in Content-Profile. */
  schemaNegotiated: boolean;
  prefer: Preferences;
  /**
   * Accept asked for application/vnd.pgrst.object+json: the answer is the one row as a JSON
   * object, and any other number of rows is 406 PGRST116 (rolling a write back).
   */
  singular: boolean;
  headers: Record<string, string>;
  query: URLSearchParams;
}

/**
 * Prefer may be repeated and comma-separated; the first value of each preference wins and names
 * PostgREST does not know are ignored, as PostgREST does. Preferences supabase-js can send that
 * PostgREST would honour but this stand-in does not (count, missing, tx, …) are refused, so that
 * no caller gets a plain answer to a question it did not ask.
 */
function parsePrefer(header: string | undefined): Preferences {
  const prefer: Preferences = {};
  for (const item of (header ?? '').split(',')) {
    const [rawKey = '', rawValue = ''] = item.split('=', 2);
    const key = rawKey.trim().toLowerCase();
    const value = rawValue.trim().toLowerCase();
    if (key === 'return' && (value === 'representation' || value === 'minimal')) {
      prefer.return ??= value;
    } else if (
      key === 'resolution' && (value === 'ignore-duplicates' || value === 'merge-duplicates')
    ) prefer.resolution ??= value;
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

/** `application/vnd.pgrst.object+json` (or without +json) and `…array…`, as PostgREST decodes them. */
const PGRST_JSON = /^application\/vnd\.pgrst\.(object|array)(\+json)?$/;

/**
 * Whether the answer is one JSON object (`singular`) rather than a JSON array: PostgREST picks the
 * first acceptable type in Accept order, and a vnd.pgrst array without nulls=stripped is plain
 * JSON to it. Stripped nulls, plans, CSV and the rest are refused rather than answered otherwise.
 */
function negotiateSingular(accept: string | undefined): boolean {
  if (!accept || accept.trim() === '') return false;
  const offered = accept.split(',').map((entry) => {
    const [type = '', ...params] = entry.split(';').map((part) => part.trim());
    const nulls = params.map((p) => p.split('=', 2)).find(([name]) =>
      name?.toLowerCase() === 'nulls'
    );
    return {
      entry: entry.trim(),
      type: type.toLowerCase(),
      nulls: nulls?.[1]?.replaceAll('"', ''),
    };
  }).filter(({ type }) => type !== '');
  for (const { entry, type, nulls } of offered) {
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return false;
    const vendor = PGRST_JSON.exec(type);
    if (vendor && nulls !== 'stripped') return vendor[1] === 'object';
    if (type.startsWith('application/vnd.pgrst.')) {
      throw notImplemented(`Accept: ${entry} is not supported by the local PostgREST stand-in`);
    }
  }
  throw mediaTypeError(offered.map(({ type }) => type));
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
  const singular = negotiateSingular(headers['accept']);

  // PostgREST exposes cookies apart, as request.cookies, which nothing here reads.
  const { cookie: _cookie, ...exposedHeaders } = headers;
  return {
    role,
    claims,
    authenticated: role !== ANON_ROLE,
    schemaNegotiated: profileHeader !== undefined,
    prefer: parsePrefer(headers['prefer']),
    singular,
    headers: exposedHeaders,
    query: new URL(c.req.url).searchParams,
  };
}
