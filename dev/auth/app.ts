// The local Supabase Auth (GoTrue) stand-in: GoTrue's routes without the /auth/v1 prefix (the
// stack mounts it there, as Kong does), talking to the real auth schema as supabase_auth_admin.
// Covers what this project's flows and tests use, and nothing else: email signup with
// confirmation on or off, /verify, password sign-in, sessions (the refresh grant and /logout),
// GET /user, creating and deleting users through the admin API, and the JWKS.
import type { IncomingMessage } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { API_VERSION_HEADER, AuthError, renderError } from './errors.ts';
import { resolveOptions } from './options.ts';
import type { AuthConfig, AuthFault, AuthOptions } from './options.ts';
import { adminUserRoutes } from './routes/admin-users.ts';
import { jwksRoutes } from './routes/jwks.ts';
import { logoutRoutes } from './routes/logout.ts';
import { signupRoutes } from './routes/signup.ts';
import { tokenRoutes } from './routes/token.ts';
import { userRoutes } from './routes/user.ts';
import { verifyRoutes } from './routes/verify.ts';

export type { AuthFault, AuthOptions } from './options.ts';

/** The injected fault this request falls under (counting it down), or null. */
function faultFor(config: AuthConfig, path: string): AuthFault | null {
  const fault = config.faults();
  if (!fault || (fault.paths && !fault.paths.test(path))) return null;
  if (fault.remaining !== undefined) {
    if (fault.remaining <= 0) return null;
    fault.remaining -= 1;
  }
  return fault;
}

function injectedError(c: Context, status: number): Response {
  return renderError(
    new AuthError(
      status,
      status === 503 ? 'service_unavailable' : 'unexpected_failure',
      'Injected fault: Auth is unavailable',
    ),
    c.req.header(API_VERSION_HEADER),
  );
}

/** Closes the client's connection with no answer at all, as a crash after the commit would. */
function dropConnection(c: Context): Response {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming) {
    throw new Error(
      'dropping the connection needs @hono/node-server bindings: serve with fetch: (request, env) => app.fetch(request, env)',
    );
  }
  incoming.socket.destroy();
  return RESPONSE_ALREADY_SENT;
}

export function createAuthApp(options: AuthOptions): Hono {
  const config = resolveOptions(options);
  const app = new Hono();
  // Set on this app, not only on a parent: Hono keeps a mounted app's own error handler.
  app.onError((error, c) => renderError(error, c.req.header(API_VERSION_HEADER)));
  // Dev/test fault injection (AuthOptions.faults): nothing is injected unless the holder of the
  // stack asked for it.
  app.use('*', async (c, next) => {
    const fault = faultFor(config, new URL(c.req.url).pathname);
    if (!fault) return next();
    if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (fault.afterCommit) {
      await next();
      const replacement = fault.status === undefined
        ? dropConnection(c)
        : injectedError(c, fault.status);
      // Hono copies the old answer's headers onto a replacement; none of them may survive.
      c.res = undefined;
      c.res = replacement;
      return;
    }
    if (fault.status === undefined) return next();
    return injectedError(c, fault.status);
  });
  app.route('/', signupRoutes(config));
  app.route('/', verifyRoutes(config));
  app.route('/', tokenRoutes(config));
  app.route('/', userRoutes(config));
  app.route('/', logoutRoutes(config));
  app.route('/', adminUserRoutes(config));
  app.route('/', jwksRoutes(config));
  return app;
}
