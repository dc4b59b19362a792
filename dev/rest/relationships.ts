// The relationships between the exposed schema's tables, found and chosen as PostgREST 12 does
// (SchemaCache.hs allM2OandO2ORels, addM2MRels, addInverseRels; Plan.hs findRel; Error.hs for
// PGRST200 and PGRST201). Every foreign key between two tables of the schema is a many-to-one
// relationship from the referencing table (one-to-one when its columns are also a primary key or
// unique constraint of that table), and the inverse one-to-many (or one-to-one) from the
// referenced table; two foreign keys of a junction table whose columns are all in its primary key
// relate the two referenced tables many-to-many. Relationships through views and computed
// relationships (functions) are not derived; embedding through a view is refused elsewhere.
import { RestError } from './errors.ts';
import { closest } from './fuzzy.ts';
import { EXPOSED_SCHEMA } from './request-context.ts';

export type Cardinality = 'one-to-many' | 'many-to-one' | 'one-to-one' | 'many-to-many';

export interface Relationship {
  table: string;
  foreignTable: string;
  isSelf: boolean;
  cardinality: Cardinality;
  /** The foreign key; for many-to-many, the junction table. */
  constraint: string;
  /** (column of `table`, column of `foreignTable`) pairs; for many-to-many, none. */
  columns: [string, string][];
  /** One-to-one from the referenced table. */
  isParent: boolean;
  /** Many-to-many: the junction's foreign keys to `table` and to `foreignTable`, with their columns. */
  junction: { sourceFk: string; targetFk: string; source: string[]; target: string[] } | null;
}

export interface ForeignKeyRow {
  table_name: string;
  foreign_table_name: string;
  constraint_name: string;
  columns: string[];
  foreign_columns: string[];
  one_to_one: boolean;
  in_primary_key: boolean;
}

/** Foreign keys (not those a partition inherits) between two tables of schema $1. */
export const FOREIGN_KEYS_SQL = `
  with pks_uniques_cols as (
    select conrelid, jsonb_agg(column_info.cols) as cols
    from pg_constraint
    join lateral (
      select jsonb_agg(cols.attname order by cols.attnum) as cols
      from (select unnest(conkey) as col) _
      join pg_attribute cols on cols.attrelid = conrelid and cols.attnum = col
    ) column_info on true
    where contype in ('p', 'u')
    group by conrelid
  )
  select tab.relname as table_name, other.relname as foreign_table_name,
         traint.conname as constraint_name,
         column_info.columns, column_info.foreign_columns,
         coalesce(column_info.sorted in (select * from jsonb_array_elements(pks_uqs.cols)), false) as one_to_one,
         coalesce(column_info.attnums <@ (select pk.conkey from pg_constraint pk
                                          where pk.conrelid = traint.conrelid and pk.contype = 'p'), false) as in_primary_key
  from pg_constraint traint
  join lateral (
    select json_agg(cols.attname order by ord) as columns,
           json_agg(refs.attname order by ord) as foreign_columns,
           jsonb_agg(cols.attname order by cols.attnum) as sorted,
           array_agg(cols.attnum) as attnums
    from unnest(traint.conkey, traint.confkey) with ordinality as _(col, ref, ord)
    join pg_attribute cols on cols.attrelid = traint.conrelid and cols.attnum = col
    join pg_attribute refs on refs.attrelid = traint.confrelid and refs.attnum = ref
  ) column_info on true
  join pg_class tab on tab.oid = traint.conrelid
  join pg_namespace ns1 on ns1.oid = tab.relnamespace
  join pg_class other on other.oid = traint.confrelid
  join pg_namespace ns2 on ns2.oid = other.relnamespace
  left join pks_uniques_cols pks_uqs on pks_uqs.conrelid = traint.conrelid
  where traint.contype = 'f' and traint.conparentid = 0 and ns1.nspname = $1 and ns2.nspname = $1
  order by traint.conrelid, traint.conname`;

const zip = (a: string[], b: string[]): [string, string][] => a.map((x, i) => [x, b[i]!]);

export function buildRelationships(rows: ForeignKeyRow[]): Relationship[] {
  const rels: Relationship[] = [];
  for (const fk of rows) {
    const base = { constraint: fk.constraint_name, junction: null };
    const isSelf = fk.table_name === fk.foreign_table_name;
    rels.push({
      ...base,
      table: fk.table_name,
      foreignTable: fk.foreign_table_name,
      isSelf,
      cardinality: fk.one_to_one ? 'one-to-one' : 'many-to-one',
      columns: zip(fk.columns, fk.foreign_columns),
      isParent: false,
    }, {
      ...base,
      table: fk.foreign_table_name,
      foreignTable: fk.table_name,
      isSelf,
      cardinality: fk.one_to_one ? 'one-to-one' : 'one-to-many',
      columns: zip(fk.foreign_columns, fk.columns),
      isParent: fk.one_to_one,
    });
  }
  const m2o = rows.filter((fk) => !fk.one_to_one);
  for (const fk1 of m2o) {
    for (const fk2 of m2o) {
      if (fk1.table_name !== fk2.table_name || fk1.constraint_name === fk2.constraint_name) {
        continue;
      }
      if (!fk1.in_primary_key || !fk2.in_primary_key) continue;
      rels.push({
        table: fk1.foreign_table_name,
        foreignTable: fk2.foreign_table_name,
        isSelf: fk1.foreign_table_name === fk2.foreign_table_name,
        cardinality: 'many-to-many',
        constraint: fk1.table_name,
        columns: [],
        isParent: false,
        junction: {
          sourceFk: fk1.constraint_name,
          targetFk: fk2.constraint_name,
          source: fk1.columns,
          target: fk2.columns,
        },
      });
    }
  }
  return rels.sort(comparePostgrest);
}

const CARDINALITY_ORDER: Cardinality[] = [
  'one-to-many',
  'many-to-one',
  'one-to-one',
  'many-to-many',
];
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** PostgREST's derived Ord on Relationship, which orders PGRST201's details and hint. */
function comparePostgrest(a: Relationship, b: Relationship): number {
  return cmp(a.table, b.table) || cmp(a.foreignTable, b.foreignTable) ||
    Number(a.isSelf) - Number(b.isSelf) ||
    CARDINALITY_ORDER.indexOf(a.cardinality) - CARDINALITY_ORDER.indexOf(b.cardinality) ||
    cmp(a.constraint, b.constraint) ||
    cmp(JSON.stringify([a.columns, a.junction]), JSON.stringify([b.columns, b.junction])) ||
    Number(a.isParent) - Number(b.isParent);
}

export function isToOne(rel: Relationship): boolean {
  return rel.cardinality === 'many-to-one' || rel.cardinality === 'one-to-one';
}

/** Whether `target` names a relationship from its table: PostgREST's findRel without a hint. */
function matches(rel: Relationship, target: string): boolean {
  const singleColumn = rel.cardinality !== 'many-to-many' && rel.columns.length === 1;
  const byColumn = singleColumn && rel.columns[0]![0] === target;
  if (rel.isSelf) {
    // One foreign key, two relationships: the one-to-many by the table's name, the many-to-one by
    // the column's.
    return (rel.foreignTable === target && rel.cardinality === 'one-to-many') ||
      (byColumn && rel.cardinality === 'many-to-one');
  }
  const byConstraint = rel.cardinality !== 'many-to-many' && rel.constraint === target;
  // (PostgREST leaves out a view by constraint or column name; every relationship here is to a table.)
  return rel.foreignTable === target || byConstraint || byColumn;
}

function compressed(rel: Relationship): Record<string, string> {
  const list = (columns: string[]) => `(${columns.join(', ')})`;
  const embedding = `${rel.table} with ${rel.foreignTable}`;
  const relationship = rel.junction === null
    ? `${rel.constraint} using ${rel.table}${
      list(rel.columns.map((c) => c[0]))
    } and ${rel.foreignTable}${list(rel.columns.map((c) => c[1]))}`
    : `${rel.constraint} using ${rel.junction.sourceFk}${
      list(rel.junction.source)
    } and ${rel.junction.targetFk}${list(rel.junction.target)}`;
  return { cardinality: rel.cardinality, embedding, relationship };
}

/** PostgREST's noRelBetweenHint: a table (or, when the table has relationships, a target) like the one named. */
function noRelationshipHint(rels: Relationship[], parent: string, child: string): string | null {
  const children = rels.filter((r) => r.table === parent).map((r) => r.foreignTable);
  if (children.length > 0) {
    // fuzzyset's default minimum score; a child that matches exactly (score 1) is not suggested.
    const others = children.filter((c) => c.toLowerCase() !== child.toLowerCase());
    const best = closest(child, new Set(others), 0.33);
    return best === null ? null : `Perhaps you meant '${best}' instead of '${child}'.`;
  }
  const best = closest(parent, new Set(rels.map((r) => r.table)), 0.33);
  return best === null ? null : `Perhaps you meant '${best}' instead of '${parent}'.`;
}

/** The one relationship `target` names from `table`, or PostgREST's PGRST200 / PGRST201. */
export function findRelationship(
  rels: Relationship[],
  table: string,
  target: string,
): Relationship {
  const found = rels.filter((r) => r.table === table && matches(r, target));
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    throw new RestError(
      400,
      {
        code: 'PGRST200',
        message:
          `Could not find a relationship between '${table}' and '${target}' in the schema cache`,
        details:
          `Searched for a foreign key relationship between '${table}' and '${target}' in the schema '${EXPOSED_SCHEMA}', but no matches were found.`,
        hint: noRelationshipHint(rels, table, target),
      },
      // A foreign key added since the cache was loaded: reload it and plan again.
      { cacheMiss: true },
    );
  }
  const hint = (r: Relationship) => `'${r.foreignTable}!${r.constraint}'`;
  throw new RestError(300, {
    code: 'PGRST201',
    message:
      `Could not embed because more than one relationship was found for '${table}' and '${target}'`,
    details: found.map(compressed),
    hint: `Try changing '${target}' to one of the following: ${
      found.map(hint).join(', ')
    }. Find the desired relationship in the 'details' key.`,
  });
}
