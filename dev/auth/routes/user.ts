// GET /user, after supabase/auth internal/api/user.go: supabase-js getUser, and getClaims for a
// legacy HS256 token.
import { Hono } from 'hono';
import { requireUser } from '../guards.ts';
import type { AuthConfig } from '../options.ts';
import { renderStoredUser } from '../user-json.ts';

export function userRoutes(config: AuthConfig): Hono {
  const app = new Hono();
  app.get('/user', async (c) => c.json(renderStoredUser(await requireUser(c, config))));
  return app;
}
