// The one error type of the functions. Everything a handler rejects is an AppError; anything
// else that escapes is a bug and becomes a generic 500 (see http.ts).

export type FieldErrors = Record<string, string>;

interface AppErrorOptions {
  fields?: FieldErrors;
  headers?: Record<string, string>;
  /** Extra JSON members of the error body (never secrets). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: FieldErrors | undefined;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.fields = options.fields;
    this.headers = options.headers ?? {};
    this.details = options.details;
  }
}

export const unauthorized = (message = 'A valid Authorization header is required') =>
  new AppError(401, 'unauthorized', message);

export const serviceUnavailable = (message: string, retryAfterSeconds: number, cause?: unknown) =>
  new AppError(503, 'service_unavailable', message, {
    headers: { 'Retry-After': String(retryAfterSeconds) },
    cause,
  });
