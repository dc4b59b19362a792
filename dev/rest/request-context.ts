// Everything PostgREST derives from the request before touching the database: the role and claims,
// the schema (Accept-Profile / Content-Profile), the Prefer header, the response media type, and
// the headers and cookies it exposes to SQL as request.headers / request.cookies.
import type { Context } from 'hono';
import { authenticate, ANON_ROLE } from './auth.ts';
import { mediaTypeError, unacceptableSchema } from './errors.ts';
import type { RestDeps } from './deps.ts';

export interface Preferences {
  return?: 'representation' | 'minimal' | 'headers-only';
  count?: 'exact' | 'planned' | 'estimated';
  resolution?: 'merge-duplicates' | 'ignore-duplicates';
  missing?: 'default' | 'null';
}

export interface MediaChoice {
  /** `application/vnd.pgrst.object+json`: exactly one row, sent as an object. */
  singular: boolean;
  stripNulls: boolean;
}

export interface RequestContext {
  method: string;
  /** The path PostgREST sees (without the gateway's /rest/v1): `/user_profiles`, `/rpc/fn`. */
  path: string;
  role: string;
  claims: Record<string, unknown>;
  /** PostgREST's "authenticated": any role but anon. */
  authenticated: boolean;
  schema: string;
  /** Whether the schema came from a profile header, so the response names it in Content-Profile. */
  schemaNegotiated: boolean;
  prefer: Preferences;
  media: MediaChoice;
  headers: Record<string, string>;
  cookies: Record<string, string>;
  query: URLSearchParams;
}

const PREFER_VALUES: { [K in keyof Preferences]-?: readonly NonNullable<Preferences[K]>[] } = {
  return: ['representation', 'minimal', 'headers-only'],
  count: ['exact', 'planned', 'estimated'],
  resolution: ['merge-duplicates', 'ignore-duplicates'],
  missing: ['default', 'null'],
};

/** Prefer may be repeated and comma-separated; the first value of each preference wins, unknown ones are ignored. */
export function parsePrefer(header: string | undefined): Preferences {
  const prefer: Record<string, string> = {};
  for (const item of (header ?? '').split(',')) {
    const [rawKey, rawValue] = item.split('=', 2);
    const key = rawKey?.trim().toLowerCase() ?? '';
    const value = rawValue?.trim().toLowerCase() ?? '';
    if (key in PREFER_VALUES && !(key in prefer) && (PREFER_VALUES[key as keyof Preferences] as readonly string[]).includes(value)) {
      prefer[key] = value;
    }
  }
  return prefer as Preferences;
}

/** The first acceptable media type in Accept order; PostgREST only produces JSON here. */
export function negotiateMedia(accept: string | undefined): MediaChoice {
  if (!accept || accept.trim() === '') return { singular: false, stripNulls: false };
  const offered: string[] = [];
  for (const entry of accept.split(',')) {
    const [type = '', ...params] = entry.split(';').map((s) => s.trim().toLowerCase());
    if (type === '') continue;
    offered.push(type);
    const stripNulls = params.includes('nulls=stripped');
    if (type === 'application/vnd.pgrst.object+json' || type === 'application/vnd.pgrst.object') return { singular: true, stripNulls };
    if (type === 'application/vnd.pgrst.array+json') return { singular: false, stripNulls };
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return { singular: false, stripNulls: false };
  }
  throw mediaTypeError(offered);
}

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const pair of (header ?? '').split(';')) {
    const index = pair.indexOf('=');
    if (index <= 0) continue;
    const name = pair.slice(0, index).trim();
    const value = pair.slice(index + 1).trim();
    try {
      cookies[name] = decodeURIComponent(value);
    } catch {
      cookies[name] = value;
    }
  }
  return cookies;
}

export async function requestContext(c: Context, deps: RestDeps, path: string): Promise<RequestContext> {
  const headers = c.req.header();
  const { role, claims } = await authenticate({ authorization: headers['authorization'], apikey: headers['apikey'] }, deps.keys);

  const method = c.req.method.toUpperCase();
  // Reads name the schema in Accept-Profile, writes in Content-Profile (PostgREST's getSchema).
  const profileHeader = method === 'GET' || method === 'HEAD' ? headers['accept-profile'] : headers['content-profile'];
  const schema = profileHeader ?? deps.schemas[0]!;
  if (!deps.schemas.includes(schema)) throw unacceptableSchema(schema, deps.schemas);

  const { cookie, ...exposedHeaders } = headers;
  return {
    method,
    path,
    role,
    claims,
    authenticated: role !== ANON_ROLE,
    schema,
    schemaNegotiated: profileHeader !== undefined || deps.schemas.length > 1,
    prefer: parsePrefer(headers['prefer']),
    media: negotiateMedia(headers['accept']),
    headers: exposedHeaders,
    cookies: parseCookies(cookie),
    query: new URL(c.req.url).searchParams,
  };
}
