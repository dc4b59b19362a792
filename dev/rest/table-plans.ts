// The SQL of GET/POST/PATCH/DELETE /:table, planned against the schema cache as PostgREST 12
// builds it (QueryBuilder.hs, Statements.hs): one statement per request, whose select list is the
// row count (page_total) and the response body, aggregated to JSON by PostgreSQL; a write is
// `with pgrst_source as (<mutation> returning …)` read back through the same select. Names come
// from the schema cache only; values are bound parameters.
import type pg from 'pg';
import type { JsonObjectBody } from './body.ts';
import { columnNotFound, singularityError, tableNotFound } from './errors.ts';
import { closest } from './fuzzy.ts';
import type { ParsedQuery } from './query-params.ts';
import {
  bodySql,
  ident,
  limitSql,
  orderSql,
  Params,
  qualified,
  type Result,
  type ResultRow,
  toResult,
  whereSql,
} from './sql.ts';
import { selectionSql } from './embedding.ts';
import type { Planned } from './transaction.ts';
import { upsertSql } from './upsert.ts';
import { EXPOSED_SCHEMA, type RequestContext } from './request-context.ts';
import type { SchemaCacheData, Table } from './schema-cache.ts';

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

/**
 * One statement in the request's transaction. With Accept: vnd.pgrst.object+json a result that is
 * not exactly one row is PostgREST's failNotSingular: 406 PGRST116, thrown inside the transaction
 * so that a write is rolled back (PostgREST condemns the transaction), whatever return= says.
 */
function statement(
  ctx: RequestContext,
  text: string,
  params: Params,
  readOnly: boolean,
): Planned<Result> {
  return {
    readOnly,
    async run(client: pg.PoolClient) {
      const { rows } = await client.query<ResultRow>(text, params.values);
      const result = toResult(rows[0]);
      if (ctx.singular && result.pageTotal !== 1) throw singularityError(result.pageTotal);
      return result;
    },
  };
}

export function readPlan(
  ctx: RequestContext,
  name: string,
  parsed: ParsedQuery,
  cache: SchemaCacheData,
): Planned<Result> {
  const table = findTable(cache, name);
  const q = qualified(EXPOSED_SCHEMA, table.name);
  const params = new Params();
  const selection = selectionSql(parsed, table, cache, q);
  const inner = `select ${selection.list} from ${q}${selection.joins}${
    whereSql(parsed.filters, q, params)
  }${orderSql(parsed.order, q)}${limitSql(parsed.limit, params)}`;
  return statement(
    ctx,
    `select pg_catalog.count(_postgrest_t)::bigint as page_total, ${
      bodySql(ctx.singular ? 'object' : 'array')
    }::text as body from (${inner}) _postgrest_t`,
    params,
    true,
  );
}

/**
 * `with pgrst_source as (<mutation> returning …)`, aggregated. With return=representation it
 * returns only the selected columns (and the foreign keys its embeddings follow), so SELECT is
 * needed on no others; otherwise only a count. The rows are read back as PostgREST reads them,
 * from pgrst_source aliased as the table, so that embeddings join to them. `inserted` is the
 * upsert's count of inserted rows (upsert.ts), read once the statement has run.
 */
function mutationPlan(
  ctx: RequestContext,
  table: Table,
  mutation: string,
  parsed: ParsedQuery,
  cache: SchemaCacheData,
  params: Params,
  inserted = 'null',
): Planned<Result> {
  const q = qualified(EXPOSED_SCHEMA, table.name);
  const source = ident(table.name);
  const selection = selectionSql(parsed, table, cache, source);
  const representation = ctx.prefer.return === 'representation';
  const select = parsed.select;
  const returning = !representation
    ? '1'
    : select === null || select.includes('*')
    ? `${q}.*`
    : [...new Set([...select, ...selection.joinColumns])].map((c) => `${q}.${ident(c)}`).join(', ');
  const inner = representation
    ? `select ${selection.list} from pgrst_source as ${source}${selection.joins}`
    : 'select * from pgrst_source';
  return statement(
    ctx,
    `with pgrst_source as (${mutation} returning ${returning}) ` +
      `select pg_catalog.count(_postgrest_t)::bigint as page_total, ${
        representation ? bodySql(ctx.singular ? 'object' : 'array') : 'null'
      }::text as body, ${inserted} as inserted from (${inner}) _postgrest_t`,
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

export interface InsertResult extends Result {
  /** Whether the upsert had a conflict target, so that Preference-Applied names its resolution. */
  resolutionApplied: boolean;
}

export function insertPlan(
  ctx: RequestContext,
  name: string,
  parsed: ParsedQuery,
  body: JsonObjectBody,
  cache: SchemaCacheData,
): Planned<InsertResult> {
  const table = findTable(cache, name);
  checkWriteColumns(table, body.keys);
  if (ctx.prefer.resolution && parsed.onConflict !== null) {
    checkWriteColumns(table, parsed.onConflict);
  }
  const upsert = upsertSql(ctx.prefer.resolution, table, parsed.onConflict, body.keys);
  const params = new Params();
  const columns = body.keys.map((c) => ident(c)).join(', ');
  const selected = body.keys.map((c) => `pgrst_body.${ident(c)}`).join(', ');
  const mutation = `insert into ${
    qualified(EXPOSED_SCHEMA, table.name)
  } (${columns}) select ${selected} from ${
    payloadSql(table, body, params)
  }${upsert.where}${upsert.onConflict}`;
  const planned = mutationPlan(ctx, table, mutation, parsed, cache, params, upsert.inserted);
  return {
    readOnly: false,
    run: async (client) => ({ ...(await planned.run(client)), resolutionApplied: upsert.applied }),
  };
}

export function updatePlan(
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
  return mutationPlan(ctx, table, mutation, parsed, cache, params);
}

export function deletePlan(
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
    parsed,
    cache,
    params,
  );
}
