// PostgREST 12's upsert, a POST with Prefer: resolution=merge-duplicates (supabase-js .upsert())
// or ignore-duplicates, as QueryBuilder.hs (mutatePlanToQuery Insert) writes it for one object:
//   INSERT INTO t (cols) SELECT … FROM <payload> WHERE <count the proposed row>
//   ON CONFLICT (target) DO UPDATE SET col = EXCLUDED.col, … WHERE <uncount it>   (merge)
//   ON CONFLICT (target) DO NOTHING                                                (ignore)
// The conflict target is on_conflict, else the table's primary key (Plan.hs: fromMaybe pkCols
// qsOnConflict); with neither it is a plain insert, and Preference-Applied leaves the resolution
// out. A merge sets every column of the payload, the key's included. It stays one statement so
// that PostgreSQL's row level security decides, as it does behind PostgREST: INSERT policies check
// the proposed row, UPDATE policies the row it conflicts with.
//
// pgrst.inserted tells an insert from an update, for the status (PostgREST 12.0, #1070: a merge
// that inserted nothing answers 200, not 201): the WHERE of the SELECT adds one per proposed row,
// the WHERE of DO UPDATE takes one away per conflict, and the response reads what is left. Both
// conditions are always true; set_config is only there for its side effect, transaction-local.
import { notImplemented } from './errors.ts';
import type { Preferences } from './request-context.ts';
import type { Table } from './schema-cache.ts';
import { ident } from './sql.ts';

export interface UpsertSql {
  /** ` where …` after the payload's FROM (merge-duplicates only). */
  where: string;
  /** ` on conflict (…) do …`, or nothing for a plain insert. */
  onConflict: string;
  /** The inserted-row count for the response's select list, `null` when not counted. */
  inserted: string;
  /** Whether the resolution was applied, and Preference-Applied names it. */
  applied: boolean;
}

const INSERTED = `nullif(current_setting('pgrst.inserted', true), '')::int`;

/** SqlFragment.hs addConfigPgrstInserted: count one row in (`+`) or out (`-`). */
function countInserted(sign: '+' | '-'): string {
  return `set_config('pgrst.inserted', (coalesce(${INSERTED}, 0) ${sign} 1)::text, true) <> '${
    sign === '+' ? '0' : '-1'
  }'`;
}

/** The parts of an INSERT of `columns` (the payload's keys) that the resolution adds. */
export function upsertSql(
  resolution: Preferences['resolution'],
  table: Table,
  onConflict: string[] | null,
  columns: string[],
): UpsertSql {
  if (resolution === undefined) {
    return { where: '', onConflict: '', inserted: 'null', applied: false };
  }
  if (onConflict === null && table.isView) {
    throw notImplemented(
      `an upsert on the view '${table.name}' without on_conflict is not supported by the local PostgREST stand-in, which does not infer a view's primary key`,
    );
  }
  const target = onConflict ?? table.primaryKey;
  const merge = resolution === 'merge-duplicates';
  const action = !merge || columns.length === 0
    ? 'do nothing'
    : `do update set ${columns.map((c) => `${ident(c)} = excluded.${ident(c)}`).join(', ')} where ${
      countInserted('-')
    }`;
  return {
    where: merge ? ` where ${countInserted('+')}` : '',
    onConflict: target.length === 0
      ? ''
      : ` on conflict (${target.map((c) => ident(c)).join(', ')}) ${action}`,
    inserted: merge ? INSERTED : 'null',
    applied: target.length > 0,
  };
}
