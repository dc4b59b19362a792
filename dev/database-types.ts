// The `Database` type of shared/database.types.ts, read from a migrated database's catalog in the
// shape `supabase gen types typescript` gives (Tables with Row/Insert/Update/Relationships, Views,
// Functions with Args/Returns, Enums, CompositeTypes), so createClient<Database> types every
// PostgREST call. That command needs Docker or a hosted project; this reads the same catalog here.
import type pg from 'pg';

/** The schemas PostgREST exposes (supabase/config.toml [api] schemas). */
const EXPOSED_SCHEMAS = ['public'] as const;

interface Column {
  table_name: string;
  kind: 'table' | 'view';
  column_name: string;
  type_oid: number;
  nullable: boolean;
  optional_on_insert: boolean;
  updatable: boolean;
}

interface ForeignKey {
  table_name: string;
  constraint_name: string;
  columns: string[];
  referenced_relation: string;
  referenced_columns: string[];
  one_to_one: boolean;
}

interface FunctionRow {
  name: string;
  arg_names: string[] | null;
  arg_types: number[];
  arg_modes: string[] | null;
  defaults: number;
  result_oid: number;
  returns_set: boolean;
  table_columns: Array<{ name: string; type_oid: number }> | null;
}

interface TypeRow {
  oid: number;
  name: string;
  schema: string;
  category: string;
  element: number;
  enum_labels: string[] | null;
  relation_columns: Array<{ name: string; type_oid: number }> | null;
}

const COLUMNS_SQL = `
  select c.relname as table_name,
         case when c.relkind in ('r', 'p') then 'table' else 'view' end as kind,
         a.attname as column_name, a.atttypid::int as type_oid,
         not a.attnotnull as nullable,
         (not a.attnotnull or a.atthasdef or a.attidentity <> '' or a.attgenerated <> '') as optional_on_insert,
         a.attgenerated = '' as updatable
  from pg_catalog.pg_class c
  join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  where c.relnamespace = $1::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
  order by c.relname, a.attname`;

const FOREIGN_KEYS_SQL = `
  select c.relname as table_name, k.conname as constraint_name,
         array(select a.attname from unnest(k.conkey) with ordinality u(n, i)
               join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i) as columns,
         r.relname as referenced_relation,
         array(select a.attname from unnest(k.confkey) with ordinality u(n, i)
               join pg_catalog.pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i) as referenced_columns,
         exists (select 1 from pg_catalog.pg_index i
                 where i.indrelid = k.conrelid and i.indisunique
                   and (select array_agg(x order by x) from unnest(i.indkey::int2[]) x) =
                       (select array_agg(x order by x) from unnest(k.conkey) x)) as one_to_one
  from pg_catalog.pg_constraint k
  join pg_catalog.pg_class c on c.oid = k.conrelid
  join pg_catalog.pg_class r on r.oid = k.confrelid
  where k.contype = 'f' and c.relnamespace = $1::regnamespace and r.relnamespace = $1::regnamespace
  order by c.relname, k.conname`;

// Trigger functions and functions over pseudo-types PostgREST cannot call are left out, as the
// Supabase generator does.
const FUNCTIONS_SQL = `
  select p.proname as name, p.proargnames as arg_names,
         coalesce(p.proallargtypes::int[], p.proargtypes::int[]) as arg_types,
         p.proargmodes::text[] as arg_modes, p.pronargdefaults as defaults,
         p.prorettype::int as result_oid, p.proretset as returns_set,
         case when p.proargmodes is not null and 't' = any (p.proargmodes) then (
           select json_agg(json_build_object('name', p.proargnames[i], 'type_oid', (p.proallargtypes)[i]::int) order by i)
           from generate_subscripts(p.proargmodes, 1) i where p.proargmodes[i] = 't') end as table_columns
  from pg_catalog.pg_proc p
  where p.pronamespace = $1::regnamespace and p.prokind = 'f'
    and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype)
  order by p.proname, p.oid`;

const TYPES_SQL = `
  select t.oid::int as oid, t.typname as name, t.typnamespace::regnamespace::text as schema,
         t.typcategory as category, t.typelem::int as element,
         case when t.typtype = 'e' then array(select e.enumlabel from pg_catalog.pg_enum e where e.enumtypid = t.oid order by e.enumsortorder) end as enum_labels,
         case when t.typtype = 'c' then (
           select json_agg(json_build_object('name', a.attname, 'type_oid', a.atttypid::int) order by a.attnum)
           from pg_catalog.pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped) end as relation_columns
  from pg_catalog.pg_type t
  where t.oid = any ($1::oid[])`;

const SCALARS: Record<string, string> = {
  bool: 'boolean',
  int2: 'number',
  int4: 'number',
  int8: 'number',
  float4: 'number',
  float8: 'number',
  numeric: 'number',
  oid: 'number',
  json: 'Json',
  jsonb: 'Json',
  void: 'undefined',
  record: 'Record<string, unknown>',
};

function quoteKey(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

class TypeNames {
  private readonly types = new Map<number, TypeRow>();

  constructor(private readonly client: pg.ClientBase) {}

  /** Loads the named types and, transitively, array elements and composite columns. */
  async load(oids: Iterable<number>): Promise<void> {
    let pending = [...new Set(oids)].filter((oid) => !this.types.has(oid));
    while (pending.length > 0) {
      const { rows } = await this.client.query<TypeRow>(TYPES_SQL, [pending]);
      const next: number[] = [];
      for (const row of rows) {
        this.types.set(row.oid, row);
        if (row.element) next.push(row.element);
        for (const column of row.relation_columns ?? []) next.push(column.type_oid);
      }
      pending = [...new Set(next)].filter((oid) => !this.types.has(oid));
    }
  }

  ts(oid: number): string {
    const type = this.types.get(oid);
    if (!type) throw new Error(`type ${oid} was not loaded`);
    if (type.category === 'A') return `${this.ts(type.element)}[]`;
    if (type.enum_labels) {
      return type.schema === 'public'
        ? `Database["public"]["Enums"][${JSON.stringify(type.name)}]`
        : type.enum_labels.map((l) => JSON.stringify(l)).join(' | ');
    }
    if (type.relation_columns) {
      return type.schema === 'public'
        ? `Database["public"]["CompositeTypes"][${JSON.stringify(type.name)}]`
        : `{ ${
          type.relation_columns.map((c) => `${quoteKey(c.name)}: ${this.ts(c.type_oid)} | null`)
            .join('; ')
        } }`;
    }
    return SCALARS[type.name] ?? (type.category === 'N' ? 'number' : 'string');
  }

  publicEnums(): TypeRow[] {
    return [...this.types.values()].filter((t) => t.schema === 'public' && t.enum_labels).sort((
      a,
      b,
    ) => a.name.localeCompare(b.name));
  }

  publicComposites(): TypeRow[] {
    return [...this.types.values()].filter((t) => t.schema === 'public' && t.relation_columns).sort(
      (a, b) => a.name.localeCompare(b.name),
    );
  }
}

function groupBy<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) groups.set(key(row), [...(groups.get(key(row)) ?? []), row]);
  return groups;
}

function functionSignature(fn: FunctionRow, names: TypeNames): string {
  const inputs = fn.arg_types
    .map((type, i) => ({ type, name: fn.arg_names?.[i] ?? '', mode: fn.arg_modes?.[i] ?? 'i' }))
    .filter((arg) => arg.mode === 'i' || arg.mode === 'b' || arg.mode === 'v');
  const firstDefault = inputs.length - fn.defaults;
  const args = inputs.length === 0
    ? 'never'
    // SQL passes null to any argument (these functions are not STRICT), and callers rely on it.
    : `{ ${
      inputs.map((arg, i) =>
        `${quoteKey(arg.name)}${i >= firstDefault ? '?' : ''}: ${names.ts(arg.type)} | null`
      ).join('; ')
    } }`;
  const row = fn.table_columns
    ? `{ ${
      fn.table_columns.map((c) => `${quoteKey(c.name)}: ${names.ts(c.type_oid)}`).join('; ')
    } }`
    : names.ts(fn.result_oid);
  return `{ Args: ${args}; Returns: ${
    fn.returns_set ? `${fn.table_columns ? row : `(${row})`}[]` : row
  } }`;
}

/** The text of shared/database.types.ts for the database `client` is connected to. */
export async function generateDatabaseTypes(
  client: pg.ClientBase,
  schema: (typeof EXPOSED_SCHEMAS)[number] = 'public',
): Promise<string> {
  const columns = (await client.query<Column>(COLUMNS_SQL, [schema])).rows;
  const foreignKeys = (await client.query<ForeignKey>(FOREIGN_KEYS_SQL, [schema])).rows;
  const functions = (await client.query<FunctionRow>(FUNCTIONS_SQL, [schema])).rows;
  const names = new TypeNames(client);
  await names.load([
    ...columns.map((c) => c.type_oid),
    ...functions.flatMap((
      f,
    ) => [...f.arg_types, f.result_oid, ...(f.table_columns ?? []).map((c) => c.type_oid)]),
  ]);

  const relations = groupBy(columns, (c) => c.table_name);
  const relationships = groupBy(foreignKeys, (k) => k.table_name);
  const tables: string[] = [];
  const views: string[] = [];
  for (const [table, cols] of relations) {
    const row = cols.map((c) =>
      `          ${quoteKey(c.column_name)}: ${names.ts(c.type_oid)}${c.nullable ? ' | null' : ''}`
    );
    const insert = cols.filter((c) => c.updatable).map((c) =>
      `          ${quoteKey(c.column_name)}${c.optional_on_insert ? '?' : ''}: ${
        names.ts(c.type_oid)
      }${c.nullable ? ' | null' : ''}`
    );
    const update = cols.filter((c) => c.updatable).map((c) =>
      `          ${quoteKey(c.column_name)}?: ${names.ts(c.type_oid)}${c.nullable ? ' | null' : ''}`
    );
    const rels = (relationships.get(table) ?? []).map((k) =>
      `          {\n            foreignKeyName: ${
        JSON.stringify(k.constraint_name)
      }\n            columns: ${JSON.stringify(k.columns)}\n` +
      `            isOneToOne: ${k.one_to_one}\n            referencedRelation: ${
        JSON.stringify(k.referenced_relation)
      }\n` +
      `            referencedColumns: ${JSON.stringify(k.referenced_columns)}\n          },`
    );
    const body = [
      `      ${quoteKey(table)}: {`,
      `        Row: {\n${row.join('\n')}\n        }`,
      ...(cols[0]!.kind === 'table'
        ? [
          `        Insert: {\n${insert.join('\n')}\n        }`,
          `        Update: {\n${update.join('\n')}\n        }`,
        ]
        : []),
      `        Relationships: [${rels.length ? `\n${rels.join('\n')}\n        ` : ''}]`,
      '      }',
    ].join('\n');
    (cols[0]!.kind === 'table' ? tables : views).push(body);
  }

  // Overloads are a union, as the Supabase generator writes them; PostgREST picks by argument names.
  const fnLines = [...groupBy(functions, (f) => f.name)].map(([name, overloads]) =>
    overloads.length === 1
      ? `      ${quoteKey(name)}: ${functionSignature(overloads[0]!, names)}`
      : `      ${quoteKey(name)}:\n${
        overloads.map((f) => `        | ${functionSignature(f, names)}`).join('\n')
      }`
  );
  const enums = names.publicEnums().map((t) =>
    `      ${quoteKey(t.name)}: ${t.enum_labels!.map((l) => JSON.stringify(l)).join(' | ')}`
  );
  const composites = names.publicComposites().map((t) =>
    `      ${quoteKey(t.name)}: { ${
      t.relation_columns!.map((c) => `${quoteKey(c.name)}: ${names.ts(c.type_oid)} | null`).join(
        '; ',
      )
    } }`
  );
  const section = (
    items: string[],
  ) => (items.length ? `{\n${items.join('\n')}\n    }` : '{\n      [_ in never]: never\n    }');

  return `// Generated by \`npm run gen:types\` from the migrated database (dev/database-types.ts), in the shape
// of \`supabase gen types typescript\`. Do not edit: change the SQL, then regenerate;
// tests/db/database-types.test.ts fails while this file differs from the migrations.

export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[];

export type Database = {
  // supabase-js reads the PostgREST version from here to type its filters.
  __InternalSupabase: {
    PostgrestVersion: "12";
  };
  ${schema}: {
    Tables: ${section(tables)}
    Views: ${section(views)}
    Functions: ${section(fnLines)}
    Enums: ${section(enums)}
    CompositeTypes: ${section(composites)}
  };
};
`;
}
