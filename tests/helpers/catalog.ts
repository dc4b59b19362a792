// A deterministic description of a database's schema, read from the catalog, for two tests:
//
// * the schema snapshot (tests/db/schema-snapshot.test.ts) takes the summary of the objects the
//   migrations own, one line each. Function bodies are compared as written (an md5 of prosrc),
//   not as PostgreSQL re-prints them, so the same snapshot holds on PostgreSQL 15 and 17;
// * the declarative schema test (tests/db/declarative-schema.test.ts) compares two databases on
//   one server, so it takes the full description: the summary of every non-system schema, each
//   function as pg_get_functiondef prints it (for the summary's md5), owners, raw ACLs, identity
//   and generated columns, table persistence, sequences, trigger and index states, policy kinds,
//   comments, default privileges, extensions, types, rules and publications. Column order
//   (attnum) is left out on purpose: ALTER TABLE ADD COLUMN appends, so a migrated table and its
//   declared form may order columns differently and still be the same table.
import type pg from 'pg';

/** A client, a pool or a TestDatabase: anything that runs a query with parameters. */
interface Queryable {
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** One described object: `key` names it, `text` is its description (a function: many lines). */
export interface CatalogEntry {
  key: string;
  text: string;
}

/** The schemas the migrations own, as the snapshot has always scoped them. */
const OWN_SCHEMAS = ['public', 'private'];

/** Everything but PostgreSQL's own schemas. */
const NON_SYSTEM_SCHEMAS = `
  select n.nspname from pg_namespace n
  where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp_)'
  order by 1`;

// The summary, one line per object, for the schemas in $1 (and every trigger whose function is
// in private, wherever its table is: the auth.users triggers).
const SUMMARY = `
with ours(nsp) as (select unnest($1::text[])),
grants(oid, owner, acl) as (
  select c.oid, c.relowner, c.relacl from pg_class c
),
acl_text(oid, text) as (
  select g.oid, coalesce((
    select string_agg(e.grantee::regrole::text || ':' || e.privilege_type, ',' order by e.grantee::regrole::text, e.privilege_type)
    from aclexplode(g.acl) e where e.grantee <> g.owner), '-')
  from grants g
)
select 'table ' || c.relnamespace::regnamespace || '.' || c.relname
       || ' rls=' || c.relrowsecurity || ' grants=' || (select a.text from acl_text a where a.oid = c.oid) as line
from pg_class c where c.relkind in ('r', 'p', 'v', 'm') and c.relnamespace::regnamespace::text in (select nsp from ours)
union all
select 'column ' || c.relnamespace::regnamespace || '.' || c.relname || '.' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod) || case when a.attnotnull then ' not null' else '' end
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || coalesce(' acl=' || array_to_string(array(select unnest(a.attacl)::text order by 1), ','), '')
from pg_attribute a join pg_class c on c.oid = a.attrelid
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
  and c.relnamespace::regnamespace::text in (select nsp from ours)
union all
select 'constraint ' || c.conrelid::regclass || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
from pg_constraint c where c.connamespace::regnamespace::text in (select nsp from ours)
union all
select 'index ' || i.indexrelid::regclass || ' ' || pg_get_indexdef(i.indexrelid)
from pg_index i join pg_class c on c.oid = i.indexrelid
where c.relnamespace::regnamespace::text in (select nsp from ours)
union all
select 'function ' || p.oid::regprocedure || ' returns ' || pg_get_function_result(p.oid)
       || ' definer=' || p.prosecdef || ' volatility=' || p.provolatile::text
       || ' config=' || coalesce(array_to_string(p.proconfig, ','), '-')
       || ' owner=' || p.proowner::regrole
       || ' acl=' || coalesce(array_to_string(array(select unnest(p.proacl)::text order by 1), ','), '-')
       || ' body=' || md5(p.prosrc)
from pg_proc p where p.pronamespace::regnamespace::text in (select nsp from ours)
union all
select 'policy ' || schemaname || '.' || tablename || ' "' || policyname || '" ' || cmd || ' to ' || array_to_string(roles, ',')
       || ' using ' || coalesce(qual, '-') || ' check ' || coalesce(with_check, '-')
from pg_policies where schemaname in (select nsp from ours)
union all
select 'trigger ' || t.tgrelid::regclass || ' ' || t.tgname || ' ' || pg_get_triggerdef(t.oid)
from pg_trigger t join pg_class c on c.oid = t.tgrelid
where not t.tgisinternal and (c.relnamespace::regnamespace::text in (select nsp from ours) or t.tgfoid::regproc::text like 'private.%')
union all
select 'schema ' || n.nspname || ' owner=' || n.nspowner::regrole
       || ' acl=' || coalesce(array_to_string(array(select unnest(n.nspacl)::text order by 1), ','), '-')
from pg_namespace n where n.nspname = 'private'
order by 1
`;

/** An aclitem[] as text, items sorted; `default` for null (the built-in privileges apply). */
const acl = (expr: string) =>
  `case when ${expr} is null then 'default' else '{' || array_to_string(array(select unnest(${expr})::text order by 1), ',') || '}' end`;

// What the summary leaves out, for the schemas in $1: (key, text) per object.
const DETAIL = `
with scope(nsp) as (select unnest($1::text[])),
rel as (
  select c.*, n.nspname, format('%I.%I', n.nspname, c.relname) as name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname in (select nsp from scope)
)
select 'relation ' || r.name as key,
       'kind=' || r.relkind::text || ' persistence=' || r.relpersistence::text || ' owner=' || r.relowner::regrole
       || ' rls=' || r.relrowsecurity || ' force_rls=' || r.relforcerowsecurity
       || ' replica_identity=' || r.relreplident::text
       || ' options=' || coalesce(array_to_string(r.reloptions, ','), '-')
       || ' acl=' || ${acl('r.relacl')} as text
from rel r where r.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')
union all
select 'view ' || r.name, pg_get_viewdef(r.oid, true)
from rel r where r.relkind in ('v', 'm')
union all
select 'column ' || r.name || '.' || quote_ident(a.attname),
       format_type(a.atttypid, a.atttypmod) || ' not_null=' || a.attnotnull
       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
       || ' identity=' || coalesce(nullif(a.attidentity::text, ''), '-')
       || ' generated=' || coalesce(nullif(a.attgenerated::text, ''), '-')
       || ' collation=' || case when a.attcollation = t.typcollation then 'default' else a.attcollation::regcollation::text end
       || ' acl=' || ${acl('a.attacl')}
from rel r
join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
join pg_type t on t.oid = a.atttypid
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where r.relkind in ('r', 'p', 'v', 'm', 'f', 'c')
union all
select 'sequence ' || r.name,
       format_type(s.seqtypid, null) || ' start=' || s.seqstart || ' increment=' || s.seqincrement
       || ' min=' || s.seqmin || ' max=' || s.seqmax || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle
       || ' owned_by=' || coalesce((
            select format('%s.%I', dep.refobjid::regclass, ta.attname)
            from pg_depend dep
            join pg_attribute ta on ta.attrelid = dep.refobjid and ta.attnum = dep.refobjsubid
            where dep.classid = 'pg_class'::regclass and dep.objid = r.oid
              and dep.refclassid = 'pg_class'::regclass and dep.deptype in ('a', 'i')), '-')
from rel r join pg_sequence s on s.seqrelid = r.oid
union all
select 'function ' || format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       'owner=' || p.proowner::regrole || ' acl=' || ${acl('p.proacl')} || E'\n'
       || case when p.prokind = 'a' then 'aggregate' else rtrim(pg_get_functiondef(p.oid), E'\n') end
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname in (select nsp from scope)
union all
select 'trigger ' || format('%s %I', t.tgrelid::regclass, t.tgname), 'enabled=' || t.tgenabled::text
from pg_trigger t join pg_class c on c.oid = t.tgrelid
where not t.tgisinternal
  and (c.relnamespace in (select oid from pg_namespace where nspname in (select nsp from scope))
       or t.tgfoid in (select oid from pg_proc where pronamespace in (select oid from pg_namespace where nspname in (select nsp from scope))))
union all
select 'index ' || r.name,
       'valid=' || i.indisvalid || ' ready=' || i.indisready || ' clustered=' || i.indisclustered
       || ' replica_identity=' || i.indisreplident
from rel r join pg_index i on i.indexrelid = r.oid
union all
select format('policy %I.%I %I', p.schemaname, p.tablename, p.policyname), 'permissive=' || p.permissive
from pg_policies p where p.schemaname in (select nsp from scope)
union all
select 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
from pg_description d
where (pg_identify_object(d.classoid, d.objoid, 0)).schema in (select nsp from scope)
   or (d.classoid = 'pg_namespace'::regclass and d.objoid in (select oid from pg_namespace where nspname in (select nsp from scope)))
union all
select 'schema ' || quote_ident(n.nspname), 'owner=' || n.nspowner::regrole || ' acl=' || ${
  acl('n.nspacl')
}
from pg_namespace n where n.nspname in (select nsp from scope)
union all
select 'type ' || format('%I.%I', n.nspname, t.typname),
       'kind=' || t.typtype::text || ' owner=' || t.typowner::regrole || ' acl=' || ${
  acl('t.typacl')
}
       || case t.typtype
            when 'e' then ' labels=' || (select string_agg(e.enumlabel, ',' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid)
            when 'd' then ' base=' || format_type(t.typbasetype, t.typtypmod) || ' not_null=' || t.typnotnull
                          || ' default=' || coalesce(t.typdefault, '-')
            else '' end
from pg_type t join pg_namespace n on n.oid = t.typnamespace
where n.nspname in (select nsp from scope) and t.typtype in ('e', 'd', 'r', 'm')
union all
select 'default privileges ' || d.defaclrole::regrole || ' in ' || coalesce(d.defaclnamespace::regnamespace::text, '*')
       || ' on ' || d.defaclobjtype::text, ${acl('d.defaclacl')}
from pg_default_acl d
union all
select 'extension ' || e.extname, 'schema=' || e.extnamespace::regnamespace || ' version=' || e.extversion
from pg_extension e
union all
select 'event trigger ' || quote_ident(e.evtname),
       'event=' || e.evtevent || ' function=' || e.evtfoid::regprocedure || ' enabled=' || e.evtenabled::text
       || ' tags=' || coalesce(array_to_string(e.evttags, ','), '-')
from pg_event_trigger e
union all
select format('rule %I.%I %I', r.schemaname, r.tablename, r.rulename), r.definition
from pg_rules r where r.schemaname in (select nsp from scope)
union all
select format('publication %I %I.%I', p.pubname, p.schemaname, p.tablename), 'published'
from pg_publication_tables p where p.schemaname in (select nsp from scope)
`;

/** The snapshot's summary of the schemas the migrations own, one line per object. */
export async function catalogSummary(client: Queryable): Promise<string> {
  const { rows } = await client.query<{ line: string }>(SUMMARY, [OWN_SCHEMAS]);
  return rows.map((r) => r.line).join('\n') + '\n';
}

/** Everything the catalog says about every non-system schema, sorted by key. */
export async function catalogEntries(client: Queryable): Promise<CatalogEntry[]> {
  const { rows: schemas } = await client.query<{ nspname: string }>(NON_SYSTEM_SCHEMAS);
  const scope = schemas.map((s) => s.nspname);
  const summary = await client.query<{ line: string }>(SUMMARY, [scope]);
  const detail = await client.query<CatalogEntry>(DETAIL, [scope]);
  // The summary's function lines are left out: each function's full definition stands for them.
  const lines = summary.rows.map((r) => r.line).filter((line) => !line.startsWith('function '));
  const entries = [...lines.map((line) => ({ key: line, text: '' })), ...detail.rows];
  return entries.sort((
    a,
    b,
  ) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}
