// What PostgREST learns from the catalog before serving: the tables and functions of the exposed
// schema (so that only names that exist ever reach SQL, and function calls bind every argument to
// its declared type), the relationships between its tables (the foreign keys that embedding
// follows) and the settings of the roles the authenticator can switch to (ALTER ROLE anon SET
// statement_timeout only takes effect at login, so PostgREST applies them per request).
//
// PostgREST reloads on NOTIFY pgrst; this stand-in reloads when a request names something the
// cache does not know, so a function or table created by a test or a migration is seen at once.
//
// Only the functions this project has are callable: a scalar or void result, every argument named,
// none variadic. Others (set-returning, composite or OUT results, unnamed or variadic arguments)
// are left out, so calling one is PostgREST's "not found" (PGRST202), not a wrong answer.
import type pg from 'pg';
import { schemaCacheUnavailable } from './errors.ts';
import {
  buildRelationships,
  FOREIGN_KEYS_SQL,
  type ForeignKeyRow,
  type Relationship,
} from './relationships.ts';
import { EXPOSED_SCHEMA } from './request-context.ts';

export interface Table {
  name: string;
  /** Column name → full SQL type, as json_to_record needs it (`character varying(20)`, `public.mood[]`). */
  columns: Map<string, string>;
  /** A view or materialized view (PostgREST derives their relationships; this stand-in does not). */
  isView: boolean;
  /**
   * The primary key's columns in key order, the conflict target of an upsert without on_conflict;
   * empty for a table without one and for views (PostgREST infers theirs; this stand-in does not).
   */
  primaryKey: string[];
}

export interface RoutineParam {
  name: string;
  type: string;
  required: boolean;
}

export interface Routine {
  name: string;
  /** In declaration order. */
  params: RoutineParam[];
  returnsVoid: boolean;
  volatility: 'immutable' | 'stable' | 'volatile';
}

export interface SchemaCacheData {
  tables: Map<string, Table>;
  /** Between tables of the exposed schema, in PostgREST's order (relationships.ts). */
  relationships: Relationship[];
  /** Overloads share a name. */
  routines: Map<string, Routine[]>;
  /** Role → [setting, value] pairs to apply with set_config before switching to it. */
  roleSettings: Map<string, [string, string][]>;
}

// Types are formatted with an empty search_path so that anything outside pg_catalog comes out
// schema-qualified and means the same whatever search_path a request sets.
const TABLES_SQL = `
  select c.relname as name, c.relkind in ('v', 'm') as is_view,
         coalesce((select json_object_agg(a.attname, format_type(a.atttypid, a.atttypmod))
                   from pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '{}') as columns,
         coalesce((select json_agg(a.attname order by k.position)
                   from pg_constraint con
                   cross join lateral unnest(con.conkey) with ordinality as k(attnum, position)
                   join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
                   where con.conrelid = c.oid and con.contype = 'p'), '[]') as primary_key
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = $1 and c.relkind in ('r', 'v', 'm', 'f', 'p')`;

const ROUTINES_SQL = `
  select p.proname as name, p.pronargs - p.pronargdefaults as nrequired,
         p.prorettype = 'pg_catalog.void'::pg_catalog.regtype as returns_void,
         p.provolatile as volatility,
         coalesce((select json_agg(json_build_object('name', a.name, 'type', format_type(a.type, null)) order by a.idx)
                   from unnest(p.proargtypes::oid[], p.proargnames) with ordinality as a(type, name, idx)), '[]') as params
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type t on t.oid = p.prorettype
  where n.nspname = $1 and p.prokind = 'f'
    and p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype
    and not p.proretset and t.typtype <> 'c' and p.proargmodes is null
    and (p.pronargs = 0 or (p.proargnames is not null and not '' = any (p.proargnames)))`;

// Same rule as PostgREST (Config/Database.hs queryRoleSettings): settings of the roles the login
// role is a member of, limited to those it may set.
const ROLE_SETTINGS_SQL = `
  with role_setting as (
    select r.rolname, unnest(r.rolconfig) as setting
    from pg_auth_members m
    join pg_roles r on r.oid = m.roleid
    where m.member = quote_ident(current_user)::regrole::oid
  ), kv as (
    select rolname, substr(setting, 1, strpos(setting, '=') - 1) as key, substr(setting, strpos(setting, '=') + 1) as value
    from role_setting
  )
  select kv.rolname as role, kv.key, kv.value
  from kv
  join pg_settings ps on ps.name = kv.key
   and (ps.context = 'user' or has_parameter_privilege(quote_ident(current_user)::regrole::oid, ps.name, 'set'))
  where kv.key <> 'default_transaction_isolation'
  order by kv.rolname, kv.key`;

interface RoutineRow {
  name: string;
  nrequired: number;
  returns_void: boolean;
  volatility: 'i' | 's' | 'v';
  params: { name: string; type: string }[];
}

const VOLATILITY = { i: 'immutable', s: 'stable', v: 'volatile' } as const;

async function queryCatalog(client: pg.PoolClient): Promise<SchemaCacheData> {
  await client.query('begin read only');
  try {
    await client.query(`set local search_path to ''`);
    const tables = await client.query<
      { name: string; is_view: boolean; columns: Record<string, string>; primary_key: string[] }
    >(TABLES_SQL, [EXPOSED_SCHEMA]);
    const foreignKeys = await client.query<ForeignKeyRow>(FOREIGN_KEYS_SQL, [EXPOSED_SCHEMA]);
    const routines = await client.query<RoutineRow>(ROUTINES_SQL, [EXPOSED_SCHEMA]);
    const settings = await client.query<{ role: string; key: string; value: string }>(
      ROLE_SETTINGS_SQL,
    );
    await client.query('commit');

    const data: SchemaCacheData = {
      tables: new Map(),
      relationships: buildRelationships(foreignKeys.rows),
      routines: new Map(),
      roleSettings: new Map(),
    };
    for (const row of tables.rows) {
      data.tables.set(row.name, {
        name: row.name,
        columns: new Map(Object.entries(row.columns)),
        isView: row.is_view,
        primaryKey: row.primary_key,
      });
    }
    for (const row of routines.rows) {
      const routine: Routine = {
        name: row.name,
        params: row.params.map((p, index) => ({ ...p, required: index < row.nrequired })),
        returnsVoid: row.returns_void,
        volatility: VOLATILITY[row.volatility],
      };
      data.routines.set(row.name, [...(data.routines.get(row.name) ?? []), routine]);
    }
    for (const row of settings.rows) {
      data.roleSettings.set(row.role, [...(data.roleSettings.get(row.role) ?? []), [
        row.key,
        row.value,
      ]]);
    }
    return data;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  }
}

export class SchemaCache {
  #data: SchemaCacheData | undefined;
  #loading: Promise<SchemaCacheData> | undefined;

  /** The cache, loaded through `client` the first time. */
  async get(client: pg.PoolClient): Promise<SchemaCacheData> {
    return this.#data ?? (await this.reload(client));
  }

  /** Reads the catalog again; concurrent callers share one load. */
  async reload(client: pg.PoolClient): Promise<SchemaCacheData> {
    this.#loading ??= queryCatalog(client)
      .then((data) => (this.#data = data))
      .catch((error: unknown) => {
        throw Object.assign(schemaCacheUnavailable(), { cause: error });
      })
      .finally(() => (this.#loading = undefined));
    return await this.#loading;
  }
}
