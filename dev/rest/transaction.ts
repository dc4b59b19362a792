// One request = one transaction on an authenticator connection, as PostgREST runs it: BEGIN (READ
// ONLY for reads), one SELECT of set_config calls (search_path, the role's own settings, the role,
// request.jwt.claims, request.method/path/headers/cookies), the statement (which also reads
// response.headers / response.status), then COMMIT; any error rolls back. The planner runs against the schema cache first, so a request that names something
// unknown never opens a transaction.
import pg from 'pg';
import { fromConnectError, RestError, toRestError } from './errors.ts';
import type { RestDeps } from './deps.ts';
import type { RequestContext } from './request-context.ts';
import type { SchemaCacheData } from './schema-cache.ts';
import type { ResponseGucs } from './sql.ts';

export interface Planned<T> {
  readOnly: boolean;
  /** Runs the statement; the response GUCs come from the same statement. */
  run(client: pg.PoolClient): Promise<{ value: T; gucs: ResponseGucs }>;
}

export interface TxOutcome<T> {
  value: T;
  /** From the response.status / response.headers settings a function may set. */
  statusOverride: number | null;
  extraHeaders: Record<string, string>;
}

function setConfigStatement(ctx: RequestContext, cache: SchemaCacheData): { text: string; values: string[] } {
  const values: string[] = [];
  const calls: string[] = [];
  const set = (name: string, value: string) => {
    values.push(name, value);
    calls.push(`set_config($${values.length - 1}, $${values.length}, true)`);
  };
  const searchPath = [...new Set([ctx.schema, 'public'])].map((s) => pg.escapeIdentifier(s)).join(', ');
  set('search_path', searchPath);
  // Before the role switch, so that settings granted to the authenticator can still be set.
  for (const [name, value] of cache.roleSettings.get(ctx.role) ?? []) set(name, value);
  set('role', ctx.role);
  set('request.jwt.claims', JSON.stringify(ctx.claims));
  set('request.method', ctx.method);
  set('request.path', ctx.path);
  set('request.headers', JSON.stringify(ctx.headers));
  set('request.cookies', JSON.stringify(ctx.cookies));
  return { text: `select ${calls.join(', ')}`, values };
}

function parseGucHeaders(raw: string | null): Record<string, string> {
  if (raw === null || raw === '') return {};
  const invalid = new RestError(500, {
    code: 'PGRST111',
    message: 'response.headers guc must be a JSON array composed of objects with a single key and a string value',
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalid;
  }
  if (!Array.isArray(parsed)) throw invalid;
  const headers: Record<string, string> = {};
  for (const item of parsed) {
    const entries = typeof item === 'object' && item !== null ? Object.entries(item as object) : [];
    const [entry] = entries;
    if (entries.length !== 1 || typeof entry?.[1] !== 'string') throw invalid;
    headers[entry[0]] = entry[1];
  }
  return headers;
}

function parseGucStatus(raw: string | null): number | null {
  if (raw === null || raw === '') return null;
  const status = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || status < 100 || status > 599) {
    throw new RestError(500, { code: 'PGRST112', message: 'response.status guc must be a valid status code' });
  }
  return status;
}

/** Plans against the schema cache (reloading it once on a miss), then runs the plan in the request's transaction. */
export async function execute<T>(
  deps: RestDeps,
  ctx: RequestContext,
  planner: (cache: SchemaCacheData) => Planned<T>,
): Promise<TxOutcome<T>> {
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

    await client.query(planned.readOnly ? 'begin isolation level read committed read only' : 'begin isolation level read committed');
    inTransaction = true;
    const prelude = setConfigStatement(ctx, cache);
    await client.query(prelude.text, prelude.values);
    const { value, gucs } = await planned.run(client);
    await client.query('commit');
    inTransaction = false;
    return { value, statusOverride: parseGucStatus(gucs.status), extraHeaders: parseGucHeaders(gucs.headers) };
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
