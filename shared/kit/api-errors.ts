// Every failure the kit reports is a ProfileApiError, whichever API it came from (the functions,
// PostgREST, Auth), so an app handles one shape: status, code, message, fields.
import { authFailure } from '../auth-errors.ts';
import { ProfileApiError } from '../client.ts';
import { EDITABLE_PROFILE_COLUMNS } from './editable-columns.ts';

interface PostgrestErrorLike {
  code?: string;
  message?: string;
  details?: string | null;
}

export function notSignedIn(): ProfileApiError {
  return new ProfileApiError(401, 'not_signed_in', 'Sign in first', undefined, undefined);
}

/** Auth's refusal of a signUp, in the register function's words (shared/auth-errors.ts). */
export function fromAuthError(error: unknown): ProfileApiError {
  const mapped = authFailure(error);
  const retryAfter = Number(mapped.headers['Retry-After'] ?? NaN);
  return new ProfileApiError(
    mapped.status,
    mapped.code,
    mapped.message,
    mapped.fields,
    Number.isFinite(retryAfter) ? retryAfter : undefined,
  );
}

// The columns a user may write have constraints named after them (user_profiles_<column>_check,
// and the username's unique index user_profiles_username_key): the name says which field to mark.
function constraintField(text: string): string | undefined {
  return EDITABLE_PROFILE_COLUMNS.find((column) =>
    text.includes(`user_profiles_${column}_check`) || text.includes(`user_profiles_${column}_key`)
  );
}

/** A PostgREST answer's error (status from the response) for a read or write of the profile. */
export function fromPostgrestError(error: PostgrestErrorLike, status: number): ProfileApiError {
  const code = error.code ?? '';
  const text = `${error.message ?? ''} ${error.details ?? ''}`;
  if (code === '23505') {
    const field = constraintField(text) ?? 'username';
    return new ProfileApiError(409, `${field}_taken`, `This ${field} is already taken`, {
      [field]: 'is already taken',
    }, undefined);
  }
  if (code === '23514' || code === '22023' || code === '22P02') {
    const field = constraintField(text);
    return new ProfileApiError(
      400,
      'validation_failed',
      'The profile was not accepted',
      field ? { [field]: 'is invalid' } : undefined,
      undefined,
    );
  }
  if (code === '42501') {
    return new ProfileApiError(
      403,
      'forbidden',
      'This change is not allowed',
      undefined,
      undefined,
    );
  }
  if (code === 'PGRST301' || status === 401) return notSignedIn();
  // postgrest-js answers a network failure with status 0 and no code: transient, like fetch.
  if (status === 0) {
    return new ProfileApiError(
      0,
      'network_error',
      'The API could not be reached',
      undefined,
      undefined,
    );
  }
  return new ProfileApiError(
    status,
    code ? `postgrest_${code}` : `http_${status}`,
    error.message ?? `The API answered ${status}`,
    undefined,
    undefined,
  );
}
