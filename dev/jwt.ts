// How the local Auth and PostgREST stand-ins verify a bearer token: HS256 against the JWT
// secret (legacy API keys and legacy user tokens) or ES256 against the signing key (user access
// tokens), exactly one of the two, with exp and nbf enforced. Anything else (alg "none", an
// unknown kid, a bad signature) is rejected.
import { decodeProtectedHeader, importJWK, type JWTPayload, jwtVerify } from 'jose';
import { type LocalKeys, publicJwk } from './keys.ts';

export class JwtRejected extends Error {}

type VerifyKeys = Pick<LocalKeys, 'jwtSecret' | 'signingKey'>;

// Tokens already verified with these keys, as PostgREST's JWT cache keeps them: the same API key
// or access token arrives with every request, and checking its signature again each time is most
// of what authenticating costs. An entry is used until the token's exp (at most CACHE_TTL_MS);
// after that the token is verified again, which rejects it with the usual message.
const CACHE_TTL_MS = 5 * 60_000;
const CACHE_MAX_ENTRIES = 1000;
const verified = new WeakMap<VerifyKeys, Map<string, { payload: JWTPayload; until: number }>>();

function cached(token: string, keys: VerifyKeys): JWTPayload | null {
  const entry = verified.get(keys)?.get(token);
  if (!entry) return null;
  const now = Date.now();
  if (
    now >= entry.until ||
    (typeof entry.payload.exp === 'number' && Math.floor(now / 1000) >= entry.payload.exp)
  ) {
    verified.get(keys)!.delete(token);
    return null;
  }
  return { ...entry.payload };
}

function remember(token: string, keys: VerifyKeys, payload: JWTPayload): JWTPayload {
  let tokens = verified.get(keys);
  if (!tokens) verified.set(keys, tokens = new Map());
  if (tokens.size >= CACHE_MAX_ENTRIES) tokens.clear();
  tokens.set(token, { payload, until: Date.now() + CACHE_TTL_MS });
  return { ...payload };
}

/** verifyJwtUncached, answered from the cache of tokens these keys have already verified. */
export async function verifyJwt(token: string, keys: VerifyKeys): Promise<JWTPayload> {
  return cached(token, keys) ?? remember(token, keys, await verifyJwtUncached(token, keys));
}

async function verifyJwtUncached(token: string, keys: VerifyKeys): Promise<JWTPayload> {
  let alg: string | undefined;
  let kid: string | undefined;
  try {
    ({ alg, kid } = decodeProtectedHeader(token));
  } catch {
    throw new JwtRejected('malformed JWT');
  }
  try {
    if (alg === 'HS256') {
      return (await jwtVerify(token, new TextEncoder().encode(keys.jwtSecret), {
        algorithms: ['HS256'],
      })).payload;
    }
    if (alg === 'ES256' && kid === keys.signingKey.kid) {
      return (await jwtVerify(token, await importJWK(publicJwk(keys.signingKey), 'ES256'), {
        algorithms: ['ES256'],
      })).payload;
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
