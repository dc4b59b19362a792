// SQL fragments shared by table and RPC requests. Identifiers only ever come from the schema cache
// or the request (always through escapeIdentifier); values are always bound parameters, sent
// untyped so that PostgreSQL reads them as the type of the column they are compared with, as
// PostgREST's "unknown" literals are.
import pg from 'pg';
import type { Filter, OrderTerm, Range, SelectItem } from './query-params.ts';

export const ident = (name: string): string => pg.escapeIdentifier(name);
export const qualified = (schema: string, name: string): string => `${ident(schema)}.${ident(name)}`;

export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const COMPARISONS: Record<string, string> = { eq: '=', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=', match: '~', imatch: '~*' };
const IS_SQL: Record<string, string> = { null: 'null', not_null: 'not null', true: 'true', false: 'false', unknown: 'unknown' };

/** PostgreSQL array literal of text elements, for `= any(...)`. */
function arrayLiteral(values: string[]): string {
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

export function filterSql(filter: Filter, column: string, params: Params): string {
  const { operator, value } = filter;
  let expression: string;
  if (operator === 'is') expression = `${column} is ${IS_SQL[value as string]}`;
  else if (operator === 'isdistinct') expression = `${column} is distinct from ${params.add(value)}`;
  else if (operator === 'in') expression = `${column} = any (${params.add(arrayLiteral(value as string[]))})`;
  // PostgREST lets `*` stand for `%` so that patterns survive URL encoding.
  else if (operator === 'like' || operator === 'ilike') expression = `${column} ${operator} ${params.add((value as string).replace(/\*/g, '%'))}`;
  else expression = `${column} ${COMPARISONS[operator]} ${params.add(value)}`;
  return filter.negated ? `not (${expression})` : expression;
}

export function whereSql(filters: Filter[], qualifier: string, params: Params): string {
  if (filters.length === 0) return '';
  return ` where ${filters.map((f) => filterSql(f, `${qualifier}.${ident(f.column)}`, params)).join(' and ')}`;
}

export function orderSql(order: OrderTerm[], qualifier: string): string {
  if (order.length === 0) return '';
  const terms = order.map(
    (t) => `${qualifier}.${ident(t.column)}${t.direction ? ` ${t.direction}` : ''}${t.nulls ? ` nulls ${t.nulls}` : ''}`,
  );
  return ` order by ${terms.join(', ')}`;
}

export function limitSql(range: Range, params: Params): string {
  if (range.limit === null && range.offset === 0) return '';
  return ` limit ${range.limit === null ? 'all' : params.add(range.limit)} offset ${params.add(range.offset)}`;
}

export function selectListSql(items: SelectItem[], qualifier: string): string {
  return items
    .map((item) => {
      if (item.column === '*') return `${qualifier}.*`;
      const column = `${qualifier}.${ident(item.column)}`;
      const expression = item.cast ? `cast(${column} as ${item.cast})` : column;
      // A cast keeps the column's name unless an alias is given, as in PostgREST.
      const name = item.alias ?? (item.cast ? item.column : undefined);
      return name === undefined ? expression : `${expression} as ${ident(name)}`;
    })
    .join(', ');
}

export interface BodyShape {
  /** One object instead of an array (vnd.pgrst.object, or a function returning one row). */
  single: boolean;
  /** Aggregate the pgrst_scalar column instead of whole rows (functions returning scalars). */
  scalar: boolean;
  stripNulls: boolean;
}

/** The JSON of the result, built by PostgreSQL itself so every type is rendered as PostgREST renders it. */
export function bodySql(shape: BodyShape): string {
  const element = shape.scalar ? '_postgrest_t.pgrst_scalar' : '_postgrest_t';
  const aggregate = `json_agg(${element})${shape.single ? '->0' : ''}`;
  const stripped = shape.stripNulls ? `json_strip_nulls(${aggregate})` : aggregate;
  return `coalesce(${stripped}, '${shape.single ? 'null' : '[]'}')`;
}

/**
 * What a function set through response.headers / response.status, read in the main statement
 * itself (as PostgREST does), after the aggregate has run the function.
 */
export const RESPONSE_GUCS_SQL =
  `pg_catalog.current_setting('response.headers', true) as response_headers, ` +
  `pg_catalog.current_setting('response.status', true) as response_status`;

export interface ResponseGucs {
  headers: string | null;
  status: string | null;
}

export interface ResultRow {
  total_result_set: string | null;
  page_total: string;
  body: string | null;
  response_headers: string | null;
  response_status: string | null;
}

export interface ReadResult {
  /** Rows the statement produced (before the single-object check). */
  pageTotal: number;
  /** Rows matching without limit/offset, when a count was asked for. */
  total: number | null;
  body: string;
  gucs: ResponseGucs;
}

export function toReadResult(row: ResultRow | undefined): ReadResult {
  return {
    pageTotal: Number(row?.page_total ?? 0),
    total: row?.total_result_set === null || row?.total_result_set === undefined ? null : Number(row.total_result_set),
    body: row?.body ?? '',
    gucs: { headers: row?.response_headers ?? null, status: row?.response_status ?? null },
  };
}
