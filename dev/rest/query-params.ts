// PostgREST's query string, the part of it this project and a Supabase quickstart app send:
//   select=*, select=a,b, and one level of to-one embedding: select=a,rel(b,c) or select=*,rel(*)
//     (rel named by the referenced table, or the foreign key's column or constraint name);
//   filters column=eq.value;
//   order=a.asc,b.desc.nullslast (asc|desc, then nullsfirst|nullslast, each optional) and
//     limit=N (a decimal integer), on reads only;
//   on_conflict=a,b on inserts.
// Everything else PostgREST understands is refused (400 PGRST100) rather than ignored: another
// operator, not., or/and, offset, columns; an alias, cast, JSON path, aggregate, spread, hint
// (rel!fk), quoted name, empty or nested embedding in select; a term of order that is an
// embedded column or a JSON path; a filter, order or limit scoped to an embedded resource.
import { queryParamError, rangeNotSatisfiable } from './errors.ts';

export interface Filter {
  column: string;
  value: string;
}

/** `rel(a,b)` in select: the resource named `relation`, with its columns (`*` for all). */
export interface Embed {
  relation: string;
  columns: string[];
}

export interface OrderTerm {
  column: string;
  direction: 'asc' | 'desc' | null;
  nulls: 'nullsfirst' | 'nullslast' | null;
}

export interface ParsedQuery {
  /** The selected columns of the table, `*` among them for all; null when select names none. */
  select: string[] | null;
  /** To-one resources embedded in select; their JSON objects follow the columns, as in PostgREST. */
  embeds: Embed[];
  filters: Filter[];
  onConflict: string[] | null;
  order: OrderTerm[];
  /** A non-negative decimal integer, as given. */
  limit: string | null;
}

const STANDIN = 'the local PostgREST stand-in';

function columnList(raw: string): string[] {
  return raw.split(',').map((c) => c.trim()).filter((c) => c !== '');
}

// PostgREST's field name: identifier characters (letters, digits, _, $, space) in parts joined by
// single dashes (a dash before `>` starts a JSON path instead).
const FIELD_NAME = /^[\p{L}0-9_ $]+(?:-[\p{L}0-9_ $]+)*$/u;

/** Why a select item or order term is not a plain column name, when it uses a PostgREST feature. */
function unsupportedFeature(item: string): string | null {
  if (item.includes('->')) return 'a JSON path';
  if (item.includes('::')) return 'a cast';
  if (item.includes(':')) return 'an alias';
  if (item.startsWith('...')) return 'a spread embedding';
  if (item.includes('!')) return 'an embedding hint or join type';
  if (item.includes('"')) return 'a quoted name';
  if (item.includes('.')) return 'an aggregate';
  return null;
}

function checkFieldName(name: string, parseError: (details: string) => Error): string {
  const trimmed = name.trim();
  const feature = unsupportedFeature(trimmed);
  if (feature !== null) throw parseError(`${feature} is not supported by ${STANDIN}`);
  if (!FIELD_NAME.test(trimmed)) {
    throw parseError(`expecting field name (* or [a..z0..9_$]), found '${trimmed}'`);
  }
  return trimmed;
}

/** Splits on the commas that are not inside parentheses; unbalanced parentheses are a parse error. */
function splitTopLevel(raw: string, parseError: (details: string) => Error): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch === '(') depth++;
    else if (ch === ')' && --depth < 0) throw parseError('unexpected ")"');
    else if (ch === ',' && depth === 0) {
      items.push(raw.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw parseError('expecting ")"');
  items.push(raw.slice(start));
  return items;
}

function parseSelect(raw: string): Pick<ParsedQuery, 'select' | 'embeds'> {
  if (raw.trim() === '' || raw.trim() === '*') return { select: null, embeds: [] };
  const parseError = (details: string) =>
    queryParamError(`"failed to parse select parameter (${raw})"`, details);
  const select: string[] = [];
  const embeds: Embed[] = [];
  for (const rawItem of splitTopLevel(raw, parseError)) {
    const item = rawItem.trim();
    if (item === '') throw parseError('expecting field name (* or [a..z0..9_$])');
    if (item === '*') {
      select.push('*');
      continue;
    }
    const open = item.indexOf('(');
    if (open === -1) {
      select.push(checkFieldName(item, parseError));
      continue;
    }
    if (!item.endsWith(')')) throw parseError(`unexpected text after ")" in '${item}'`);
    const relation = checkFieldName(item.slice(0, open), parseError);
    const inner = item.slice(open + 1, -1);
    if (relation === 'count') throw parseError(`aggregates are not supported by ${STANDIN}`);
    if (inner.includes('(')) {
      throw parseError(`a nested embedding or an aggregate is not supported by ${STANDIN}`);
    }
    if (inner.trim() === '') {
      throw parseError(`an empty embedding, ${relation}(), is not supported by ${STANDIN}`);
    }
    const columns = inner.split(',').map((c) =>
      c.trim() === '*' ? '*' : checkFieldName(c, parseError)
    );
    embeds.push({ relation, columns });
  }
  return { select, embeds };
}

function parseOrder(raw: string): OrderTerm[] {
  const parseError = (details: string) =>
    queryParamError(`"failed to parse order (${raw})"`, details);
  return raw.split(',').map((term): OrderTerm => {
    if (term.includes('(')) {
      throw parseError(`ordering by an embedded resource's column is not supported by ${STANDIN}`);
    }
    const feature = unsupportedFeature(term.replaceAll('.', ''));
    if (feature !== null) throw parseError(`${feature} is not supported by ${STANDIN}`);
    const [name = '', ...modifiers] = term.split('.');
    const column = checkFieldName(name, parseError);
    const order: OrderTerm = { column, direction: null, nulls: null };
    const rest = modifiers.map((m) => m.trim());
    if (rest[0] === 'asc' || rest[0] === 'desc') order.direction = rest.shift() as 'asc' | 'desc';
    if (rest[0] === 'nullsfirst' || rest[0] === 'nullslast') {
      order.nulls = rest.shift() as 'nullsfirst' | 'nullslast';
    }
    if (rest.length > 0) {
      throw parseError(
        `unexpected "${rest[0]}" expecting "asc", "desc", "nullsfirst" or "nullslast"`,
      );
    }
    return order;
  });
}

function parseLimit(raw: string): string {
  const limit = raw.trim();
  if (!/^-?[0-9]+$/.test(limit)) {
    // PostgREST ignores a limit it cannot read as an integer; this stand-in says so instead.
    throw queryParamError(
      `"failed to parse limit (${raw})"`,
      `a limit that is not a decimal integer is not supported by ${STANDIN}`,
    );
  }
  if (BigInt(limit) < 0n) {
    throw rangeNotSatisfiable('Limit should be greater than or equal to zero.');
  }
  return limit;
}

/** Parameters whose last dotted part PostgREST reserves (on the table or on an embedded resource). */
const RESERVED_EMBEDDABLE = ['order', 'limit', 'offset', 'and', 'or'];

/**
 * `read` is a GET (or HEAD): only there are order and limit served; a write that sends them is
 * refused, as before (PostgREST would order or limit the rows a PATCH or DELETE affects).
 */
export function parseQuery(query: URLSearchParams, method: 'read' | 'write'): ParsedQuery {
  const filters: Filter[] = [];
  for (const [key, value] of query) {
    if (key === 'select' || key === 'on_conflict') continue;
    const last = key.split('.').at(-1)!;
    if (key === 'order' || key === 'limit') {
      if (method === 'read' && query.getAll(key).length === 1) continue;
      throw queryParamError(
        `"failed to parse ${key} (${value})"`,
        method === 'read'
          ? `a repeated ${key} parameter is not supported by ${STANDIN}`
          : `${key} on inserts, updates and deletes is not supported by ${STANDIN}`,
      );
    }
    if (RESERVED_EMBEDDABLE.includes(last) || key === 'columns') {
      throw queryParamError(
        `"failed to parse ${key} (${value})"`,
        `the ${key} parameter is not supported by ${STANDIN}`,
      );
    }
    if (key.includes('.')) {
      throw queryParamError(
        `"failed to parse filter (${key})"`,
        `a filter on an embedded resource is not supported by ${STANDIN}`,
      );
    }
    if (!value.startsWith('eq.')) {
      throw queryParamError(
        `"failed to parse filter (${value})"`,
        `${STANDIN} implements the eq operator only`,
      );
    }
    filters.push({ column: key, value: value.slice('eq.'.length) });
  }
  const select = query.get('select');
  const onConflict = query.get('on_conflict');
  const order = query.get('order');
  const limit = query.get('limit');
  return {
    ...(select === null ? { select: null, embeds: [] } : parseSelect(select)),
    filters,
    onConflict: onConflict === null ? null : columnList(onConflict),
    order: order === null ? [] : parseOrder(order),
    limit: limit === null ? null : parseLimit(limit),
  };
}
