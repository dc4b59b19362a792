// GET/POST/PATCH/DELETE /:table, as PostgREST builds them: the table and every column named in
// select, filters, order, the body, `columns` and `on_conflict` must exist in the schema cache; the
// body goes to PostgreSQL as one JSON parameter read with json_to_record(set) typed by the table's
// columns; the response JSON is aggregated by PostgreSQL.
import type { Context } from 'hono';
import type pg from 'pg';
import { isPlainObject, readJsonBody, type JsonBody } from './body.ts';
import {
  columnNotFound,
  invalidBody,
  notImplemented,
  rangeNotSatisfiable,
  singularityError,
  tableNotFound,
  undefinedColumn,
} from './errors.ts';
import { closest } from './fuzzy.ts';
import { parseQuery, requireFilters, type ParsedQuery, type SelectItem } from './query-params.ts';
import { contentRange, prefAppliedHeader, rangeStatus, respond } from './respond.ts';
import { bodySql, ident, limitSql, orderSql, Params, qualified, RESPONSE_GUCS_SQL, selectListSql, toReadResult, whereSql, type ReadResult, type ResultRow } from './sql.ts';
import { execute, type Planned } from './transaction.ts';
import { requestContext, type RequestContext } from './request-context.ts';
import { qualifiedKey, type SchemaCacheData, type Table } from './schema-cache.ts';
import type { RestDeps } from './deps.ts';

interface MutationResult extends ReadResult {
  /** Rows actually inserted by a merge-duplicates upsert (updated ones excluded). */
  inserted: number | null;
}

function findTable(cache: SchemaCacheData, schema: string, name: string): Table {
  const table = cache.tables.get(qualifiedKey(schema, name));
  if (table) return table;
  const names = [...cache.tables.values()].filter((t) => t.schema === schema).map((t) => t.name);
  const best = closest(name, names, 0.75);
  throw tableNotFound(schema, name, best === null ? null : `Perhaps you meant the table '${schema}.${best}'`);
}

/** Columns read through select, filters and order: PostgreSQL's 42703 when unknown. */
function checkReadColumns(table: Table, parsed: Pick<ParsedQuery, 'select' | 'filters' | 'order'>): void {
  const names = [
    ...parsed.select.filter((s) => s.column !== '*').map((s) => s.column),
    ...parsed.filters.map((f) => f.column),
    ...parsed.order.map((o) => o.column),
  ];
  for (const name of names) if (!table.columns.has(name)) throw undefinedColumn(table.name, name);
}

function checkWriteColumns(table: Table, names: Iterable<string>): void {
  for (const name of names) if (!table.columns.has(name)) throw columnNotFound(table.name, name);
}

function singularCheck(ctx: RequestContext, result: ReadResult): void {
  if (ctx.media.singular && result.pageTotal !== 1) throw singularityError(result.pageTotal);
}

function readPlan(ctx: RequestContext, name: string, parsed: ParsedQuery, cache: SchemaCacheData): Planned<ReadResult> {
  const table = findTable(cache, ctx.schema, name);
  checkReadColumns(table, parsed);
  const q = qualified(table.schema, table.name);
  const params = new Params();
  const where = whereSql(parsed.filters, q, params);
  const limit = limitSql(parsed.range, params);
  const inner = `select ${selectListSql(parsed.select, q)} from ${q}${where}${orderSql(parsed.order, q)}${limit}`;
  const page = 'pg_catalog.count(_postgrest_t)';
  // Without limit/offset the page is the whole result, so the count comes for free.
  const total = !ctx.prefer.count ? 'null' : limit === '' ? page : `(select pg_catalog.count(*) from (select 1 from ${q}${where}) pgrst_count)`;
  const body = bodySql({ single: ctx.media.singular, scalar: false, stripNulls: ctx.media.stripNulls });
  const text = `select ${total}::bigint as total_result_set, ${page}::bigint as page_total, ${body}::text as body, ${RESPONSE_GUCS_SQL} from (${inner}) _postgrest_t`;
  return {
    readOnly: true,
    async run(client) {
      const { rows } = await client.query<ResultRow>(text, params.values);
      const result = toReadResult(rows[0]);
      singularCheck(ctx, result);
      return { value: result, gucs: result.gucs };
    },
  };
}

/** `returning` for a mutation: only the columns the response selects, so SELECT is needed on no others. */
function returningSql(table: Table, ctx: RequestContext, select: SelectItem[]): string {
  const q = qualified(table.schema, table.name);
  if (ctx.prefer.return !== 'representation') return 'returning 1';
  if (select.some((s) => s.column === '*')) return `returning ${q}.*`;
  return `returning ${[...new Set(select.map((s) => s.column))].map((c) => `${q}.${ident(c)}`).join(', ')}`;
}

/** Runs `with pgrst_source as (<mutation>)` and aggregates what it returned. */
function mutationStatement(ctx: RequestContext, mutation: string, select: SelectItem[], inserted: string): string {
  const representation = ctx.prefer.return === 'representation';
  const inner = representation ? `select ${selectListSql(select, 'pgrst_source')} from pgrst_source` : 'select * from pgrst_source';
  const body = representation ? bodySql({ single: ctx.media.singular, scalar: false, stripNulls: ctx.media.stripNulls }) : 'null';
  return (
    `with pgrst_source as (${mutation}) ` +
    `select null::bigint as total_result_set, pg_catalog.count(_postgrest_t)::bigint as page_total, ${body}::text as body, ` +
    `${inserted} as inserted, ${RESPONSE_GUCS_SQL} from (${inner}) _postgrest_t`
  );
}

function runMutation(ctx: RequestContext, text: string, params: Params): Planned<MutationResult> {
  return {
    readOnly: false,
    async run(client: pg.PoolClient) {
      const { rows } = await client.query<ResultRow & { inserted: number | null }>(text, params.values);
      const result = toReadResult(rows[0]);
      singularCheck(ctx, result);
      return { value: { ...result, inserted: rows[0]?.inserted ?? null }, gucs: result.gucs };
    },
  };
}

/** The columns a body writes: `columns=` when given, else the keys, which must be the same in every element. */
function bodyColumns(body: JsonBody, columnsParam: string | null): string[] {
  if (columnsParam !== null) {
    return columnsParam
      .split(',')
      .map((c) => c.trim().replace(/^"(.*)"$/, '$1'))
      .filter((c) => c !== '');
  }
  const { value } = body;
  if (isPlainObject(value)) return Object.keys(value);
  if (!Array.isArray(value)) throw invalidBody('Empty or invalid json', 'The body must be a JSON object or an array of objects.');
  const [first] = value;
  if (first === undefined) return [];
  if (!isPlainObject(first)) throw invalidBody('All object keys must match');
  const keys = Object.keys(first).sort();
  for (const element of value) {
    if (!isPlainObject(element) || Object.keys(element).sort().join('\u0000') !== keys.join('\u0000')) {
      throw invalidBody('All object keys must match');
    }
  }
  return Object.keys(first);
}

/** `from (select $n::json) pgrst_payload, lateral (...) pgrst_body`: the body as typed rows. */
function payloadSql(table: Table, body: JsonBody, columns: string[], params: Params, onlyFirst: boolean): string {
  const payload = `(select ${params.add(body.raw)}::json as json_data) pgrst_payload`;
  const isObject = isPlainObject(body.value);
  if (columns.length === 0) {
    // `{}` inserts one row of defaults, `[{}, {}]` one per element.
    const rows = isObject ? '(values (1)) _' : 'json_array_elements(pgrst_payload.json_data) _';
    return `${payload}, lateral (select from ${rows}) pgrst_body`;
  }
  const names = columns.map((c) => ident(c)).join(', ');
  const typed = columns.map((c) => `${ident(c)} ${table.columns.get(c)!.type}`).join(', ');
  const recordFunction = isObject ? 'json_to_record' : 'json_to_recordset';
  return `${payload}, lateral (select ${names} from ${recordFunction}(pgrst_payload.json_data) as _(${typed})${onlyFirst ? ' limit 1' : ''}) pgrst_body`;
}

// PostgREST counts the rows an upsert really inserted with a transaction-local counter: +1 per
// candidate row, -1 per row that hit a conflict and was updated instead.
const INSERTED_COUNTER = (op: '+' | '-', never: string) =>
  `set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) ${op} 1)::text, true) <> '${never}'`;

function insertPlan(ctx: RequestContext, name: string, parsed: ParsedQuery, body: JsonBody, cache: SchemaCacheData): Planned<MutationResult> {
  const table = findTable(cache, ctx.schema, name);
  checkReadColumns(table, { select: parsed.select, filters: [], order: [] });
  const columns = bodyColumns(body, ctx.query.get('columns'));
  checkWriteColumns(table, columns);
  // Only with `columns=` can an element lack a column it writes; without it the body's keys are the
  // columns, so missing=default and missing=null insert the same rows.
  if (ctx.prefer.missing === 'default' && ctx.query.get('columns') !== null) {
    throw notImplemented('Prefer: missing=default with columns= is not supported by the local PostgREST stand-in');
  }
  const onConflictParam = ctx.query.get('on_conflict');
  const conflictColumns = onConflictParam !== null ? onConflictParam.split(',').map((c) => c.trim()).filter((c) => c !== '') : table.primaryKey;
  checkWriteColumns(table, conflictColumns);

  const q = qualified(table.schema, table.name);
  const params = new Params();
  const merge = ctx.prefer.resolution === 'merge-duplicates' && conflictColumns.length > 0;
  let onConflict = '';
  if (ctx.prefer.resolution && conflictColumns.length > 0) {
    const target = conflictColumns.map((c) => ident(c)).join(', ');
    onConflict =
      !merge || columns.length === 0
        ? ` on conflict (${target}) do nothing`
        : ` on conflict (${target}) do update set ${columns.map((c) => `${ident(c)} = excluded.${ident(c)}`).join(', ')} where ${INSERTED_COUNTER('-', '-1')}`;
  }
  const columnList = columns.length === 0 ? '' : ` (${columns.map((c) => ident(c)).join(', ')})`;
  const selected = columns.map((c) => `pgrst_body.${ident(c)}`).join(', ');
  const mutation =
    `insert into ${q}${columnList} select ${selected} from ${payloadSql(table, body, columns, params, false)}` +
    `${merge ? ` where ${INSERTED_COUNTER('+', '0')}` : ''}${onConflict} ${returningSql(table, ctx, parsed.select)}`;
  const inserted = merge ? `nullif(current_setting('pgrst.inserted', true), '')::int` : 'null::int';
  return runMutation(ctx, mutationStatement(ctx, mutation, parsed.select, inserted), params);
}

function rejectLimitedMutation(parsed: ParsedQuery): void {
  if (parsed.order.length > 0 || parsed.range.limit !== null || parsed.range.offset !== 0) {
    throw notImplemented('limit, offset and order on PATCH and DELETE are not supported by the local PostgREST stand-in');
  }
}

function updatePlan(ctx: RequestContext, name: string, parsed: ParsedQuery, body: JsonBody, cache: SchemaCacheData): Planned<MutationResult> {
  const table = findTable(cache, ctx.schema, name);
  checkReadColumns(table, parsed);
  const columns = bodyColumns(body, ctx.query.get('columns'));
  checkWriteColumns(table, columns);

  const q = qualified(table.schema, table.name);
  const params = new Params();
  let mutation: string;
  if (columns.length === 0) {
    // Nothing to set: PostgREST updates nothing and returns nothing.
    const returned = returningSql(table, ctx, parsed.select).replace(/^returning /, '');
    mutation = `select ${returned} from ${q} where false`;
  } else {
    const assignments = columns.map((c) => `${ident(c)} = pgrst_body.${ident(c)}`).join(', ');
    const from = payloadSql(table, body, columns, params, true);
    mutation = `update ${q} set ${assignments} from ${from}${whereSql(parsed.filters, q, params)} ${returningSql(table, ctx, parsed.select)}`;
  }
  return runMutation(ctx, mutationStatement(ctx, mutation, parsed.select, 'null::int'), params);
}

function deletePlan(ctx: RequestContext, name: string, parsed: ParsedQuery, cache: SchemaCacheData): Planned<MutationResult> {
  const table = findTable(cache, ctx.schema, name);
  checkReadColumns(table, parsed);
  const q = qualified(table.schema, table.name);
  const params = new Params();
  const mutation = `delete from ${q}${whereSql(parsed.filters, q, params)} ${returningSql(table, ctx, parsed.select)}`;
  return runMutation(ctx, mutationStatement(ctx, mutation, parsed.select, 'null::int'), params);
}

export async function handleTable(c: Context, deps: RestDeps): Promise<Response> {
  const name = c.req.param('table')!;
  const ctx = await requestContext(c, deps, `/${name}`);
  const parsed = parseQuery(ctx.query);
  requireFilters(parsed);
  const counted = ctx.prefer.count !== undefined;

  if (ctx.method === 'GET' || ctx.method === 'HEAD') {
    const outcome = await execute(deps, ctx, (cache) => readPlan(ctx, name, parsed, cache));
    const result = outcome.value;
    const lower = parsed.range.offset;
    const upper = lower + result.pageTotal - 1;
    const status = rangeStatus(lower, upper, result.total);
    if (status === 416) throw rangeNotSatisfiable(lower, result.total ?? 0);
    const headers = { 'Content-Range': contentRange(lower, upper, result.total), ...prefAppliedHeader(ctx, ['count']) };
    return respond(ctx, outcome, status, result.body, headers);
  }

  const representation = ctx.prefer.return === 'representation';
  if (ctx.method === 'POST') {
    const body = await readJsonBody(c, null);
    const outcome = await execute(deps, ctx, (cache) => insertPlan(ctx, name, parsed, body, cache));
    const result = outcome.value;
    const status = result.inserted !== null && result.inserted <= 0 ? 200 : 201;
    const headers = {
      'Content-Range': contentRange(1, 0, counted ? result.pageTotal : null),
      ...prefAppliedHeader(ctx, ['resolution', 'return', 'count']),
    };
    return respond(ctx, outcome, status, representation ? result.body : null, headers);
  }

  rejectLimitedMutation(parsed);
  if (ctx.method === 'PATCH') {
    const body = await readJsonBody(c, null);
    const outcome = await execute(deps, ctx, (cache) => updatePlan(ctx, name, parsed, body, cache));
    const result = outcome.value;
    const headers = {
      'Content-Range': contentRange(0, result.pageTotal - 1, counted ? result.pageTotal : null),
      ...prefAppliedHeader(ctx, ['return', 'count']),
    };
    return respond(ctx, outcome, representation ? 200 : 204, representation ? result.body : null, headers);
  }

  const outcome = await execute(deps, ctx, (cache) => deletePlan(ctx, name, parsed, cache));
  const result = outcome.value;
  const headers = {
    'Content-Range': contentRange(1, 0, counted ? result.pageTotal : null),
    ...prefAppliedHeader(ctx, ['return', 'count']),
  };
  return respond(ctx, outcome, representation ? 200 : 204, representation ? result.body : null, headers);
}
