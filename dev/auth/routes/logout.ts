// POST /logout, after supabase/auth internal/api/logout.go: the caller's sessions are deleted
// (scope global, the default: all of the user's; local: the token's own; others: all but it), and
// with them their refresh tokens. 204 without a body.
import { Hono } from 'hono';
import { withTransaction } from '../../transaction.ts';
import { badRequest, internalError } from '../errors.ts';
import { requireAuthentication } from '../guards.ts';
import type { AuthConfig } from '../options.ts';
import { logout } from '../sessions.ts';
import type { LogoutScope } from '../sessions.ts';

const SCOPES = new Map<string, LogoutScope>([
  ['', 'global'],
  ['global', 'global'],
  ['local', 'local'],
  ['others', 'others'],
]);

export function logoutRoutes(config: AuthConfig): Hono {
  const app = new Hono();
  app.post('/logout', async (c) => {
    const { user, sessionId } = await requireAuthentication(c, config);
    const requested = c.req.query('scope') ?? '';
    const scope = SCOPES.get(requested);
    if (!scope) throw badRequest('validation_failed', `Unsupported logout scope "${requested}"`);
    await withTransaction(config.pool, (db) => logout(db, user.row.id, sessionId, scope)).catch(
      (error: unknown) => {
        throw internalError('Error logging out user', error);
      },
    );
    return c.body(null, 204);
  });
  return app;
}
