// SQL fragments shared by table and RPC requests. Identifiers only ever come from the schema cache
// or the request (always through escapeIdentifier); values are always bound parameters, sent
// untyped so that PostgreSQL reads them as the type of the column they are compared with, as
// PostgREST's "unknown" literals are.
import pg from 'pg';
import type { Filter, OrderTerm } from './query-params.ts';

export const ident = (name: string): string => pg.escapeIdentifier(name);
export const qualified = (schema: string, name: string): string =>
  `${ident(schema)}.${ident(name)}`;

export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

export function whereSql(filters: Filter[], qualifier: string, params: Params): string {
  if (filters.length === 0) return '';
  return ` where ${
    filters.map((f) => `${qualifier}.${ident(f.column)} = ${params.add(f.value)}`).join(' and ')
  }`;
}

/** A column of the select list, `*` for all of them. */
export function columnSql(column: string, qualifier: string): string {
  return column === '*' ? `${qualifier}.*` : `${qualifier}.${ident(column)}`;
}

/** The select list: every column for no select (null), else the named ones (`*` among them). */
export function selectListSql(columns: string[] | null, qualifier: string): string {
  return columns === null
    ? `${qualifier}.*`
    : columns.map((c) => columnSql(c, qualifier)).join(', ');
}

/** ` order by …`, as PostgREST writes it: a direction or NULLS clause only when one was given. */
export function orderSql(order: OrderTerm[], qualifier: string): string {
  if (order.length === 0) return '';
  return ` order by ${
    order.map((o) =>
      [
        `${qualifier}.${ident(o.column)}`,
        ...(o.direction === null ? [] : [o.direction]),
        ...(o.nulls === null ? [] : [o.nulls === 'nullsfirst' ? 'nulls first' : 'nulls last']),
      ].join(' ')
    ).join(', ')
  }`;
}

/** ` limit $n offset 0`: the limit a bound parameter, typed by PostgreSQL (bigint) as PostgREST's is. */
export function limitSql(limit: string | null, params: Params): string {
  return limit === null ? '' : ` limit ${params.add(limit)} offset 0`;
}

/**
 * The JSON of the result, built by PostgreSQL itself so every type is rendered as PostgREST renders
 * it (SqlFragment.hs asJsonF, asJsonSingleF): an array of the _postgrest_t rows, the first of them
 * alone (`object`, for Accept: application/vnd.pgrst.object+json; the row count is checked apart),
 * or (`scalar`) the one value a function returned.
 */
export function bodySql(kind: 'array' | 'object' | 'scalar'): string {
  if (kind === 'scalar') return `coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')`;
  if (kind === 'object') return `coalesce(json_agg(_postgrest_t)->0, 'null')`;
  return `coalesce(json_agg(_postgrest_t), '[]')`;
}

export interface ResultRow {
  page_total: string;
  body: string | null;
  inserted?: number | null;
}

export interface Result {
  /** Rows the statement produced. */
  pageTotal: number;
  body: string;
  /** Of an upsert that merges duplicates: the rows it inserted rather than updated. */
  inserted: number | null;
}

export function toResult(row: ResultRow | undefined): Result {
  return {
    pageTotal: Number(row?.page_total ?? 0),
    body: row?.body ?? '',
    inserted: row?.inserted ?? null,
  };
}
