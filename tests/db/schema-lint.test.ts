import type { ClientBase } from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';

// An advisor-style lint of the migrated schema, in the spirit of Supabase's splinter: each check
// is one catalog query, run against the migrated database (must find nothing) and, inside a
// transaction that rolls back, against a deliberately bad object (must find it), so no check can
// pass by querying the wrong thing.

const db = useTestDatabase();

/** Schemas holding this project's objects. */
const OWN_SCHEMAS = ['public', 'private'];
/** Schemas PostgREST exposes on Supabase by default (config.toml `api.schemas`). */
const EXPOSED_SCHEMAS = ['public', 'graphql_public'];
const API_ROLES = ['anon', 'authenticated', 'service_role'];

type Queryable = Pick<ClientBase, 'query'>;

async function column(client: Queryable, sql: string, params: unknown[] = []): Promise<string[]> {
  const { rows } = await client.query<{ item: string }>(sql, params);
  return rows.map((row) => row.item);
}

/** schema.name(identity arguments) of a pg_proc row aliased p, in pg_namespace n. */
const FUNCTION_NAME =
  `format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))`;

/** Functions that belong to an extension are the extension's business, not this lint's. */
const NOT_FROM_EXTENSION = `not exists (
  select 1 from pg_depend d
  where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')`;

// ============================================================================
// Lint queries
// ============================================================================

/** Functions whose search_path is not pinned to empty (splinter: function_search_path_mutable). */
function functionsWithMutableSearchPath(
  client: Queryable,
  options: { securityDefinerOnly?: boolean } = {},
) {
  return column(
    client,
    `select ${FUNCTION_NAME} as item
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = any ($1)
        and ${NOT_FROM_EXTENSION}
        and ($2 = false or p.prosecdef)
        and not coalesce('search_path=""' = any (p.proconfig), false)
      order by 1`,
    [OWN_SCHEMAS, options.securityDefinerOnly ?? false],
  );
}

/** How many functions the search_path lint looked at, so it is known not to be looking at none. */
async function functionCount(client: Queryable, options: { securityDefinerOnly?: boolean } = {}) {
  const { rows } = await client.query<{ n: number }>(
    `select count(*)::int as n
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = any ($1) and ${NOT_FROM_EXTENSION} and ($2 = false or p.prosecdef)`,
    [OWN_SCHEMAS, options.securityDefinerOnly ?? false],
  );
  return rows[0]?.n ?? 0;
}

/** SECURITY DEFINER functions in our schemas that anon or authenticated may execute. */
function securityDefinerFunctionsExecutableByClients(client: Queryable) {
  return column(
    client,
    `select ${FUNCTION_NAME} || ' by ' || r.rolname as item
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
      cross join unnest(array['anon', 'authenticated']) as r(rolname)
      where n.nspname = any ($1)
        and ${NOT_FROM_EXTENSION}
        and p.prosecdef
        and has_function_privilege(r.rolname, p.oid, 'execute')
      order by 1`,
    [OWN_SCHEMAS],
  );
}

/**
 * (table, how, function) for every function a table's CHECK constraints, column defaults or
 * index expressions call. PostgreSQL checks EXECUTE on these for the role that writes the row.
 */
const WRITE_EXPRESSION_FUNCTIONS = `
  select c.conrelid as relid, format('constraint %I', c.conname) as via, d.refobjid as fn
    from pg_constraint c
    join pg_depend d on d.classid = 'pg_constraint'::regclass and d.objid = c.oid
   where c.contype = 'c' and d.refclassid = 'pg_proc'::regclass
  union all
  select ad.adrelid, format('default of %I', a.attname), d.refobjid
    from pg_attrdef ad
    join pg_attribute a on a.attrelid = ad.adrelid and a.attnum = ad.adnum
    join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid
   where d.refclassid = 'pg_proc'::regclass
  union all
  select i.indrelid, format('index %I', ic.relname), d.refobjid
    from pg_index i
    join pg_class ic on ic.oid = i.indexrelid
    join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = i.indexrelid
   where d.refclassid = 'pg_proc'::regclass`;

/** Whether role r.rolname may INSERT into or UPDATE some column of the table with oid `relid`. */
const ROLE_WRITES = (relid: string) =>
  `(has_table_privilege(r.rolname, ${relid}, 'INSERT') or has_any_column_privilege(r.rolname, ${relid}, 'UPDATE'))`;

/** Every (private function, API role) pair where the role may execute the function. */
function privateFunctionGrants(client: Queryable) {
  return column(
    client,
    `select ${FUNCTION_NAME} || ' by ' || r.rolname as item
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
      cross join unnest($1::text[]) as r(rolname)
      where n.nspname = 'private'
        and ${NOT_FROM_EXTENSION}
        and has_function_privilege(r.rolname, p.oid, 'execute')
      order by 1`,
    [API_ROLES],
  );
}

/**
 * Private functions an API role may execute without needing to. The one need: a SECURITY
 * INVOKER function that a write-time expression (check constraint, default, index) of a table
 * the role may write calls, because PostgreSQL evaluates those with the writer's rights. Anything
 * else — a SECURITY DEFINER function, a grant to a role that cannot write the table, a function
 * left to PUBLIC — is an offender.
 */
function unneededPrivateFunctionGrants(client: Queryable) {
  return column(
    client,
    `with write_expression_functions as (${WRITE_EXPRESSION_FUNCTIONS})
     select ${FUNCTION_NAME} || ' by ' || r.rolname as item
       from pg_proc p
       join pg_namespace n on n.oid = p.pronamespace
      cross join unnest($1::text[]) as r(rolname)
      where n.nspname = 'private'
        and ${NOT_FROM_EXTENSION}
        and has_function_privilege(r.rolname, p.oid, 'execute')
        and not (
          not p.prosecdef
          and exists (select 1 from write_expression_functions e where e.fn = p.oid and ${
      ROLE_WRITES('e.relid')
    })
        )
      order by 1`,
    [API_ROLES],
  );
}

/**
 * Functions that a table's write-time expressions call, which an API role allowed to INSERT or
 * UPDATE that table may not execute: every such write would fail with 42501.
 */
function writeExpressionFunctionsNotExecutableByWriters(client: Queryable) {
  return column(
    client,
    `with write_expression_functions as (${WRITE_EXPRESSION_FUNCTIONS})
     select format('%I.%I %s calls %s, which %s may not execute',
                   tn.nspname, t.relname, e.via, ${FUNCTION_NAME}, r.rolname) as item
       from write_expression_functions e
       join pg_class t on t.oid = e.relid
       join pg_namespace tn on tn.oid = t.relnamespace
       join pg_proc p on p.oid = e.fn
       join pg_namespace n on n.oid = p.pronamespace
      cross join unnest($2::text[]) as r(rolname)
      where tn.nspname = any ($1)
        and ${ROLE_WRITES('t.oid')}
        and not has_function_privilege(r.rolname, p.oid, 'EXECUTE')
      order by 1`,
    [OWN_SCHEMAS, API_ROLES],
  );
}

/** Tables (plain or partitioned) in our schemas with row level security off (splinter: rls_disabled_in_public). */
function tablesWithoutRls(client: Queryable) {
  return column(
    client,
    `select format('%I.%I', n.nspname, c.relname) as item
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = any ($1)
        and c.relkind in ('r', 'p')
        and not c.relrowsecurity
      order by 1`,
    [OWN_SCHEMAS],
  );
}

/** Tables in public that have policies which do nothing because RLS is off (splinter: policy_exists_rls_disabled). */
function publicTablesWithPoliciesButRlsOff(client: Queryable) {
  return column(
    client,
    `select distinct format('%I.%I', n.nspname, c.relname) as item
       from pg_policy pol
       join pg_class c on c.oid = pol.polrelid
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public'
        and not c.relrowsecurity
      order by 1`,
  );
}

/** Views in exposed schemas that read auth.users directly (splinter: auth_users_exposed). */
function exposedViewsOfAuthUsers(client: Queryable) {
  return column(
    client,
    `select distinct format('%I.%I', n.nspname, v.relname) as item
       from pg_depend d
       join pg_rewrite r on r.oid = d.objid
       join pg_class v on v.oid = r.ev_class
       join pg_namespace n on n.oid = v.relnamespace
      where d.classid = 'pg_rewrite'::regclass
        and d.refclassid = 'pg_class'::regclass
        and d.refobjid = 'auth.users'::regclass
        and v.relkind in ('v', 'm')
        and n.nspname = any ($1)
      order by 1`,
    [EXPOSED_SCHEMAS],
  );
}

/** Policies whose expressions trust user-editable metadata (splinter: rls_references_user_metadata). */
function policiesReferencingUserMetadata(client: Queryable) {
  return column(
    client,
    `select format('%I.%I: %s', schemaname, tablename, policyname) as item
       from pg_policies
      where concat_ws(' ', qual, with_check) ~* '(raw_)?user_meta_?data'
      order by 1`,
  );
}

/** (role, privilege) pairs an API role holds on schema private. */
function apiRolePrivilegesOnPrivate(client: Queryable) {
  return column(
    client,
    `select r.rolname || ' has ' || lower(priv.name) as item
       from unnest($1::text[]) as r(rolname)
      cross join unnest(array['USAGE', 'CREATE']) as priv(name)
      where has_schema_privilege(r.rolname, 'private', priv.name)
      order by 1`,
    [API_ROLES],
  );
}

interface TriggerShape {
  timing: string;
  events: string[];
  level: string;
  enabled: string;
  function: string;
  securityDefiner: boolean;
  owner: string;
  ownerIsSuperuser: boolean;
}

/** The auth.users trigger of layer 1 and its function, described from the catalog. */
async function describeAuthUsersTrigger(client: Queryable): Promise<TriggerShape[]> {
  const { rows } = await client.query<TriggerShape>(
    `select case when t.tgtype & 2 <> 0 then 'BEFORE'
                 when t.tgtype & 64 <> 0 then 'INSTEAD OF'
                 else 'AFTER' end as timing,
            array_remove(array[
              case when t.tgtype & 4 <> 0 then 'INSERT' end,
              case when t.tgtype & 8 <> 0 then 'DELETE' end,
              case when t.tgtype & 16 <> 0 then 'UPDATE' end,
              case when t.tgtype & 32 <> 0 then 'TRUNCATE' end], null) as events,
            case when t.tgtype & 1 <> 0 then 'ROW' else 'STATEMENT' end as level,
            t.tgenabled::text as enabled,
            ${FUNCTION_NAME} as function,
            p.prosecdef as "securityDefiner",
            o.rolname as owner,
            o.rolsuper as "ownerIsSuperuser"
       from pg_trigger t
       join pg_proc p on p.oid = t.tgfoid
       join pg_namespace n on n.oid = p.pronamespace
       join pg_roles o on o.oid = p.proowner
      where t.tgrelid = 'auth.users'::regclass
        and t.tgname = 'users_ensure_profile'
        and not t.tgisinternal`,
  );
  return rows;
}

/** Runs hostile DDL and then the lint in one transaction that always rolls back. */
function withBadObjects<T>(ddl: string, lint: (client: Queryable) => Promise<T>): Promise<T> {
  return db().withTransaction(async (client) => {
    await client.query(ddl);
    return await lint(client);
  });
}

/**
 * What a list-returning lint finds after the hostile DDL that it did not find before, in one
 * transaction that always rolls back: the control then holds whether or not the real schema is
 * clean (the real check reports that).
 */
function newFindings(
  ddl: string,
  lint: (client: Queryable) => Promise<string[]>,
): Promise<string[]> {
  return db().withTransaction(async (client) => {
    const before = new Set(await lint(client));
    await client.query(ddl);
    return (await lint(client)).filter((item) => !before.has(item));
  });
}

// ============================================================================
// Checks
// ============================================================================

describe('functions pin search_path to empty', () => {
  it('every function in public and private has search_path="" in its configuration', async () => {
    expect(await functionCount(db().admin)).toBeGreaterThan(0);
    expect(await functionsWithMutableSearchPath(db().admin)).toEqual([]);
  });

  it('every SECURITY DEFINER function in public and private has search_path="" in its configuration', async () => {
    expect(await functionCount(db().admin, { securityDefinerOnly: true })).toBeGreaterThan(0);
    expect(await functionsWithMutableSearchPath(db().admin, { securityDefinerOnly: true })).toEqual(
      [],
    );
  });

  it('flags a function without search_path and one with a non-empty search_path (control)', async () => {
    const offenders = await newFindings(
      `create function public.lint_no_search_path() returns int language sql security definer as 'select 1';
       create function private.lint_public_search_path(a text) returns text language sql
         set search_path = public as 'select a';`,
      (client) => functionsWithMutableSearchPath(client),
    );
    expect(offenders).toEqual([
      'private.lint_public_search_path(a text)',
      'public.lint_no_search_path()',
    ]);
  });

  it('flags only the SECURITY DEFINER one when asked for SECURITY DEFINER functions (control)', async () => {
    const offenders = await newFindings(
      `create function public.lint_no_search_path() returns int language sql security definer as 'select 1';
       create function private.lint_public_search_path(a text) returns text language sql
         set search_path = public as 'select a';`,
      (client) => functionsWithMutableSearchPath(client, { securityDefinerOnly: true }),
    );
    expect(offenders).toEqual(['public.lint_no_search_path()']);
  });

  it('ignores the functions of an extension installed in public, although none of them pin search_path (control)', async () => {
    const result = await db().withTransaction(async (client) => {
      const before = await functionsWithMutableSearchPath(client);
      await client.query('create extension citext schema public');
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n
           from pg_depend d
           join pg_extension e on e.oid = d.refobjid
           join pg_proc p on p.oid = d.objid
          where e.extname = 'citext' and d.classid = 'pg_proc'::regclass and d.deptype = 'e'
            and p.pronamespace = 'public'::regnamespace and p.proconfig is null`,
      );
      return {
        unpinnedExtensionFunctions: rows[0]?.n ?? 0,
        before,
        after: await functionsWithMutableSearchPath(client),
      };
    });
    expect(result.unpinnedExtensionFunctions).toBeGreaterThan(0);
    expect(result.after).toEqual(result.before);
  });
});

describe('function privileges', () => {
  it('no SECURITY DEFINER function in public or private is executable by anon or authenticated', async () => {
    expect(await securityDefinerFunctionsExecutableByClients(db().admin)).toEqual([]);
  });

  it('flags a SECURITY DEFINER function left executable through the default PUBLIC grant (control)', async () => {
    const offenders = await newFindings(
      `create function public.lint_definer() returns int language sql security definer
         set search_path = '' as 'select 1';`,
      securityDefinerFunctionsExecutableByClients,
    );
    expect(offenders).toEqual([
      'public.lint_definer() by anon',
      'public.lint_definer() by authenticated',
    ]);
  });

  it('no function in private is executable by an API role unless a write-time expression of a table that role writes needs it', async () => {
    expect(await unneededPrivateFunctionGrants(db().admin)).toEqual([]);
  });

  it('grants API roles execute on exactly four private functions: the validators the user_profiles check constraints call, to the two roles that write profiles', async () => {
    expect(await privateFunctionGrants(db().admin)).toEqual([
      'private.is_valid_avatar_url(p_avatar_url text) by authenticated',
      'private.is_valid_avatar_url(p_avatar_url text) by service_role',
      'private.is_valid_created_via(p_created_via text) by authenticated',
      'private.is_valid_created_via(p_created_via text) by service_role',
      'private.is_valid_profile_metadata(p_metadata jsonb) by authenticated',
      'private.is_valid_profile_metadata(p_metadata jsonb) by service_role',
      'private.is_valid_username(p_username text) by authenticated',
      'private.is_valid_username(p_username text) by service_role',
    ]);
  });

  it('flags a private function granted to service_role and one left to PUBLIC (control)', async () => {
    const offenders = await newFindings(
      `create function private.lint_granted() returns int language sql set search_path = '' as 'select 1';
       revoke execute on function private.lint_granted() from public;
       grant execute on function private.lint_granted() to service_role;
       create function private.lint_default() returns int language sql set search_path = '' as 'select 1';`,
      unneededPrivateFunctionGrants,
    );
    expect(offenders).toEqual([
      'private.lint_default() by anon',
      'private.lint_default() by authenticated',
      'private.lint_default() by service_role',
      'private.lint_granted() by service_role',
    ]);
  });

  it('flags a constraint validator granted to a role that cannot write the table, or made SECURITY DEFINER, but not one granted to the writer (control)', async () => {
    const offenders = await newFindings(
      `create function private.lint_invoker_check(v text) returns boolean language sql immutable
         set search_path = '' as 'select true';
       create function private.lint_definer_check(v text) returns boolean language sql immutable security definer
         set search_path = '' as 'select true';
       revoke execute on function private.lint_invoker_check(text), private.lint_definer_check(text) from public;
       create table public.lint_checked (
         v text check (private.lint_invoker_check(v)) check (private.lint_definer_check(v)));
       revoke all on table public.lint_checked from public, anon, authenticated, service_role;
       grant insert on table public.lint_checked to service_role;
       grant execute on function private.lint_invoker_check(text), private.lint_definer_check(text)
         to anon, service_role;`,
      unneededPrivateFunctionGrants,
    );
    expect(offenders).toEqual([
      'private.lint_definer_check(v text) by anon',
      'private.lint_definer_check(v text) by service_role',
      'private.lint_invoker_check(v text) by anon',
    ]);
  });
});

describe('expressions evaluated when an API role writes a table', () => {
  it('call only functions that every API role allowed to write the table may execute', async () => {
    expect(await writeExpressionFunctionsNotExecutableByWriters(db().admin)).toEqual([]);
  });

  it('flags a check constraint, a default and an index calling private functions the writer cannot execute (control)', async () => {
    const offenders = await newFindings(
      `create function private.lint_check(v text) returns boolean language sql immutable
         set search_path = '' as 'select true';
       create function private.lint_default() returns text language sql set search_path = '' as 'select ''x''';
       create function private.lint_key(v text) returns text language sql immutable set search_path = '' as 'select v';
       revoke execute on function private.lint_check(text), private.lint_default(), private.lint_key(text) from public;
       create table public.lint_written (
         v text default private.lint_default() constraint lint_written_v_check check (private.lint_check(v)));
       create index lint_written_key on public.lint_written (private.lint_key(v));
       revoke all on table public.lint_written from public, anon, authenticated, service_role;
       grant insert on table public.lint_written to service_role;`,
      writeExpressionFunctionsNotExecutableByWriters,
    );
    expect(offenders).toEqual([
      'public.lint_written constraint lint_written_v_check calls private.lint_check(v text), which service_role may not execute',
      'public.lint_written default of v calls private.lint_default(), which service_role may not execute',
      'public.lint_written index lint_written_key calls private.lint_key(v text), which service_role may not execute',
    ]);
  });
});

describe('row level security', () => {
  it('is enabled on every table in public and private', async () => {
    expect(await tablesWithoutRls(db().admin)).toEqual([]);
  });

  it('flags a table created without RLS (control)', async () => {
    const offenders = await newFindings(
      'create table public.lint_no_rls (id int)',
      tablesWithoutRls,
    );
    expect(offenders).toEqual(['public.lint_no_rls']);
  });

  it('is never off on a table in public that has policies', async () => {
    expect(await publicTablesWithPoliciesButRlsOff(db().admin)).toEqual([]);
  });

  it('flags a table in public whose policy is inert because RLS is off (control)', async () => {
    const offenders = await newFindings(
      `create table public.lint_inert_policy (id int);
       create policy "everyone" on public.lint_inert_policy for select to authenticated using (true);`,
      publicTablesWithPoliciesButRlsOff,
    );
    expect(offenders).toEqual(['public.lint_inert_policy']);
  });

  it('never trusts user metadata in a policy expression', async () => {
    expect(await policiesReferencingUserMetadata(db().admin)).toEqual([]);
  });

  it('flags policies reading user_metadata from the JWT or raw_user_meta_data from auth.users (control)', async () => {
    const offenders = await newFindings(
      `create policy "jwt says admin" on public.user_profiles for select to authenticated
         using ((auth.jwt() -> 'user_metadata' ->> 'role') = 'admin');
       create policy "table says admin" on public.user_profiles for update to authenticated
         with check (exists (select 1 from auth.users u
                             where u.id = auth.uid() and u.raw_user_meta_data ->> 'role' = 'admin'));`,
      policiesReferencingUserMetadata,
    );
    expect(offenders).toEqual([
      'public.user_profiles: jwt says admin',
      'public.user_profiles: table says admin',
    ]);
  });
});

describe('exposure', () => {
  it('no view in an exposed schema selects from auth.users', async () => {
    expect(await exposedViewsOfAuthUsers(db().admin)).toEqual([]);
  });

  it('flags a view and a materialized view in public over auth.users (control)', async () => {
    const offenders = await newFindings(
      `create view public.lint_users as select id, email from auth.users;
       create materialized view public.lint_users_snapshot as select id from auth.users;`,
      exposedViewsOfAuthUsers,
    );
    expect(offenders).toEqual(['public.lint_users', 'public.lint_users_snapshot']);
  });

  it('gives anon, authenticated and service_role no privilege on schema private', async () => {
    expect(await apiRolePrivilegesOnPrivate(db().admin)).toEqual([]);
  });

  it('flags USAGE on private granted to an API role, directly or through PUBLIC (control)', async () => {
    const offenders = await newFindings(
      `grant usage on schema private to public; grant create on schema private to service_role;`,
      apiRolePrivilegesOnPrivate,
    );
    expect(offenders).toEqual([
      'anon has usage',
      'authenticated has usage',
      'service_role has create',
      'service_role has usage',
    ]);
  });
});

describe('the layer-1 trigger on auth.users', () => {
  it('is users_ensure_profile, AFTER INSERT FOR EACH ROW, calling a SECURITY DEFINER function owned by postgres, which is not a superuser', async () => {
    expect(await describeAuthUsersTrigger(db().admin)).toEqual([
      {
        timing: 'AFTER',
        events: ['INSERT'],
        level: 'ROW',
        enabled: 'O',
        function: 'private.on_auth_user_created()',
        securityDefiner: true,
        owner: 'postgres',
        ownerIsSuperuser: false,
      },
    ]);
  });

  it('describes a trigger recreated as BEFORE UPDATE with a SECURITY INVOKER function (control)', async () => {
    const shape = await withBadObjects(
      `drop trigger users_ensure_profile on auth.users;
       create trigger users_ensure_profile before update on auth.users
         for each row execute function private.on_auth_user_created();
       alter function private.on_auth_user_created() security invoker;
       alter table auth.users disable trigger users_ensure_profile;`,
      describeAuthUsersTrigger,
    );
    expect(shape).toEqual([
      {
        timing: 'BEFORE',
        events: ['UPDATE'],
        level: 'ROW',
        enabled: 'D',
        function: 'private.on_auth_user_created()',
        securityDefiner: false,
        owner: 'postgres',
        ownerIsSuperuser: false,
      },
    ]);
  });

  it('reports no trigger when users_ensure_profile has been dropped (control)', async () => {
    const shape = await withBadObjects(
      'drop trigger users_ensure_profile on auth.users',
      describeAuthUsersTrigger,
    );
    expect(shape).toEqual([]);
  });
});
