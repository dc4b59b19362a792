// The local PostgREST stand-in: PostgREST's routes without the gateway's /rest/v1 prefix (mount it
// with `new Hono().route('/rest/v1', createRestApp(...))`), on a pool logged in as authenticator.
// It serves what this project calls (RPC by POST, and reads, inserts, upserts, updates and deletes
// of a table) and refuses the rest of PostgREST rather than answering it wrongly.
import { Hono } from 'hono';
import { RestError } from './errors.ts';
import { errorResponse } from './respond.ts';
import { handleRpc } from './rpc.ts';
import { SchemaCache } from './schema-cache.ts';
import { handleDelete, handleInsert, handleRead, handleUpdate } from './tables.ts';
import type { RestDeps, RestOptions } from './deps.ts';

export type { RestOptions } from './deps.ts';

export function createRestApp(options: RestOptions): Hono {
  const deps: RestDeps = { pool: options.pool, keys: options.keys, cache: new SchemaCache() };
  const app = new Hono();

  app.post('/rpc/:fn', (c) => handleRpc(c, deps));
  // Hono answers HEAD with the GET handler and drops the body.
  app.get('/:table', (c) => handleRead(c, deps));
  app.post('/:table', (c) => handleInsert(c, deps));
  app.patch('/:table', (c) => handleUpdate(c, deps));
  app.delete('/:table', (c) => handleDelete(c, deps));

  app.onError((error) =>
    // Database errors are RestErrors by now; anything else is a bug in the stand-in itself.
    errorResponse(
      error instanceof RestError
        ? error
        : new RestError(500, { code: 'PGRSTX00', message: error.message }),
    )
  );
  return app;
}
