// PostgREST's error responses: the {code, message, details, hint} body, the SQLSTATE → HTTP status
// map, and PostgREST's own PGRSTxxx errors. The status map follows PostgREST's
// src/library/PostgREST/Error.hs (mapSQLtoHTTP) case by case, which is a superset of the summary
// in /work/shared/supabase-facts.md §3.
import pg from 'pg';

export interface ErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

export class RestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: string | null;
  readonly hint: string | null;
  readonly headers: Record<string, string>;
  /** Thrown while planning against a schema cache that may be stale: reload it and plan again. */
  readonly cacheMiss: boolean;

  constructor(
    status: number,
    body: { code: string; message: string; details?: string | null; hint?: string | null },
    options: { headers?: Record<string, string>; cacheMiss?: boolean } = {},
  ) {
    super(body.message);
    this.name = 'RestError';
    this.status = status;
    this.code = body.code;
    this.details = body.details ?? null;
    this.hint = body.hint ?? null;
    this.headers = options.headers ?? {};
    this.cacheMiss = options.cacheMiss ?? false;
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, details: this.details, hint: this.hint };
  }
}

/**
 * HTTP status of a PostgreSQL error. `authenticated` is PostgREST's "the request's role is not
 * the anon role": a 42501 then means "you may not" (403) rather than "log in first" (401).
 */
export function statusForSqlState(sqlstate: string, message: string, authenticated: boolean): number {
  const c = sqlstate;
  const two = c.slice(0, 2);
  if (two === '08') return 503;
  if (two === '09') return 500;
  if (two === '0L' || two === '0P') return 403;
  if (c === '23503' || c === '23505') return 409;
  if (c === '25006') return 405;
  // pg-safeupdate's "DELETE requires a WHERE clause" is the client's fault; any other
  // cardinality violation is a broken function or view.
  if (c === '21000') return message.endsWith('requires a WHERE clause') ? 400 : 500;
  // A JWT naming a role that does not exist (PostgREST issue #3601).
  if (c === '22023') return message.startsWith('role') && message.endsWith('does not exist') ? 401 : 400;
  if (two === '25') return 500;
  if (two === '28') return 403;
  if (two === '2D' || two === '38' || two === '39' || two === '3B' || two === '40') return 500;
  if (c === '53400') return 500;
  if (two === '53') return 503;
  if (two === '54' || two === '55') return 500;
  if (c === '57P01') return 503;
  if (two === '57' || two === '58' || two === 'F0' || two === 'HV') return 500;
  if (c === 'P0001') return 400;
  if (two === 'P0' || two === 'XX') return 500;
  if (c === '42883') return message.startsWith('function xmlagg(') ? 406 : 404;
  if (c === '42P01') return 404;
  if (c === '42P17') return 500;
  if (c === '42501') return authenticated ? 403 : 401;
  if (two === 'PT') {
    const status = Number(c.slice(2));
    return Number.isInteger(status) && status >= 100 && status <= 599 ? status : 500;
  }
  return 400;
}

function isDatabaseError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError && typeof error.code === 'string';
}

/** `RAISE SQLSTATE 'PGRST'` with JSON message and detail: the function controls the whole response. */
function fromRaisePgrst(error: pg.DatabaseError): RestError {
  const parseFailure = (details: string, hint: string) =>
    new RestError(500, { code: 'PGRST121', message: 'Could not parse JSON in the "RAISE SQLSTATE \'PGRST\'" error', details, hint });
  const messageHint = "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.";
  const detailHint = "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";
  let body: Partial<ErrorBody>;
  try {
    body = JSON.parse(error.message) as Partial<ErrorBody>;
    if (typeof body.code !== 'string' || typeof body.message !== 'string') throw new Error('missing keys');
  } catch {
    return parseFailure(`Invalid JSON value for MESSAGE: '${error.message}'`, messageHint);
  }
  if (error.detail === undefined) return parseFailure('DETAIL is missing in the RAISE statement', detailHint);
  let detail: { status?: unknown; headers?: unknown };
  try {
    detail = JSON.parse(error.detail) as typeof detail;
    if (typeof detail.status !== 'number' || typeof detail.headers !== 'object' || detail.headers === null) throw new Error('missing keys');
  } catch {
    return parseFailure(`Invalid JSON value for DETAIL: '${error.detail}'`, detailHint);
  }
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(detail.headers as Record<string, unknown>)) headers[key] = String(value);
  return new RestError(detail.status, { code: body.code, message: body.message, details: body.details ?? null, hint: body.hint ?? null }, { headers });
}

/** A PostgreSQL error raised by the request's statements, as PostgREST answers it. */
export function fromDatabaseError(error: pg.DatabaseError, authenticated: boolean): RestError {
  const code = error.code ?? 'XX000';
  if (code === 'PGRST') return fromRaisePgrst(error);
  const status = statusForSqlState(code, error.message, authenticated);
  return new RestError(
    status,
    { code, message: error.message, details: error.detail ?? null, hint: error.hint ?? null },
    // PostgREST asks for credentials whenever it answers 401 because of the database.
    { headers: status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {} },
  );
}

// pg-pool's message when no pooled connection became free within connectionTimeoutMillis.
const POOL_WAIT_TIMEOUT = 'timeout exceeded when trying to connect';

/** An error from acquiring a connection: the database is unreachable or the pool is exhausted. */
export function fromConnectError(error: unknown): RestError {
  const message = error instanceof Error ? error.message : String(error);
  if (message === POOL_WAIT_TIMEOUT) {
    return new RestError(504, { code: 'PGRST003', message: 'Timed out acquiring connection from connection pool.' });
  }
  return new RestError(503, { code: 'PGRST000', message: 'Database connection error.', details: message || null });
}

/** Any error thrown while serving a request, as the response PostgREST would give. */
export function toRestError(error: unknown, authenticated: boolean): RestError {
  if (error instanceof RestError) return error;
  if (isDatabaseError(error)) return fromDatabaseError(error, authenticated);
  const message = error instanceof Error ? error.message : String(error);
  return new RestError(503, { code: 'PGRST001', message: 'Database client error. Retrying the connection.', details: message || null });
}

export function schemaCacheUnavailable(): RestError {
  return new RestError(503, { code: 'PGRST002', message: 'Could not query the database for the schema cache. Retrying.' });
}

export function jwtRejected(message: string): RestError {
  return new RestError(
    401,
    { code: 'PGRST301', message },
    { headers: { 'WWW-Authenticate': `Bearer error="invalid_token", error_description=${JSON.stringify(message)}` } },
  );
}

export function unacceptableSchema(schema: string, exposed: readonly string[]): RestError {
  return new RestError(406, {
    code: 'PGRST106',
    message: `Invalid schema: ${schema}`,
    hint: `Only the following schemas are exposed: ${exposed.join(', ')}`,
  });
}

export function invalidBody(message: string, details: string | null = null): RestError {
  return new RestError(400, { code: 'PGRST102', message, details });
}

export function queryParamError(message: string, details: string): RestError {
  return new RestError(400, { code: 'PGRST100', message, details });
}

export function notImplemented(details: string): RestError {
  return new RestError(400, { code: 'PGRST127', message: 'Feature not implemented', details });
}

export function singularityError(rows: number): RestError {
  return new RestError(406, {
    code: 'PGRST116',
    message: 'Cannot coerce the result to a single JSON object',
    details: `The result contains ${rows} rows`,
  });
}

export function mediaTypeError(accepted: string[]): RestError {
  return new RestError(406, { code: 'PGRST107', message: `None of these media types are available: ${accepted.join(', ')}` });
}

export function tableNotFound(schema: string, table: string, hint: string | null): RestError {
  return new RestError(
    404,
    { code: 'PGRST205', message: `Could not find the table '${schema}.${table}' in the schema cache`, hint },
    { cacheMiss: true },
  );
}

/** A column named in the body, `columns` or `on_conflict` that the table does not have. */
export function columnNotFound(table: string, column: string): RestError {
  return new RestError(
    400,
    { code: 'PGRST204', message: `Could not find the '${column}' column of '${table}' in the schema cache` },
    { cacheMiss: true },
  );
}

/** A column in select, a filter or order that the table does not have: PostgreSQL's own words. */
export function undefinedColumn(table: string, column: string): RestError {
  return new RestError(400, { code: '42703', message: `column ${table}.${column} does not exist` }, { cacheMiss: true });
}

export function rangeNotSatisfiable(offset: number, total: number): RestError {
  return new RestError(416, {
    code: 'PGRST103',
    message: 'Requested range not satisfiable',
    details: `An offset of ${offset} was requested, but there are only ${total} rows.`,
  });
}
