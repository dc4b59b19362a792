// PostgREST's error responses: the {code, message, details, hint} body, the SQLSTATE → HTTP status
// map, and the PostgREST errors (PGRSTxxx) this stand-in can answer. The status map follows
// PostgREST's src/library/PostgREST/Error.hs (mapSQLtoHTTP) for the SQLSTATEs a database can
// raise here; its special cases for extensions and features the project does not use (custom PTnnn
// statuses, RAISE SQLSTATE 'PGRST', pg-safeupdate, xmlagg) are left out.
import pg from 'pg';

/** PostgREST's details: a text, or (PGRST201) the candidate relationships. */
export type ErrorDetails = string | Record<string, string>[] | null;

export interface ErrorBody {
  code: string;
  message: string;
  details: ErrorDetails;
  hint: string | null;
}

export class RestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails;
  readonly hint: string | null;
  readonly headers: Record<string, string>;
  /** Thrown while planning against a schema cache that may be stale: reload it and plan again. */
  readonly cacheMiss: boolean;

  constructor(
    status: number,
    body: { code: string; message: string; details?: ErrorDetails; hint?: string | null },
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
function statusForSqlState(sqlstate: string, authenticated: boolean): number {
  const c = sqlstate;
  const two = c.slice(0, 2);
  if (two === '08') return 503;
  if (two === '09') return 500;
  if (two === '0L' || two === '0P') return 403;
  if (c === '23503' || c === '23505') return 409;
  if (c === '25006') return 405;
  if (c === '21000') return 500;
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
  if (c === '42883' || c === '42P01') return 404;
  if (c === '42P17') return 500;
  if (c === '42501') return authenticated ? 403 : 401;
  return 400;
}

function isDatabaseError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError && typeof error.code === 'string';
}

/** A PostgreSQL error raised by the request's statements, as PostgREST answers it. */
function fromDatabaseError(error: pg.DatabaseError, authenticated: boolean): RestError {
  const code = error.code ?? 'XX000';
  const status = statusForSqlState(code, authenticated);
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
    return new RestError(504, {
      code: 'PGRST003',
      message: 'Timed out acquiring connection from connection pool.',
    });
  }
  return new RestError(503, {
    code: 'PGRST000',
    message: 'Database connection error.',
    details: message || null,
  });
}

/** Any error thrown while serving a request, as the response PostgREST would give. */
export function toRestError(error: unknown, authenticated: boolean): RestError {
  if (error instanceof RestError) return error;
  if (isDatabaseError(error)) return fromDatabaseError(error, authenticated);
  const message = error instanceof Error ? error.message : String(error);
  return new RestError(503, {
    code: 'PGRST001',
    message: 'Database client error. Retrying the connection.',
    details: message || null,
  });
}

export function schemaCacheUnavailable(): RestError {
  return new RestError(503, {
    code: 'PGRST002',
    message: 'Could not query the database for the schema cache. Retrying.',
  });
}

export function jwtRejected(message: string): RestError {
  return new RestError(
    401,
    { code: 'PGRST301', message },
    {
      headers: {
        'WWW-Authenticate': `Bearer error="invalid_token", error_description=${
          JSON.stringify(message)
        }`,
      },
    },
  );
}

export function unacceptableSchema(schema: string, exposed: string): RestError {
  return new RestError(406, {
    code: 'PGRST106',
    message: `Invalid schema: ${schema}`,
    hint: `Only the following schemas are exposed: ${exposed}`,
  });
}

export function invalidBody(message: string, details: string | null = null): RestError {
  return new RestError(400, { code: 'PGRST102', message, details });
}

export function queryParamError(message: string, details: string): RestError {
  return new RestError(400, { code: 'PGRST100', message, details });
}

/** PostgREST's InvalidRange (a negative limit). */
export function rangeNotSatisfiable(details: string): RestError {
  return new RestError(416, {
    code: 'PGRST103',
    message: 'Requested range not satisfiable',
    details,
  });
}

/**
 * PostgREST 12's SingularityError: Accept asked for one JSON object and the statement produced
 * `rows` rows (PostgREST 13 reworded the message; supabase-js only reads the code).
 */
export function singularityError(rows: number): RestError {
  return new RestError(406, {
    code: 'PGRST116',
    message: 'JSON object requested, multiple (or no) rows returned',
    details: `The result contains ${rows} rows`,
  });
}

export function notImplemented(details: string): RestError {
  return new RestError(400, { code: 'PGRST127', message: 'Feature not implemented', details });
}

export function mediaTypeError(accepted: string[]): RestError {
  return new RestError(406, {
    code: 'PGRST107',
    message: `None of these media types are available: ${accepted.join(', ')}`,
  });
}

export function tableNotFound(schema: string, table: string, hint: string | null): RestError {
  return new RestError(
    404,
    {
      code: 'PGRST205',
      message: `Could not find the table '${schema}.${table}' in the schema cache`,
      hint,
    },
    { cacheMiss: true },
  );
}

/** A column named in the body or `on_conflict` that the table does not have. */
export function columnNotFound(table: string, column: string): RestError {
  return new RestError(
    400,
    {
      code: 'PGRST204',
      message: `Could not find the '${column}' column of '${table}' in the schema cache`,
    },
    { cacheMiss: true },
  );
}
