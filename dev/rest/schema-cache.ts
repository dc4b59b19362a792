// What PostgREST learns from the catalog before serving: the tables and functions of the exposed
// schemas (so that only names that exist ever reach SQL, and function calls bind every argument to
// its declared type) and the settings of the roles the authenticator can switch to (ALTER ROLE anon
// SET statement_timeout only takes effect at login, so PostgREST applies them per request).
//
// PostgREST reloads on NOTIFY pgrst; this stand-in reloads when a request names something the
// cache does not know, so a function or table created by a test or a migration is seen at once.
import type pg from 'pg';
import { schemaCacheUnavailable } from './errors.ts';

export interface Column {
  name: string;
  /** Full SQL type, as json_to_record needs it (`character varying(20)`, `public.mood[]`). */
  type: string;
}

export interface Table {
  schema: string;
  name: string;
  columns: Map<string, Column>;
  primaryKey: string[];
}

export interface RoutineParam {
  /** '' for an unnamed parameter. */
  name: string;
  type: string;
  required: boolean;
  variadic: boolean;
}

export type Volatility = 'immutable' | 'stable' | 'volatile';

export interface Routine {
  schema: string;
  name: string;
  /** Input parameters only, in declaration order. */
  params: RoutineParam[];
  returnsSet: boolean;
  /** A row type, or OUT/INOUT/TABLE parameters: the result is an object (or an array of them). */
  returnsComposite: boolean;
  returnsVoid: boolean;
  volatility: Volatility;
}

export interface SchemaCacheData {
  /** Keyed by `schema.name`. */
  tables: Map<string, Table>;
  /** Keyed by `schema.name`; overloads share a key. */
  routines: Map<string, Routine[]>;
  /** Role → [setting, value] pairs to apply with set_config before switching to it. */
  roleSettings: Map<string, [string, string][]>;
}

export function qualifiedKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}

// Types are formatted with an empty search_path so that anything outside pg_catalog comes out
// schema-qualified and means the same whatever search_path a request sets.
const TABLES_SQL = `
  select n.nspname as schema, c.relname as name,
         coalesce((select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))
                                   order by a.attnum)
                   from pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns,
         coalesce((select json_agg(a.attname order by array_position(i.indkey::int2[], a.attnum))
                   from pg_index i
                   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
                   where i.indrelid = c.oid and i.indisprimary), '[]') as primary_key
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = any ($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')`;

const ROUTINES_SQL = `
  select n.nspname as schema, p.proname as name, p.pronargs as nargs, p.pronargdefaults as ndefaults,
         p.proretset as returns_set,
         (t.typtype = 'c' or coalesce(p.proargmodes::text[] && '{t,b,o}', false)) as returns_composite,
         p.prorettype = 'pg_catalog.void'::pg_catalog.regtype as returns_void,
         p.provolatile as volatility,
         coalesce((select json_agg(json_build_object('name', coalesce(a.name, ''), 'type', format_type(a.type, null),
                                                     'variadic', a.mode = 'v') order by a.idx)
                   from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargnames, p.proargmodes)
                          with ordinality as a(type, name, mode, idx)
                   where a.type is not null and coalesce(a.mode, 'i') in ('i', 'b', 'v')), '[]') as params
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  join pg_type t on t.oid = p.prorettype
  where n.nspname = any ($1::text[]) and p.prokind = 'f'
    and p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype`;

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

interface TableRow {
  schema: string;
  name: string;
  columns: Column[];
  primary_key: string[];
}

interface RoutineRow {
  schema: string;
  name: string;
  nargs: number;
  ndefaults: number;
  returns_set: boolean;
  returns_composite: boolean;
  returns_void: boolean;
  volatility: 'i' | 's' | 'v';
  params: { name: string; type: string; variadic: boolean }[];
}

// bpchar and bit without a length would truncate an argument to one character.
const WIDENED_TYPES: Record<string, string> = {
  character: 'character varying',
  'character[]': 'character varying[]',
  bit: 'bit varying',
  'bit[]': 'bit varying[]',
};

const CALLABLE_UNNAMED_TYPES = new Set(['json', 'jsonb']);

function toRoutine(row: RoutineRow): Routine | null {
  const requiredCount = row.nargs - row.ndefaults;
  const params = row.params.map((p, index) => ({
    name: p.name,
    type: WIDENED_TYPES[p.type] ?? p.type,
    required: index < requiredCount,
    variadic: p.variadic,
  }));
  // Unnamed parameters cannot be passed by name; the one exception is a function taking the whole
  // JSON body as its single unnamed json/jsonb parameter.
  const unnamed = params.filter((p) => p.name === '');
  if (unnamed.length > 0 && !(params.length === 1 && CALLABLE_UNNAMED_TYPES.has(params[0]!.type))) return null;
  const volatility = row.volatility === 'i' ? 'immutable' : row.volatility === 's' ? 'stable' : 'volatile';
  return {
    schema: row.schema,
    name: row.name,
    params,
    returnsSet: row.returns_set,
    returnsComposite: row.returns_composite,
    returnsVoid: row.returns_void,
    volatility,
  };
}

async function queryCatalog(client: pg.PoolClient, schemas: readonly string[]): Promise<SchemaCacheData> {
  await client.query('begin read only');
  try {
    await client.query(`set local search_path to ''`);
    const tables = await client.query<TableRow>(TABLES_SQL, [schemas]);
    const routines = await client.query<RoutineRow>(ROUTINES_SQL, [schemas]);
    const settings = await client.query<{ role: string; key: string; value: string }>(ROLE_SETTINGS_SQL);
    await client.query('commit');

    const data: SchemaCacheData = { tables: new Map(), routines: new Map(), roleSettings: new Map() };
    for (const row of tables.rows) {
      data.tables.set(qualifiedKey(row.schema, row.name), {
        schema: row.schema,
        name: row.name,
        columns: new Map(row.columns.map((c) => [c.name, c])),
        primaryKey: row.primary_key,
      });
    }
    for (const row of routines.rows) {
      const routine = toRoutine(row);
      if (!routine) continue;
      const key = qualifiedKey(routine.schema, routine.name);
      data.routines.set(key, [...(data.routines.get(key) ?? []), routine]);
    }
    for (const row of settings.rows) {
      data.roleSettings.set(row.role, [...(data.roleSettings.get(row.role) ?? []), [row.key, row.value]]);
    }
    return data;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  }
}

export class SchemaCache {
  readonly schemas: readonly string[];
  #data: SchemaCacheData | undefined;
  #loading: Promise<SchemaCacheData> | undefined;

  constructor(schemas: readonly string[]) {
    this.schemas = schemas;
  }

  /** The cache, loaded through `client` the first time. */
  async get(client: pg.PoolClient): Promise<SchemaCacheData> {
    return this.#data ?? (await this.reload(client));
  }

  /** Reads the catalog again; concurrent callers share one load. */
  async reload(client: pg.PoolClient): Promise<SchemaCacheData> {
    this.#loading ??= queryCatalog(client, this.schemas)
      .then((data) => (this.#data = data))
      .catch((error: unknown) => {
        throw Object.assign(schemaCacheUnavailable(), { cause: error });
      })
      .finally(() => (this.#loading = undefined));
    return await this.#loading;
  }
}
