// GoTrue's error wire format, reproduced from supabase/auth internal/api/errors.go: clients that
// send `X-Supabase-Api-Version: 2024-01-01` (supabase-js does) get `{code, message}` and the
// header echoed; the rest (a raw fetch) get the legacy `{code: <status>, error_code, msg,
// error_id}`. supabase-js picks the error code from one shape or the other depending on that
// echo, so both must be exact.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export const API_VERSION_HEADER = 'X-Supabase-Api-Version';
const API_VERSION_2024 = '2024-01-01';

export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The underlying failure, logged with a 5xx. */
    readonly cause?: unknown,
  ) {
    super(message);
  }
}

/**
 * An HTTPError GoTrue raises with no error code, such as a hook's refusal (hookserrors.go): its
 * errors.go renders the code as `unknown` (`unexpected_failure` for a 500) and sets no
 * x-sb-error-code header.
 */
export class UncodedAuthError extends AuthError {
  constructor(status: number, message: string, cause?: unknown) {
    super(status, status === 500 ? 'unexpected_failure' : 'unknown', message, cause);
  }
}

export const badRequest = (code: string, message: string) => new AuthError(400, code, message);
export const unauthorized = (code: string, message: string) => new AuthError(401, code, message);
export const forbidden = (code: string, message: string) => new AuthError(403, code, message);
export const notFound = (code: string, message: string) => new AuthError(404, code, message);
export const unprocessable = (code: string, message: string) => new AuthError(422, code, message);
export const tooManyRequests = (code: string, message: string) => new AuthError(429, code, message);
export const internalError = (message: string, cause?: unknown) =>
  new AuthError(500, 'unexpected_failure', message, cause);

/** The version GoTrue settles on: 2024-01-01 for that date or later, else the initial (legacy) one. */
function apiVersion(header: string | undefined): typeof API_VERSION_2024 | null {
  return header !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(header) && header >= API_VERSION_2024
    ? API_VERSION_2024
    : null;
}

// One line per server error: the Postgres message and SQLSTATE say what a trigger did.
function describeCause(cause: unknown): string {
  if (cause instanceof pg.DatabaseError) {
    return `${cause.message} (SQLSTATE ${cause.code}${cause.where ? `, ${cause.where}` : ''})`;
  }
  if (cause instanceof Error) return cause.stack ?? cause.message;
  return String(cause ?? 'no cause recorded');
}

function json(status: number, body: unknown, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** The one place every error of the stand-in becomes a response. */
export function renderError(error: unknown, versionHeader: string | undefined): Response {
  const version = apiVersion(versionHeader);
  const headers: Record<string, string> = version ? { [API_VERSION_HEADER]: version } : {};

  if (error instanceof AuthError) {
    if (error.status >= 500) {
      console.error(`[auth] ${error.status} ${error.message}: ${describeCause(error.cause)}`);
    }
    if (!(error instanceof UncodedAuthError)) headers['x-sb-error-code'] = error.code;
    if (version) return json(error.status, { code: error.code, message: error.message }, headers);
    const body: Record<string, unknown> = {
      code: error.status,
      error_code: error.code,
      msg: error.message,
    };
    if (error.status >= 500) body.error_id = randomUUID();
    return json(error.status, body, headers);
  }

  console.error('[auth] unhandled error:', error);
  const message = 'Unexpected failure, please check server logs for more information';
  if (version) return json(500, { code: 'unexpected_failure', message }, headers);
  return json(500, { code: 500, error_code: 'unexpected_failure', msg: message }, headers);
}
