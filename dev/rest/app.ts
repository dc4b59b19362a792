// The local PostgREST stand-in: PostgREST's routes without the gateway's /rest/v1 prefix (mount it
// with `new Hono().route('/rest/v1', createRestApp(...))`), on a pool logged in as authenticator.
import { Hono } from 'hono';
import { RestError } from './errors.ts';
import { errorResponse } from './respond.ts';
import { handleRpc } from './rpc.ts';
import { SchemaCache } from './schema-cache.ts';
import { handleTable } from './tables.ts';
import type { RestDeps, RestOptions } from './deps.ts';

export type { RestOptions } from './deps.ts';

export function createRestApp(options: RestOptions): Hono {
  const schemas = options.schemas && options.schemas.length > 0 ? [...options.schemas] : ['public'];
  const deps: RestDeps = { pool: options.pool, keys: options.keys, schemas, cache: new SchemaCache(schemas) };
  const app = new Hono();

  // Hono answers HEAD with the GET handler and drops the body.
  app.on(['GET', 'POST'], '/rpc/:fn', (c) => handleRpc(c, deps));
  app.all('/rpc/:fn', (c) => {
    throw new RestError(405, { code: 'PGRST101', message: `Cannot use the ${c.req.method} method on RPC` });
  });

  app.on(['GET', 'POST', 'PATCH', 'DELETE'], '/:table', (c) => handleTable(c, deps));
  app.on('PUT', '/:table', () => {
    throw new RestError(400, {
      code: 'PGRST127',
      message: 'Feature not implemented',
      details: 'PUT (single-row upsert) is not supported by the local PostgREST stand-in; use POST with Prefer: resolution=merge-duplicates',
    });
  });
  app.all('/:table', (c) => {
    throw new RestError(405, { code: 'PGRST117', message: `Unsupported HTTP method: ${c.req.method}` });
  });

  // Whatever no route above took: the root, where PostgREST serves its OpenAPI description (not
  // part of this stand-in), or a path PostgREST has no resource for. Measured from wherever the
  // app is mounted, so both /rest/v1 and /rest/v1/ count as the root.
  app.all('*', (c) => {
    const mount = c.req.routePath.replace(/\/?\*$/, '');
    const rest = c.req.path.slice(mount.length);
    if (rest === '' || rest === '/') {
      throw new RestError(404, { code: 'PGRST126', message: 'Root endpoint metadata is disabled' });
    }
    throw new RestError(404, { code: 'PGRST125', message: 'Invalid path specified in request URL' });
  });

  app.onError((error) =>
    // Database errors are RestErrors by now; anything else is a bug in the stand-in itself.
    errorResponse(error instanceof RestError ? error : new RestError(500, { code: 'PGRSTX00', message: error.message })),
  );
  return app;
}
