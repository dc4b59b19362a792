// Who the request runs as: PostgREST reads `Authorization: Bearer <jwt>` (the stack's gateway has
// turned an sb_ key into its JWT by then); no token at all means the anon role.
import type { JWTPayload } from 'jose';
import { bearerToken, JwtRejected, verifyJwt } from '../jwt.ts';
import type { LocalKeys } from '../keys.ts';
import { jwtRejected } from './errors.ts';

export const ANON_ROLE = 'anon';

export interface AuthResult {
  role: string;
  /** The verified claims with `role` set, as request.jwt.claims exposes them. */
  claims: Record<string, unknown>;
}

// PostgREST's wording for each way a token can fail (Error.hs, JwtError).
function rejectionMessage(token: string, error: JwtRejected): string {
  const reason = error.message;
  const parts = token.split('.').length;
  if (parts !== 3) return `Expected 3 parts in JWT; got ${parts}`;
  if (reason.includes('"exp" claim')) return 'JWT expired';
  if (reason.includes('"nbf" claim')) return 'JWT not yet valid';
  if (reason.includes('signature verification failed')) return 'JWT cryptographic operation failed';
  if (reason.startsWith('unsupported JWT algorithm')) {
    return 'Wrong or unsupported encoding algorithm';
  }
  if (reason === 'malformed JWT') return "JWT couldn't be decoded";
  return reason;
}

export async function authenticate(
  authorization: string | undefined,
  keys: Pick<LocalKeys, 'jwtSecret' | 'signingKey'>,
): Promise<AuthResult> {
  const token = bearerToken(authorization);
  if (token === null) return { role: ANON_ROLE, claims: { role: ANON_ROLE } };

  let payload: JWTPayload;
  try {
    payload = await verifyJwt(token, keys);
  } catch (error) {
    if (error instanceof JwtRejected) throw jwtRejected(rejectionMessage(token, error));
    throw error;
  }
  const role = typeof payload.role === 'string' && payload.role !== '' ? payload.role : ANON_ROLE;
  return { role, claims: { ...payload, role } };
}
