// PostgREST's query string, the part of it this project sends: select=* or select=a,b; filters
// column=eq.value; on_conflict=a,b on inserts. Everything else PostgREST understands is refused
// rather than ignored, without code of its own: another operator, not., or/and, order, limit or
// offset is a parameter that is no `eq.` filter (400 PGRST100), and an embedding, alias, cast or
// JSON path in select names a column PostgreSQL does not know (400 42703).
import { queryParamError } from './errors.ts';

export interface Filter {
  column: string;
  value: string;
}

export interface ParsedQuery {
  /** The selected columns; null for `*` (or no select at all). */
  select: string[] | null;
  filters: Filter[];
  onConflict: string[] | null;
}

function columnList(raw: string): string[] {
  return raw.split(',').map((c) => c.trim()).filter((c) => c !== '');
}

export function parseQuery(query: URLSearchParams): ParsedQuery {
  const filters: Filter[] = [];
  for (const [key, value] of query) {
    if (key === 'select' || key === 'on_conflict') continue;
    if (!value.startsWith('eq.')) {
      throw queryParamError(
        `"failed to parse filter (${value})"`,
        'the local PostgREST stand-in implements the eq operator only',
      );
    }
    filters.push({ column: key, value: value.slice('eq.'.length) });
  }
  const select = query.get('select');
  const onConflict = query.get('on_conflict');
  return {
    select: select === null || select.trim() === '' || select.trim() === '*'
      ? null
      : columnList(select),
    filters,
    onConflict: onConflict === null ? null : columnList(onConflict),
  };
}
