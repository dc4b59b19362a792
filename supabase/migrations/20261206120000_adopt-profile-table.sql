-- Adoption: the guarantee over a profile table the app already has (docs/DEPLOYMENT.md §5.1.1).
--
-- Most projects have Supabase's user-management quickstart table, public.profiles (id, updated_at,
-- username, full_name, avatar_url, website), with its policies, its handle_new_user trigger and
-- other tables' foreign keys to profiles(id). private.adopt_profile_table makes that table the
-- profile table of every layer, in one transaction:
--   * public.user_profiles (this product's default table) becomes a view of the app's table under
--     the product's column names, so every reader (ensure_user_profile, health, census,
--     reconciler, username checks, the client kit) works unchanged. A product column the app's
--     table lacks is a constant in the view (email, metadata, created_via, created_at: nothing
--     new is stored, so nothing new can be exposed by the app's own select policy);
--   * the functions that insert profiles (create_profile, the auth.users trigger, the backfill)
--     are generated once for the app's table and its columns: the signup path stays two static
--     statements, with no dynamic SQL per row. Generated from the installed definitions by
--     rewriting their INSERT statements, so a definition that no longer has the expected shape is
--     an error here, never a silently stale copy;
--   * the app's old trigger is retired after ours is in place (same transaction, so no signup
--     sees neither or both), its INSERT policies are replaced by one that admits only an upsert of
--     the user's own existing row (the browser never creates profiles), every other policy,
--     foreign key and index of the app is left as it was;
--   * the profiles of users who have none are backfilled.
-- private.unadopt_profile_table puts the retired trigger and policies back and removes what
-- adoption added; supabase/rollback/rollback.sql calls it first.

-- ============================================================================
-- Tables
-- ============================================================================
-- What adoption changed, so it can be undone exactly: at most one row.
create table if not exists private.profile_adoption (
  id boolean primary key default true constraint profile_adoption_single_row check (id),
  profile_table regclass not null,
  key_column name not null,
  columns jsonb not null,
  retired_trigger text,
  dropped_policies text[] not null default '{}',
  created_index name,
  adopted_at timestamptz not null default now()
);
alter table private.profile_adoption enable row level security;
revoke all on table private.profile_adoption from public, anon, authenticated, service_role;

comment on table private.profile_adoption is
  'The app table adopted as the profile table, and what adoption retired, to undo it exactly.';

-- ============================================================================
-- Functions
-- ============================================================================
-- The product's profile columns in the order of public.user_profiles, with the type an app column
-- needs to stand for each and the constant that stands in when the app has none.
create or replace function private.profile_columns()
returns table (o_name text, o_type text, o_absent text)
language sql
immutable
security invoker
set search_path = ''
as $$
  values ('user_id', 'uuid', null),
         ('email', 'text', 'null::text'),
         ('full_name', 'text', 'null::text'),
         ('username', 'text', 'null::text'),
         ('avatar_url', 'text', 'null::text'),
         ('metadata', 'jsonb', '''{}''::jsonb'),
         ('created_via', 'text', 'null::text'),
         ('created_at', 'timestamp with time zone', 'null::timestamptz'),
         ('updated_at', 'timestamp with time zone', 'null::timestamptz')
$$;
revoke execute on function private.profile_columns() from public, anon, authenticated, service_role;

-- Rewrites every `insert into public.user_profiles (user_id, email, …, created_via)` of p_source
-- (VALUES or SELECT form, the seven expressions in that order) into an insert of the mapped
-- columns of the adopted table. p_columns maps product column to app column. Raises when
-- p_source has none: the installed definition changed shape and needs this rewrite updated.
create or replace function private.rewrite_profile_inserts(p_source text, p_table regclass, p_columns jsonb)
returns text
language plpgsql
immutable
security invoker
set search_path = ''
as $$
declare
  v_pattern constant text :=
    'insert\s+?into\s+public\.user_profiles\s*\(\s*user_id\s*,\s*email\s*,\s*full_name\s*,\s*username\s*,'
    || '\s*avatar_url\s*,\s*metadata\s*,\s*created_via\s*\)\s*(values\s*\(|select\s+)'
    || '([^,;()]+?),\s*([^,;()]+?),\s*([^,;()]+?),\s*([^,;()]+?),\s*([^,;()]+?),\s*([^,;()]+?),\s*([^,;()]+?)'
    || '(\)|\s+(?:where|from)\M)';
  v_names constant text[] := array['user_id', 'email', 'full_name', 'username', 'avatar_url', 'metadata', 'created_via'];
  v_result text := p_source;
  v_match text[];
  v_whole text;
  v_columns text[];
  v_values text[];
  v_count integer := 0;
begin
  loop
    v_whole := substring(v_result from '(?i)(' || v_pattern || ')');
    exit when v_whole is null;
    v_match := regexp_match(v_whole, '(?i)' || v_pattern);
    v_columns := '{}';
    v_values := '{}';
    for i in 1 .. 7 loop
      if p_columns ? v_names[i] then
        v_columns := v_columns || quote_ident(p_columns ->> v_names[i]);
        v_values := v_values || v_match[i + 1];
      end if;
    end loop;
    v_result := overlay(v_result placing
      'insert into ' || p_table::text || ' (' || array_to_string(v_columns, ', ') || ') '
      || case when v_match[1] ~* '^values' then 'values (' else 'select ' end
      || array_to_string(v_values, ', ') || v_match[9]
      from strpos(v_result, v_whole) for char_length(v_whole));
    v_count := v_count + 1;
  end loop;
  if v_count = 0 then
    raise exception 'no insert into public.user_profiles of the expected shape to rewrite'
      using errcode = 'UP500', hint = 'private.adopt_profile_table needs updating for this definition.';
  end if;
  return v_result;
end;
$$;
revoke execute on function private.rewrite_profile_inserts(text, regclass, jsonb)
  from public, anon, authenticated, service_role;

-- regexp_replace that must replace at least once (see rewrite_profile_inserts).
create or replace function private.rewrite_required(p_source text, p_pattern text, p_replacement text)
returns text
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  if p_source !~* p_pattern then
    raise exception 'no % to rewrite', p_pattern
      using errcode = 'UP500', hint = 'private.adopt_profile_table needs updating for this definition.';
  end if;
  return regexp_replace(p_source, p_pattern, p_replacement, 'gi');
end;
$$;
revoke execute on function private.rewrite_required(text, text, text)
  from public, anon, authenticated, service_role;

-- The deleted-profile note of the census and the audit of the functions' direct inserts serve an
-- adopted table too: the trigger passes the key column's name (the default table's passes
-- nothing, and the key is user_id), and on an adopted table, which has no created_via, the layer
-- comes from the fallback's x-profile-created-via header (shared/profile-service.ts). New bodies
-- of 20261205100000's and 20261205120000's functions (supabase/schemas/07_census.sql, 03_audit.sql).
create or replace function private.on_profile_deleted()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
begin
  if tg_nargs = 0 then
    v_user_id := old.user_id;
  else
    v_user_id := (to_jsonb(old) ->> tg_argv[0])::uuid;
  end if;
  if exists (select 1 from auth.users u where u.id = v_user_id) then
    insert into private.missing_profiles (user_id, found_by) values (v_user_id, 'profile_deleted')
    on conflict (user_id) do nothing;
  end if;
  return null;
end;
$$;
revoke execute on function private.on_profile_deleted() from public, anon, authenticated, service_role;

create or replace function private.on_profile_inserted_directly()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_source text;
  v_headers jsonb;
begin
  begin
    if tg_nargs = 0 then
      v_user_id := new.user_id;
      v_source := new.created_via;
    else
      v_user_id := (to_jsonb(new) ->> tg_argv[0])::uuid;
    end if;
    v_headers := nullif(current_setting('request.headers', true), '')::jsonb;
    if tg_nargs > 0 then
      v_source := v_headers ->> 'x-profile-created-via';
      if v_source is null or not private.is_valid_created_via(v_source) then
        v_source := 'ensure';
      end if;
    end if;
    if tg_when = 'AFTER' then
      perform private.record_profile_outcome(v_user_id, v_source, 'created', statement_timestamp(),
                                             null, 1, left(v_headers ->> 'x-profile-request-id', 200),
                                             '{"via": "direct_insert"}');
    elsif exists (select 1 from public.user_profiles p where p.user_id = v_user_id) then
      perform private.record_profile_outcome(v_user_id, v_source, 'existed', statement_timestamp(),
                                             null, 1, left(v_headers ->> 'x-profile-request-id', 200),
                                             '{"via": "direct_insert"}');
    end if;
  exception when others then
    raise warning 'could not audit the direct insert of the profile of user %: % (SQLSTATE %)',
      v_user_id, sqlerrm, sqlstate;
  end;
  if tg_when = 'BEFORE' then
    return new;
  end if;
  return null;
end;
$$;
revoke execute on function private.on_profile_inserted_directly()
  from public, anon, authenticated, service_role;

-- Adopts p_table (a table name) as the profile table. p_key is its uuid key (primary key or unique; the auth
-- user's id). p_columns maps product columns to app columns ({"full_name": "name"}; null: not
-- mapped); a product column it does not name maps to the app column of the same name and type,
-- if there is one. p_retire_trigger is the app's own profile trigger on auth.users, if any.
-- p_backfill creates the missing profiles in this transaction (false on a large project: run the
-- backfill afterwards, docs/DEPLOYMENT.md §5.1.1). Returns what it did.
create or replace function private.adopt_profile_table(
  p_table text default 'public.profiles',
  p_key name default 'id',
  p_columns jsonb default '{}',
  p_retire_trigger name default 'on_auth_user_created',
  p_backfill boolean default true
)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_table regclass := to_regclass(p_table);
  v_columns jsonb := '{}';
  v_column record;
  v_app_column text;
  v_app_type text;
  v_projection text[] := '{}';
  v_unmapped text[] := '{}';
  v_required text[];
  v_signatures text[];
  v_definitions text[];
  v_source text;
  v_retired text;
  v_policies text[] := '{}';
  v_policy record;
  v_index name;
  v_moved bigint := 0;
  v_backfill jsonb;
  v_created bigint := 0;
  v_after uuid;
begin
  if p_table is null or p_key is null or p_columns is null or jsonb_typeof(p_columns) <> 'object' then
    raise exception 'p_table, p_key and p_columns (a JSON object) are required' using errcode = '22023';
  end if;
  if v_table is null then
    raise exception 'p_table % does not exist', p_table using errcode = '22023';
  end if;
  if (select c.relkind from pg_catalog.pg_class c where c.oid = v_table) not in ('r', 'p') then
    raise exception 'p_table % is not a table', v_table using errcode = '22023';
  end if;
  if v_table = 'public.user_profiles'::regclass then
    raise exception 'p_table is the default profile table already' using errcode = '22023';
  end if;
  if (select pg_catalog.format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_attribute a
      where a.attrelid = v_table and a.attname = p_key and a.attnum > 0 and not a.attisdropped) is distinct from 'uuid' then
    raise exception 'p_key % must be a uuid column of %', p_key, v_table using errcode = '22023';
  end if;
  if not exists (
    select 1 from pg_catalog.pg_index i
    where i.indrelid = v_table and i.indisunique and i.indnkeyatts = 1 and i.indpred is null
      and i.indexprs is null
      and i.indkey[0] = (select a.attnum from pg_catalog.pg_attribute a where a.attrelid = v_table and a.attname = p_key)
  ) then
    raise exception 'p_key % must be the primary key (or a unique column) of %', p_key, v_table using errcode = '22023';
  end if;

  -- The mapping: explicit names first, then same-named columns of the right type.
  for v_column in select * from private.profile_columns() loop
    if v_column.o_name = 'user_id' then
      v_app_column := p_key;
    elsif p_columns ? v_column.o_name then
      v_app_column := p_columns ->> v_column.o_name;
    else
      v_app_column := v_column.o_name;
    end if;
    v_app_type := case when v_app_column is null then null else (
      select pg_catalog.format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_attribute a
      where a.attrelid = v_table and a.attname = v_app_column and a.attnum > 0 and not a.attisdropped) end;
    if p_columns ->> v_column.o_name is not null and v_app_type is distinct from v_column.o_type then
      raise exception 'p_columns.% names %, which must be a % column of %', v_column.o_name, v_app_column,
        v_column.o_type, v_table using errcode = '22023';
    end if;
    if v_app_type = v_column.o_type then
      v_columns := v_columns || jsonb_build_object(v_column.o_name, v_app_column);
      v_projection := v_projection || (quote_ident(v_app_column) || ' as ' || v_column.o_name);
    else
      v_projection := v_projection || (v_column.o_absent || ' as ' || v_column.o_name);
      v_unmapped := v_unmapped || v_column.o_name;
    end if;
  end loop;

  -- A column the profile system would leave empty but the app requires makes every creation fail.
  select array_agg(a.attname order by a.attnum) into v_required
  from pg_catalog.pg_attribute a
  where a.attrelid = v_table and a.attnum > 0 and not a.attisdropped and a.attnotnull and not a.atthasdef
    and a.attidentity = '' and a.attgenerated = ''
    and not exists (select 1 from jsonb_each_text(v_columns) m where m.value = a.attname);
  if v_required is not null then
    raise exception 'columns % of % are NOT NULL without a default and map to no profile column', v_required, v_table
      using errcode = '22023', hint = 'Give them a default, or map them with p_columns.';
  end if;

  -- Auth's writes to auth.users (signups, the last_sign_in_at of a sign-in) wait for this
  -- transaction; reads do not until the old trigger is dropped at the end. A signup taking
  -- auth.users's lock before ours on public.user_profiles, and we the other way round, would
  -- deadlock, and the victim could be the signup: taken before anything else is locked.
  lock table auth.users in share row exclusive mode;
  lock table public.user_profiles in access exclusive mode;
  -- Looked at under the locks: a second adoption racing this one waits here and then sees it.
  if exists (select 1 from private.profile_adoption a where a.id) then
    raise exception 'a profile table is already adopted: %', (select a.profile_table from private.profile_adoption a where a.id)
      using errcode = '22023', hint = 'Undo it first with private.unadopt_profile_table().';
  end if;

  -- Rows the default table got between the migrations and this call (our trigger ran beside the
  -- app's) move to the app's table when it has none for that user.
  if (select c.relkind from pg_catalog.pg_class c where c.oid = 'public.user_profiles'::regclass) <> 'r' then
    raise exception 'public.user_profiles is not the default table' using errcode = '22023';
  end if;
  execute private.rewrite_profile_inserts(
    'insert into public.user_profiles (user_id, email, full_name, username, avatar_url, metadata, created_via) '
    || 'select p.user_id, p.email, p.full_name, p.username, p.avatar_url, p.metadata, p.created_via from public.user_profiles p '
    || 'on conflict do nothing', v_table, v_columns);
  get diagnostics v_moved = row_count;

  -- Capture every definition that names the default table before it goes (create_profile, whose
  -- result type it is, goes with it), then put the view in its place.
  select array_agg(p.oid::regprocedure::text), array_agg(pg_catalog.pg_get_functiondef(p.oid))
    into v_signatures, v_definitions
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('public', 'private') and p.prosrc like '%public.user_profiles%'
      and p.oid <> 'private.adopt_profile_table(text, name, jsonb, name, boolean)'::regprocedure
      and p.oid <> 'private.rewrite_profile_inserts(text, regclass, jsonb)'::regprocedure;

  drop table public.user_profiles cascade;
  execute format('create view public.user_profiles with (security_invoker = true) as select %s from %s',
                 array_to_string(v_projection, ', '), v_table);
  comment on view public.user_profiles is
    'The adopted profile table under the profile system''s column names (private.profile_adoption).';
  revoke all on table public.user_profiles from public, anon, authenticated, service_role;
  -- As on the default table: service_role's insert is the functions' direct-insert fallback.
  grant select on table public.user_profiles to authenticated;
  grant select, insert, update, delete on table public.user_profiles to service_role;
  if exists (select 1 from jsonb_object_keys(v_columns) k where k in ('full_name', 'username', 'avatar_url', 'metadata')) then
    execute format('grant update (%s) on table public.user_profiles to authenticated',
      (select string_agg(k, ', ') from jsonb_object_keys(v_columns) k where k in ('full_name', 'username', 'avatar_url', 'metadata')));
  end if;

  for i in 1 .. cardinality(v_signatures) loop
    v_source := v_definitions[i];
    if v_signatures[i] = 'private.create_profile(uuid,text,text,jsonb)' then
      v_source := private.rewrite_profile_inserts(v_source, v_table, v_columns);
      v_source := private.rewrite_required(v_source, 'on\s+conflict\s*\(\s*user_id\s*\)', 'on conflict (' || quote_ident(p_key) || ')');
      v_source := private.rewrite_required(v_source, 'returning\s+\*\s+into\s+o_profile',
        'returning ' || replace(array_to_string(v_projection, ', '), '\', '\\') || ' into o_profile');
    elsif v_signatures[i] in ('private.on_auth_user_created()') then
      v_source := private.rewrite_profile_inserts(v_source, v_table, v_columns);
    elsif v_signatures[i] = 'public.backfill_missing_profiles(integer,uuid,boolean)' then
      v_source := private.rewrite_profile_inserts(v_source, v_table, v_columns);
      v_source := private.rewrite_required(v_source, 'on\s+conflict\s*\(\s*user_id\s*\)\s+do\s+nothing\s+returning\s+user_id',
        'on conflict (' || quote_ident(p_key) || ') do nothing returning ' || quote_ident(p_key) || ' as user_id');
    elsif not v_columns ? 'email' and v_signatures[i] in (
      'private.on_auth_user_email_changed()', 'public.sync_profile_emails(integer)',
      'public.sync_profile_emails_step(integer,boolean)') then
      -- No email column: nothing to keep in step with auth.users. The steps still answer in shape.
      v_source := regexp_replace(v_source, '\$function\$.*\$function\$', case v_signatures[i]
        when 'private.on_auth_user_email_changed()' then '$function$ begin return null; end; $function$'
        when 'public.sync_profile_emails(integer)' then '$function$ begin return 0; end; $function$'
        else '$function$ begin delete from private.email_drift; return jsonb_build_object(''ran'', true, ''noted'', 0, '
             || '''scanned'', 0, ''fixed'', 0, ''pass_completed'', true, ''duration_ms'', 0, ''email'', ''not_mapped''); end; $function$'
        end);
    end if;
    execute v_source;
  end loop;
  -- create_profile was dropped with the table: a new function is executable by PUBLIC.
  revoke execute on function private.create_profile(uuid, text, text, jsonb) from public, anon, authenticated, service_role;

  -- The census's deleted-profile note and the direct-insert audit, on the app's table.
  execute format('create trigger profile_guard_note_deleted after delete on %s for each row '
                 || 'execute function private.on_profile_deleted(%L)', v_table, p_key);
  execute format('create trigger profile_guard_audit_direct_conflict before insert on %s for each row '
                 || 'when (current_user = ''service_role'') '
                 || 'execute function private.on_profile_inserted_directly(%L)', v_table, p_key);
  execute format('create trigger profile_guard_audit_direct_insert after insert on %s for each row '
                 || 'when (current_user = ''service_role'') '
                 || 'execute function private.on_profile_inserted_directly(%L)', v_table, p_key);

  -- Username lookups (availability, lapse, backfill) compare lower(username): give them an index.
  if v_columns ? 'username' then
    v_index := left((select c.relname from pg_catalog.pg_class c where c.oid = v_table) || '_username_lower_idx', 63);
    if not exists (select 1 from pg_catalog.pg_class c where c.relname = v_index
                   and c.relnamespace = (select t.relnamespace from pg_catalog.pg_class t where t.oid = v_table)) then
      execute format('create index %I on %s (lower(%I))', v_index, v_table, v_columns ->> 'username');
    else
      v_index := null;
    end if;
  end if;

  -- Ours is in place: retire the app's trigger, keeping its definition to put it back.
  if p_retire_trigger is not null then
    select pg_catalog.pg_get_triggerdef(t.oid) into v_retired
    from pg_catalog.pg_trigger t where t.tgrelid = 'auth.users'::regclass and t.tgname = p_retire_trigger and not t.tgisinternal;
    if v_retired is not null then
      execute format('drop trigger %I on auth.users', p_retire_trigger);
    end if;
  end if;

  -- The browser never creates profiles: drop the policies that let it insert one.
  for v_policy in
    select p.polname, p.polpermissive, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check,
           coalesce((select string_agg(case when r = 0 then 'public' else quote_ident(pg_catalog.pg_get_userbyid(r)) end, ', ')
                     from unnest(p.polroles) r), 'public') as roles
    from pg_catalog.pg_policy p where p.polrelid = v_table and p.polcmd = 'a' order by p.polname
  loop
    v_policies := v_policies || format('create policy %I on %s as %s for insert to %s with check (%s)',
      v_policy.polname, v_table, case when v_policy.polpermissive then 'permissive' else 'restrictive' end,
      v_policy.roles, v_policy.with_check);
    execute format('drop policy %I on %s', v_policy.polname, v_table);
  end loop;
  -- The quickstart's Account form saves with an upsert, and PostgreSQL checks INSERT policies on
  -- the proposed row of INSERT … ON CONFLICT DO UPDATE even when it updates: without an INSERT
  -- policy every such save fails. This one admits only the own row that already exists, so an
  -- upsert still saves the profile and no browser can create one.
  if cardinality(v_policies) > 0 then
    execute format('create policy %I on %s as permissive for insert to authenticated '
                   || 'with check ((select auth.uid()) = %I and exists (select 1 from %s p where p.%I = (select auth.uid())))',
                   'Users can upsert their existing profile', v_table, p_key, v_table, p_key);
  end if;

  insert into private.profile_adoption (profile_table, key_column, columns, retired_trigger, dropped_policies, created_index)
  values (v_table, p_key, v_columns, v_retired, v_policies, v_index);

  if p_backfill then
    loop
      v_backfill := public.backfill_missing_profiles(5000, v_after);
      v_created := v_created + (v_backfill ->> 'created')::bigint;
      exit when (v_backfill ->> 'done')::boolean;
      v_after := (v_backfill ->> 'last_user_id')::uuid;
    end loop;
  end if;

  return jsonb_build_object('table', v_table::text, 'key', p_key, 'columns', v_columns, 'unmapped', to_jsonb(v_unmapped),
                            'retired_trigger', p_retire_trigger, 'retired', v_retired is not null,
                            'dropped_policies', to_jsonb(v_policies), 'index', v_index,
                            'moved', v_moved, 'backfilled', case when p_backfill then v_created end);
end;
$$;
revoke execute on function private.adopt_profile_table(text, name, jsonb, name, boolean)
  from public, anon, authenticated, service_role;

-- Undoes adopt_profile_table on the app's side: the retired trigger and policies back as they
-- were, the index and trigger adoption added gone, the view gone. The app's rows stay, including
-- the profiles created since (deleting them would take users' profiles and the rows that refer to
-- them). Meant as the first step of supabase/rollback/rollback.sql, which then removes the
-- profile system's functions: those that read public.user_profiles have nothing left to read.
create or replace function private.unadopt_profile_table()
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_adoption private.profile_adoption;
  v_policy text;
begin
  select * into v_adoption from private.profile_adoption a where a.id for update;
  if not found then
    return '{"adopted": false}'::jsonb;
  end if;
  if v_adoption.retired_trigger is not null then
    execute v_adoption.retired_trigger;
  end if;
  execute format('drop policy if exists %I on %s', 'Users can upsert their existing profile', v_adoption.profile_table);
  foreach v_policy in array v_adoption.dropped_policies loop
    execute v_policy;
  end loop;
  execute format('drop trigger if exists profile_guard_note_deleted on %s', v_adoption.profile_table);
  execute format('drop trigger if exists profile_guard_audit_direct_conflict on %s', v_adoption.profile_table);
  execute format('drop trigger if exists profile_guard_audit_direct_insert on %s', v_adoption.profile_table);
  if v_adoption.created_index is not null then
    execute format('drop index if exists %I.%I',
      (select n.nspname from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where c.oid = v_adoption.profile_table), v_adoption.created_index);
  end if;
  drop function if exists private.create_profile(uuid, text, text, jsonb);
  drop view if exists public.user_profiles;
  delete from private.profile_adoption a where a.id;
  return jsonb_build_object('adopted', true, 'table', v_adoption.profile_table::text,
                            'restored_trigger', v_adoption.retired_trigger is not null,
                            'restored_policies', cardinality(v_adoption.dropped_policies));
end;
$$;
revoke execute on function private.unadopt_profile_table() from public, anon, authenticated, service_role;
