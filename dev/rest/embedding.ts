// The select list of a read (or of the rows a write returns) with its embedded resources, written
// as PostgREST 12 writes it (QueryBuilder.hs readPlanToQuery, getJoins): the table's columns, then
// for each to-one embedding `row_to_json("posts_profiles_1".*)::jsonb AS "profiles"` over
//   LEFT JOIN LATERAL (SELECT "profiles_1"."username" FROM "public"."profiles" AS "profiles_1"
//                      WHERE "profiles_1"."id" = "public"."posts"."author_id") AS "posts_profiles_1" ON TRUE
// One statement, run as the request's role: the embedded table's grants and row level security
// apply as the main table's do, so a row its policies hide embeds as null. The embedded name is
// the key of the object in the answer. One-to-many and many-to-many embedding, and embedding
// from or to a view, are refused (PGRST127) rather than answered otherwise than PostgREST would.
import { notImplemented } from './errors.ts';
import type { Embed, ParsedQuery } from './query-params.ts';
import { findRelationship, isToOne } from './relationships.ts';
import { EXPOSED_SCHEMA } from './request-context.ts';
import type { SchemaCacheData, Table } from './schema-cache.ts';
import { columnSql, ident, qualified, selectListSql } from './sql.ts';

export interface SelectionSql {
  /** The select list: the table's columns, then one JSON object per embedding. */
  list: string;
  /** The LEFT JOIN LATERAL of each embedding, each with a leading space. */
  joins: string;
  /** The table's columns the joins read (the foreign keys), which a write must return too. */
  joinColumns: string[];
}

const STANDIN = 'the local PostgREST stand-in';

function embedSql(
  embed: Embed,
  table: Table,
  cache: SchemaCacheData,
  qualifier: string,
): { select: string; join: string; columns: string[] } {
  if (table.isView) {
    throw notImplemented(`embedding in the view '${table.name}' is not supported by ${STANDIN}`);
  }
  if (cache.tables.get(embed.relation)?.isView) {
    throw notImplemented(`embedding the view '${embed.relation}' is not supported by ${STANDIN}`);
  }
  const rel = findRelationship(cache.relationships, table.name, embed.relation);
  if (!isToOne(rel)) {
    throw notImplemented(
      `embedding '${embed.relation}' in '${table.name}' (${rel.cardinality}) is not supported by ${STANDIN}, which embeds to-one relationships only`,
    );
  }
  // PostgREST's aliases at depth 1: the embedded table's and the join's.
  const alias = ident(`${rel.foreignTable}_1`);
  const joinAlias = ident(`${rel.table}_${embed.relation}_1`);
  const columns = embed.columns.map((c) => columnSql(c, alias)).join(', ');
  const on = rel.columns.map(([column, foreign]) =>
    `${alias}.${ident(foreign)} = ${qualifier}.${ident(column)}`
  ).join(' and ');
  return {
    select: `row_to_json(${joinAlias}.*)::jsonb as ${ident(embed.relation)}`,
    join: ` left join lateral (select ${columns} from ${
      qualified(EXPOSED_SCHEMA, rel.foreignTable)
    } as ${alias} where ${on}) as ${joinAlias} on true`,
    columns: rel.columns.map(([column]) => column),
  };
}

/** `qualifier` names the table's row: `"public"."posts"` on a read, the source's alias on a write. */
export function selectionSql(
  parsed: Pick<ParsedQuery, 'select' | 'embeds'>,
  table: Table,
  cache: SchemaCacheData,
  qualifier: string,
): SelectionSql {
  const embeds = parsed.embeds.map((e) => embedSql(e, table, cache, qualifier));
  const list = [
    ...(parsed.select === null || parsed.select.length > 0
      ? [selectListSql(parsed.select, qualifier)]
      : []),
    ...embeds.map((e) => e.select),
  ].join(', ');
  return {
    list,
    joins: embeds.map((e) => e.join).join(''),
    joinColumns: embeds.flatMap((e) => e.columns),
  };
}
