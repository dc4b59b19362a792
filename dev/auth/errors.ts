// GoTrue's error wire format, reproduced from supabase/auth internal/api/errors.go: clients that
// send `X-Supabase-Api-Version: 2024-01-01` get `{code, message}` and the header echoed; the rest
// get the legacy `{code: <status>, error_code, msg, error_id}`. supabase-js picks the error code
// from one shape or the other depending on that echo, so both must be exact.
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export const API_VERSION_HEADER = 'X-Supabase-Api-Version';
const API_VERSION_2024 = '2024-01-01';

export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The underlying failure: logged, and a public Postgres error shapes the legacy body. */
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

/** GoTrue's WeakPasswordError: rendered differently from every other error (see renderError). */
export class WeakPasswordError extends AuthError {
  constructor(
    message: string,
    readonly reasons: string[],
  ) {
    super(422, 'weak_password', message);
  }
}

export const badRequest = (code: string, message: string) => new AuthError(400, code, message);
export const unauthorized = (code: string, message: string) => new AuthError(401, code, message);
export const forbidden = (code: string, message: string) => new AuthError(403, code, message);
export const notFound = (code: string, message: string) => new AuthError(404, code, message);
export const unprocessable = (code: string, message: string) => new AuthError(422, code, message);
export const tooManyRequests = (code: string, message: string) => new AuthError(429, code, message);
export const internalError = (message: string, cause?: unknown) => new AuthError(500, 'unexpected_failure', message, cause);

/** The version GoTrue settles on: 2024-01-01 for that date or later, else the initial (legacy) one. */
export function apiVersion(header: string | undefined): typeof API_VERSION_2024 | null {
  if (!header || !/^\d{4}-\d{2}-\d{2}$/.test(header)) return null;
  const parsed = new Date(`${header}T00:00:00Z`);
  // Go's time.Parse rejects impossible dates such as 2024-02-30; Date would roll them over.
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== header) return null;
  return header >= API_VERSION_2024 ? API_VERSION_2024 : null;
}

// supabase/auth internal/utilities/postgres.go: these SQLSTATEs (and PTnnn) are "publicly
// accessible", so the legacy format shows the Postgres error itself instead of GoTrue's message.
const PUBLIC_SQLSTATES = new Set(['P0001', '23000', '23001', '23502', '23503', '23505', '23514', '23P01']);

function publicPostgresError(cause: unknown): { status: number; body: Record<string, unknown> } | null {
  if (!(cause instanceof pg.DatabaseError) || !cause.code || cause.code.length !== 5) return null;
  let status = PUBLIC_SQLSTATES.has(cause.code) ? 500 : 0;
  if (cause.code.startsWith('PT') && /^\d+$/.test(cause.code.slice(2))) status = Number(cause.code.slice(2));
  if (status === 0) return null;
  const body: Record<string, unknown> = { code: cause.code, message: cause.message };
  if (cause.hint) body.hint = cause.hint;
  if (cause.detail) body.detail = cause.detail;
  return { status, body };
}

// One line per server error: the Postgres message and SQLSTATE say what a trigger did.
function describeCause(cause: unknown): string {
  if (cause instanceof pg.DatabaseError) return `${cause.message} (SQLSTATE ${cause.code}${cause.where ? `, ${cause.where}` : ''})`;
  if (cause instanceof Error) return cause.stack ?? cause.message;
  return String(cause ?? 'no cause recorded');
}

function json(status: number, body: unknown, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

/** The one place every error of the stand-in becomes a response. */
export function renderError(error: unknown, versionHeader: string | undefined): Response {
  const version = apiVersion(versionHeader);
  const headers: Record<string, string> = version ? { [API_VERSION_HEADER]: version } : {};

  if (error instanceof WeakPasswordError) {
    const weak_password = { reasons: error.reasons };
    if (version) return json(422, { code: error.code, message: error.message, weak_password }, headers);
    // Only the legacy branch of GoTrue sets x-sb-error-code for a weak password.
    return json(422, { code: 422, error_code: error.code, msg: error.message, weak_password }, { ...headers, 'x-sb-error-code': error.code });
  }

  if (error instanceof AuthError) {
    if (error.status >= 500) console.error(`[auth] ${error.status} ${error.message}: ${describeCause(error.cause)}`);
    if (!(error instanceof UncodedAuthError)) headers['x-sb-error-code'] = error.code;
    if (version) return json(error.status, { code: error.code, message: error.message }, headers);
    const postgres = publicPostgresError(error.cause);
    if (postgres) return json(postgres.status, postgres.body, headers);
    const body: Record<string, unknown> = { code: error.status, error_code: error.code, msg: error.message };
    if (error.status >= 500) body.error_id = randomUUID();
    return json(error.status, body, headers);
  }

  console.error('[auth] unhandled error:', error);
  const message = 'Unexpected failure, please check server logs for more information';
  if (version) return json(500, { code: 'unexpected_failure', message }, headers);
  return json(500, { code: 500, error_code: 'unexpected_failure', msg: message }, headers);
}
