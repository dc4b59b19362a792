// Keys of the LOCAL stack only, fixed so that a restart keeps every printed key valid, the way
// the Supabase CLI ships well-known demo keys. Never use them for a deployed project.
import { importJWK, type JWK, type JWTPayload, SignJWT } from 'jose';

/** The Supabase CLI's local JWT secret: signs the legacy anon and service_role API keys. */
export const DEFAULT_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

/** ES256 key that signs user access tokens; its public half is served at /auth/v1/.well-known/jwks.json. */
const DEFAULT_SIGNING_KEY: JWK = {
  kty: 'EC',
  crv: 'P-256',
  kid: 'local-es256-2026-11',
  alg: 'ES256',
  x: '-uDJ9wBTNXAabVEHCOJN6IeyrfJoZmPpderoH1uxRlw',
  y: 'yt9sB_hS11P2615YSPth1FI_0-w7EG3wkiIh7DU0POw',
  d: 'AmGLKxakf043KmYe7kI-RjV6ihEV2_j2ccj42sTJ8RY',
};

// The CLI's demo keys expire in 2032 and are issued by "supabase-demo".
const API_KEY_EXPIRY = 1983812996;

export interface LocalKeys {
  jwtSecret: string;
  signingKey: JWK;
  /** Legacy JWT API keys (HS256), as `supabase status` prints them. */
  anonKey: string;
  serviceRoleKey: string;
}

export function publicJwk(key: JWK): JWK {
  const { d: _private, ...rest } = key;
  return { ...rest, use: 'sig', key_ops: ['verify'] };
}

export async function signHs256(payload: JWTPayload, secret: string): Promise<string> {
  return await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(
    new TextEncoder().encode(secret),
  );
}

export async function signEs256(payload: JWTPayload, key: JWK): Promise<string> {
  const privateKey = await importJWK(key, 'ES256');
  return await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: key.kid })
    .sign(privateKey);
}

export async function localKeys(
  options: { jwtSecret?: string; signingKey?: JWK } = {},
): Promise<LocalKeys> {
  const jwtSecret = options.jwtSecret ?? DEFAULT_JWT_SECRET;
  return {
    jwtSecret,
    signingKey: options.signingKey ?? DEFAULT_SIGNING_KEY,
    anonKey: await signHs256(
      { iss: 'supabase-demo', role: 'anon', exp: API_KEY_EXPIRY },
      jwtSecret,
    ),
    serviceRoleKey: await signHs256({
      iss: 'supabase-demo',
      role: 'service_role',
      exp: API_KEY_EXPIRY,
    }, jwtSecret),
  };
}

export { LOCAL_PUBLISHABLE_KEY, LOCAL_SECRET_KEY } from '../shared/local-stack.ts';
