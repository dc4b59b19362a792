// One request = one transaction on an authenticator connection, as PostgREST runs it: BEGIN (READ
// ONLY for reads), one SELECT of set_config calls (search_path, the role's own settings, the role,
// request.jwt.claims and request.headers), the statement, then COMMIT; any error rolls back. The
// planner runs against the schema cache first, so a request that names something unknown never
// opens a transaction.
import pg from 'pg';
import { fromConnectError, RestError, toRestError } from './errors.ts';
import type { RestDeps } from './deps.ts';
import { EXPOSED_SCHEMA, type RequestContext } from './request-context.ts';
import type { SchemaCacheData } from './schema-cache.ts';

export interface Planned<T> {
  readOnly: boolean;
  run(client: pg.PoolClient): Promise<T>;
}

function setConfigStatement(
  ctx: RequestContext,
  cache: SchemaCacheData,
): { text: string; values: string[] } {
  const values: string[] = [];
  const calls: string[] = [];
  const set = (name: string, value: string) => {
    values.push(name, value);
    calls.push(`set_config($${values.length - 1}, $${values.length}, true)`);
  };
  set('search_path', pg.escapeIdentifier(EXPOSED_SCHEMA));
  // Before the role switch, so that settings granted to the authenticator can still be set.
  for (const [name, value] of cache.roleSettings.get(ctx.role) ?? []) set(name, value);
  set('role', ctx.role);
  set('request.jwt.claims', JSON.stringify(ctx.claims));
  set('request.headers', JSON.stringify(ctx.headers));
  return { text: `select ${calls.join(', ')}`, values };
}

/** Plans against the schema cache (reloading it once on a miss), then runs the plan in the request's transaction. */
export async function execute<T>(
  deps: RestDeps,
  ctx: RequestContext,
  planner: (cache: SchemaCacheData) => Planned<T>,
): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await deps.pool.connect();
  } catch (error) {
    throw fromConnectError(error);
  }

  let broken = false;
  let inTransaction = false;
  try {
    let cache = await deps.cache.get(client);
    let planned: Planned<T>;
    try {
      planned = planner(cache);
    } catch (error) {
      if (!(error instanceof RestError && error.cacheMiss)) throw error;
      cache = await deps.cache.reload(client);
      planned = planner(cache);
    }

    await client.query(
      planned.readOnly
        ? 'begin isolation level read committed read only'
        : 'begin isolation level read committed',
    );
    inTransaction = true;
    const prelude = setConfigStatement(ctx, cache);
    await client.query(prelude.text, prelude.values);
    const value = await planned.run(client);
    await client.query('commit');
    inTransaction = false;
    return value;
  } catch (error) {
    if (inTransaction) {
      // A failed rollback means the connection itself is gone: do not return it to the pool.
      await client.query('rollback').catch(() => (broken = true));
    }
    const restError = toRestError(error, ctx.authenticated);
    if (restError.code === 'PGRST001' || restError.code === 'PGRST002') broken = true;
    throw restError;
  } finally {
    client.release(broken);
  }
}
