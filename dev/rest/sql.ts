// SQL fragments shared by table and RPC requests. Identifiers only ever come from the schema cache
// or the request (always through escapeIdentifier); values are always bound parameters, sent
// untyped so that PostgreSQL reads them as the type of the column they are compared with, as
// PostgREST's "unknown" literals are.
import pg from 'pg';
import type { Filter } from './query-params.ts';

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

/** The select list: every column for `*` (null), else the named ones. */
export function selectListSql(columns: string[] | null, qualifier: string): string {
  return columns === null
    ? `${qualifier}.*`
    : columns.map((c) => `${qualifier}.${ident(c)}`).join(', ');
}

/**
 * The JSON of the result, built by PostgreSQL itself so every type is rendered as PostgREST renders
 * it: an array of the _postgrest_t rows, or (`scalar`) the one value a function returned.
 */
export function bodySql(scalar: boolean): string {
  return scalar
    ? `coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')`
    : `coalesce(json_agg(_postgrest_t), '[]')`;
}

export interface ResultRow {
  page_total: string;
  body: string | null;
}

export interface Result {
  /** Rows the statement produced. */
  pageTotal: number;
  body: string;
}

export function toResult(row: ResultRow | undefined): Result {
  return { pageTotal: Number(row?.page_total ?? 0), body: row?.body ?? '' };
}
