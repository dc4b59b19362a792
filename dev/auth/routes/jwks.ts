// GET /.well-known/jwks.json: the public half of the signing key, so clients (supabase-js
// getClaims, Edge Functions) verify user tokens without asking Auth. HS256 secrets never appear.
import { Hono } from 'hono';
import { publicJwk } from '../../keys.ts';
import type { AuthConfig } from '../options.ts';

export function jwksRoutes(config: AuthConfig): Hono {
  const app = new Hono();
  app.get('/.well-known/jwks.json', (c) => {
    c.header('Cache-Control', 'public, max-age=600');
    return c.json({ keys: [publicJwk(config.keys.signingKey)] });
  });
  return app;
}
