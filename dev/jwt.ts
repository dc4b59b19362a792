// How the local Auth and PostgREST stand-ins verify a bearer token: HS256 against the JWT
// secret (legacy API keys and legacy user tokens) or ES256 against the signing key (user access
// tokens), exactly one of the two, with exp and nbf enforced. Anything else (alg "none", an
// unknown kid, a bad signature) is rejected.
import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from 'jose';
import { publicJwk, type LocalKeys } from './keys.ts';

export class JwtRejected extends Error {}

export async function verifyJwt(token: string, keys: Pick<LocalKeys, 'jwtSecret' | 'signingKey'>): Promise<JWTPayload> {
  let alg: string | undefined;
  let kid: string | undefined;
  try {
    ({ alg, kid } = decodeProtectedHeader(token));
  } catch {
    throw new JwtRejected('malformed JWT');
  }
  try {
    if (alg === 'HS256') {
      return (await jwtVerify(token, new TextEncoder().encode(keys.jwtSecret), { algorithms: ['HS256'] })).payload;
    }
    if (alg === 'ES256' && kid === keys.signingKey.kid) {
      return (await jwtVerify(token, await importJWK(publicJwk(keys.signingKey), 'ES256'), { algorithms: ['ES256'] })).payload;
    }
  } catch (error) {
    throw new JwtRejected(`invalid JWT: ${(error as Error).message}`);
  }
  throw new JwtRejected(`unsupported JWT algorithm or key: ${alg ?? 'none'}`);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match ? match[1]! : null;
}
