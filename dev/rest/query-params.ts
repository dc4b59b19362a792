// PostgREST's query-string language, the subset this stand-in speaks: select=a,alias:b,c::text;
// filters col=[not.]op.value with eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, is,
// isdistinct, in; order=col.asc|desc[.nullsfirst|.nullslast]; limit; offset. Anything else
// PostgREST understands (embedding, JSON paths, or/and, range and full-text operators) is refused
// with PGRST127 rather than silently ignored.
import { notImplemented, queryParamError } from './errors.ts';

export interface SelectItem {
  /** A column name, or '*'. */
  column: string;
  alias?: string;
  cast?: string;
}

export const FILTER_OPERATORS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'like', 'ilike', 'match', 'imatch', 'is', 'isdistinct', 'in'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

// PostgREST operators this stand-in does not implement.
const UNSUPPORTED_OPERATORS = new Set(['cs', 'cd', 'ov', 'sl', 'sr', 'nxr', 'nxl', 'adj', 'fts', 'plfts', 'phfts', 'wfts']);

export interface Filter {
  column: string;
  negated: boolean;
  operator: FilterOperator;
  /** A list for `in`, otherwise the text after the operator. */
  value: string | string[];
}

export interface OrderTerm {
  column: string;
  direction: 'asc' | 'desc' | null;
  nulls: 'first' | 'last' | null;
}

export interface Range {
  offset: number;
  limit: number | null;
}

export interface ReadParams {
  select: SelectItem[];
  filters: Filter[];
  order: OrderTerm[];
  range: Range;
}

/** Query parameters that are never filters (nor RPC arguments). */
export const RESERVED_PARAMS = new Set(['select', 'columns', 'on_conflict', 'order', 'limit', 'offset', 'and', 'or']);

const IS_VALUES = new Set(['null', 'not_null', 'true', 'false', 'unknown']);
const CAST = /^[A-Za-z_][A-Za-z0-9_ ]*(\[\])?$/;

function unquote(name: string): string {
  return name.length >= 2 && name.startsWith('"') && name.endsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

/** Splits on commas outside double quotes and parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\\' && quoted && i + 1 < text.length) {
      current += ch + text[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')') depth--;
    if (ch === ',' && !quoted && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

export function parseSelect(raw: string | null): SelectItem[] {
  if (raw === null || raw.trim() === '') return [{ column: '*' }];
  return splitTopLevel(raw).map((item) => {
    const text = item.trim();
    if (text === '') throw queryParamError('"failed to parse select parameter"', `empty item in select=${raw}`);
    if (text.includes('(') || text.startsWith('...') || text.includes('->')) {
      throw notImplemented(`select item '${text}': embedding, aggregates, spreads and JSON paths are not supported by the local PostgREST stand-in`);
    }
    let rest = text;
    let alias: string | undefined;
    const aliasMatch = /^("(?:[^"]|"")+"|[^:]+):(?!:)(.*)$/.exec(rest);
    if (aliasMatch) {
      alias = unquote(aliasMatch[1]!.trim());
      rest = aliasMatch[2]!.trim();
    }
    let cast: string | undefined;
    const castIndex = rest.lastIndexOf('::');
    if (castIndex > 0) {
      cast = rest.slice(castIndex + 2).trim();
      rest = rest.slice(0, castIndex).trim();
      if (!CAST.test(cast)) throw queryParamError('"failed to parse select parameter"', `invalid cast '${cast}'`);
    }
    const column = unquote(rest);
    if (column === '') throw queryParamError('"failed to parse select parameter"', `empty column in '${text}'`);
    return { column, ...(alias !== undefined ? { alias } : {}), ...(cast !== undefined ? { cast } : {}) };
  });
}

function parseInList(list: string): string[] {
  if (!list.startsWith('(') || !list.endsWith(')')) {
    throw queryParamError(`"failed to parse filter (in.${list})"`, 'in expects a parenthesised list: in.(a,b,c)');
  }
  const inner = list.slice(1, -1);
  if (inner === '') return [];
  return splitTopLevel(inner).map((item) => {
    const value = item.trim();
    return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
  });
}

/**
 * `[not.]op.value`, or null when the value has no operator (PostgREST then treats it as an RPC
 * argument on GET /rpc, and rejects it on a table).
 */
export function parseFilterValue(column: string, raw: string): Filter | null {
  let rest = raw;
  let negated = false;
  if (rest.startsWith('not.')) {
    negated = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf('.');
  const opText = (dot === -1 ? rest : rest.slice(0, dot)).replace(/\((any|all)\)$/, '');
  const value = dot === -1 ? '' : rest.slice(dot + 1);
  if (UNSUPPORTED_OPERATORS.has(opText) || /^(like|ilike|eq|gt|gte|lt|lte|match|imatch)\((any|all)\)/.test(rest)) {
    throw notImplemented(`operator '${rest.slice(0, dot === -1 ? undefined : dot)}' is not supported by the local PostgREST stand-in`);
  }
  if (dot === -1 || !(FILTER_OPERATORS as readonly string[]).includes(opText)) return null;
  const operator = opText as FilterOperator;
  if (operator === 'is') {
    const isValue = value.toLowerCase();
    if (!IS_VALUES.has(isValue)) {
      throw queryParamError(`"failed to parse filter (${raw})"`, 'is accepts null, not_null, true, false or unknown');
    }
    return { column, negated, operator, value: isValue };
  }
  if (operator === 'in') return { column, negated, operator, value: parseInList(value) };
  return { column, negated, operator, value };
}

function parseOrder(raw: string): OrderTerm[] {
  return splitTopLevel(raw).map((term) => {
    const parts = term.trim().split('.');
    const column = unquote(parts[0] ?? '');
    let direction: OrderTerm['direction'] = null;
    let nulls: OrderTerm['nulls'] = null;
    for (const modifier of parts.slice(1)) {
      if (modifier === 'asc' || modifier === 'desc') direction = modifier;
      else if (modifier === 'nullsfirst') nulls = 'first';
      else if (modifier === 'nullslast') nulls = 'last';
      else throw queryParamError(`"failed to parse order (${raw})"`, `unknown order modifier '${modifier}' (asc, desc, nullsfirst, nullslast)`);
    }
    if (column === '' || column.includes('(') || column.includes('->')) {
      throw queryParamError(`"failed to parse order (${raw})"`, `invalid order term '${term}'`);
    }
    return { column, direction, nulls };
  });
}

function parseCount(name: string, raw: string | null): number | null {
  if (raw === null) return null;
  if (!/^\d+$/.test(raw)) throw queryParamError(`"failed to parse ${name} parameter (${raw})"`, `${name} must be a non-negative integer`);
  return Number(raw);
}

export interface ParsedQuery extends ReadParams {
  /** Parameters without an operator: RPC arguments on GET /rpc. */
  plain: [string, string][];
}

/**
 * Splits a query string into select, filters, order and range. Embedded (`rel.col`) targets and
 * or/and trees are refused; `plain` collects key=value pairs that carry no operator.
 */
export function parseQuery(query: URLSearchParams): ParsedQuery {
  const filters: Filter[] = [];
  const plain: [string, string][] = [];
  for (const [key, value] of query) {
    if (key === 'and' || key === 'or' || key.endsWith('.and') || key.endsWith('.or') || key.endsWith('.order') || key.endsWith('.limit') || key.endsWith('.offset')) {
      throw notImplemented(`'${key}': logical trees and embedded-resource modifiers are not supported by the local PostgREST stand-in`);
    }
    if (RESERVED_PARAMS.has(key)) continue;
    const filter = parseFilterValue(unquote(key), value);
    if (filter) filters.push(filter);
    else plain.push([key, value]);
  }
  const orderRaw = query.get('order');
  return {
    select: parseSelect(query.get('select')),
    filters,
    plain,
    order: orderRaw === null || orderRaw === '' ? [] : parseOrder(orderRaw),
    range: { offset: parseCount('offset', query.get('offset')) ?? 0, limit: parseCount('limit', query.get('limit')) },
  };
}

/** For tables every non-reserved parameter must be a filter. */
export function requireFilters(parsed: ParsedQuery): void {
  const [first] = parsed.plain;
  if (first) {
    throw queryParamError(
      `"failed to parse filter (${first[1]})"`,
      `expected an operator (${FILTER_OPERATORS.join(', ')}), optionally after not.`,
    );
  }
}
