// GET /user and POST /logout, after supabase/auth internal/api/user.go and logout.go.
import { Hono } from 'hono';
import { badRequest } from '../errors.ts';
import { requireUser } from '../guards.ts';
import type { AuthConfig } from '../options.ts';
import { requestAud } from '../request.ts';
import { renderStoredUser } from '../user-json.ts';

export function userRoutes(config: AuthConfig): Hono {
  const app = new Hono();

  app.get('/user', async (c) => {
    const { claims, user } = await requireUser(c, config);
    const tokenAud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
    if (!tokenAud || requestAud(c, config, claims) !== tokenAud) {
      throw badRequest('validation_failed', "Token audience doesn't match request audience");
    }
    return c.json(renderStoredUser(user));
  });

  // Sessions are not stored, so there is nothing to revoke; the token stays valid until it
  // expires. Answering like GoTrue lets supabase-js signOut() complete.
  app.post('/logout', async (c) => {
    await requireUser(c, config);
    return c.body(null, 204);
  });

  return app;
}
