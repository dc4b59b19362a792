// GET/POST/PATCH/DELETE /:table, as PostgREST builds them for what this project sends: select and
// eq filters on reads, updates and deletes; one JSON object per insert or update, read with
// json_to_record typed by the table's columns (which must exist in the schema cache); an upsert
// that ignores duplicates on `on_conflict`; Prefer return=representation. The response JSON is
// aggregated by PostgreSQL.
import type { Context } from 'hono';
import type pg from 'pg';
import { type JsonObjectBody, readJsonObject } from './body.ts';
import { columnNotFound, notImplemented, tableNotFound } from './errors.ts';
import { closest } from './fuzzy.ts';
import { type ParsedQuery, parseQuery } from './query-params.ts';
import { contentRange, prefAppliedHeader, respond } from './respond.ts';
import {
  bodySql,
  ident,
  Params,
  qualified,
  type Result,
  type ResultRow,
  selectListSql,
  toResult,
  whereSql,
} from './sql.ts';
import { execute, type Planned } from './transaction.ts';
import { EXPOSED_SCHEMA, type RequestContext, requestContext } from './request-context.ts';
import type { SchemaCacheData, Table } from './schema-cache.ts';
import type { RestDeps } from './deps.ts';

function findTable(cache: SchemaCacheData, name: string): Table {
  const table = cache.tables.get(name);
  if (table) return table;
  const best = closest(name, cache.tables.keys(), 0.75);
  throw tableNotFound(
    EXPOSED_SCHEMA,
    name,
    best === null ? null : `Perhaps you meant the table '${EXPOSED_SCHEMA}.${best}'`,
  );
}

function checkWriteColumns(table: Table, names: Iterable<string>): void {
  for (const name of names) if (!table.columns.has(name)) throw columnNotFound(table.name, name);
}

function statement(text: string, params: Params, readOnly: boolean): Planned<Result> {
  return {
    readOnly,
    async run(client: pg.PoolClient) {
      const { rows } = await client.query<ResultRow>(text, params.values);
      return toResult(rows[0]);
    },
  };
}

function readPlan(name: string, parsed: ParsedQuery, cache: SchemaCacheData): Planned<Result> {
  const q = qualified(EXPOSED_SCHEMA, findTable(cache, name).name);
  const params = new Params();
  const inner = `select ${selectListSql(parsed.select, q)} from ${q}${
    whereSql(parsed.filters, q, params)
  }`;
  return statement(
    `select pg_catalog.count(_postgrest_t)::bigint as page_total, ${
      bodySql(false)
    }::text as body from (${inner}) _postgrest_t`,
    params,
    true,
  );
}

/**
 * `with pgrst_source as (<mutation> returning …)`, aggregated. With return=representation it
 * returns only the selected columns, so SELECT is needed on no others; otherwise only a count.
 */
function mutationPlan(
  ctx: RequestContext,
  table: Table,
  mutation: string,
  select: string[] | null,
  params: Params,
): Planned<Result> {
  const q = qualified(EXPOSED_SCHEMA, table.name);
  const representation = ctx.prefer.return === 'representation';
  const returning = !representation
    ? '1'
    : select === null
    ? `${q}.*`
    : [...new Set(select)].map((c) => `${q}.${ident(c)}`).join(', ');
  const inner = representation
    ? `select ${selectListSql(select, 'pgrst_source')} from pgrst_source`
    : 'select * from pgrst_source';
  return statement(
    `with pgrst_source as (${mutation} returning ${returning}) ` +
      `select pg_catalog.count(_postgrest_t)::bigint as page_total, ${
        representation ? bodySql(false) : 'null'
      }::text as body from (${inner}) _postgrest_t`,
    params,
    false,
  );
}

/** `from (select $n::json) pgrst_payload, lateral (...) pgrst_body`: the body as one typed row. */
function payloadSql(table: Table, body: JsonObjectBody, params: Params): string {
  const names = body.keys.map((c) => ident(c)).join(', ');
  const typed = body.keys.map((c) => `${ident(c)} ${table.columns.get(c)!}`).join(', ');
  return (
    `(select ${params.add(body.raw)}::json as json_data) pgrst_payload, ` +
    `lateral (select ${names} from json_to_record(pgrst_payload.json_data) as _(${typed})) pgrst_body`
  );
}

function insertPlan(
  ctx: RequestContext,
  name: string,
  parsed: ParsedQuery,
  body: JsonObjectBody,
  cache: SchemaCacheData,
): Planned<Result> {
  const table = findTable(cache, name);
  checkWriteColumns(table, body.keys);
  let onConflict = '';
  if (ctx.prefer.resolution) {
    // PostgREST falls back to the primary key; every upsert here names its conflict target.
    if (parsed.onConflict === null) {
      throw notImplemented(
        'an upsert without on_conflict is not supported by the local PostgREST stand-in',
      );
    }
    checkWriteColumns(table, parsed.onConflict);
    onConflict = ` on conflict (${parsed.onConflict.map((c) => ident(c)).join(', ')}) do nothing`;
  }
  const params = new Params();
  const columns = body.keys.map((c) => ident(c)).join(', ');
  const selected = body.keys.map((c) => `pgrst_body.${ident(c)}`).join(', ');
  const mutation = `insert into ${
    qualified(EXPOSED_SCHEMA, table.name)
  } (${columns}) select ${selected} from ${payloadSql(table, body, params)}${onConflict}`;
  return mutationPlan(ctx, table, mutation, parsed.select, params);
}

function updatePlan(
  ctx: RequestContext,
  name: string,
  parsed: ParsedQuery,
  body: JsonObjectBody,
  cache: SchemaCacheData,
): Planned<Result> {
  const table = findTable(cache, name);
  checkWriteColumns(table, body.keys);
  const q = qualified(EXPOSED_SCHEMA, table.name);
  const params = new Params();
  const assignments = body.keys.map((c) => `${ident(c)} = pgrst_body.${ident(c)}`).join(', ');
  const mutation = `update ${q} set ${assignments} from ${payloadSql(table, body, params)}${
    whereSql(parsed.filters, q, params)
  }`;
  return mutationPlan(ctx, table, mutation, parsed.select, params);
}

function deletePlan(
  ctx: RequestContext,
  name: string,
  parsed: ParsedQuery,
  cache: SchemaCacheData,
): Planned<Result> {
  const table = findTable(cache, name);
  const q = qualified(EXPOSED_SCHEMA, table.name);
  const params = new Params();
  return mutationPlan(
    ctx,
    table,
    `delete from ${q}${whereSql(parsed.filters, q, params)}`,
    parsed.select,
    params,
  );
}

export async function handleRead(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  const parsed = parseQuery(ctx.query);
  const result = await execute(
    deps,
    ctx,
    (cache) => readPlan(c.req.param('table')!, parsed, cache),
  );
  return respond(ctx, 200, result.body, { 'Content-Range': contentRange(0, result.pageTotal - 1) });
}

export async function handleInsert(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  // The body first: an array of rows comes with a `columns` parameter, and is refused as an array.
  const body = await readJsonObject(c, null);
  const parsed = parseQuery(ctx.query);
  const result = await execute(
    deps,
    ctx,
    (cache) => insertPlan(ctx, c.req.param('table')!, parsed, body, cache),
  );
  const headers = {
    'Content-Range': contentRange(1, 0),
    ...prefAppliedHeader(ctx, ['resolution', 'return']),
  };
  return respond(ctx, 201, ctx.prefer.return === 'representation' ? result.body : null, headers);
}

export async function handleUpdate(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  const parsed = parseQuery(ctx.query);
  const body = await readJsonObject(c, null);
  const result = await execute(
    deps,
    ctx,
    (cache) => updatePlan(ctx, c.req.param('table')!, parsed, body, cache),
  );
  return mutationResponse(ctx, result, contentRange(0, result.pageTotal - 1));
}

export async function handleDelete(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  const parsed = parseQuery(ctx.query);
  const result = await execute(
    deps,
    ctx,
    (cache) => deletePlan(ctx, c.req.param('table')!, parsed, cache),
  );
  return mutationResponse(ctx, result, contentRange(1, 0));
}

function mutationResponse(ctx: RequestContext, result: Result, range: string): Response {
  const representation = ctx.prefer.return === 'representation';
  const headers = { 'Content-Range': range, ...prefAppliedHeader(ctx, ['return']) };
  return respond(ctx, representation ? 200 : 204, representation ? result.body : null, headers);
}
