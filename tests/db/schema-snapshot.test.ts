import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();

// A deterministic, version-neutral description of everything the migrations own: function
// bodies are compared as written (prosrc), not as PostgreSQL re-prints them, so the same
// snapshot holds on PostgreSQL 15 and 17.
const DUMP = `
with ours(nsp) as (values ('public'), ('private')),
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

describe('the migrated schema', () => {
  it('matches the committed snapshot (run `npx vitest run -u` after a deliberate schema change)', async () => {
    const { rows } = await db().query<{ line: string }>(DUMP);
    await expect(rows.map((r) => r.line).join('\n') + '\n').toMatchFileSnapshot('./__snapshots__/schema.txt');
  });
});
