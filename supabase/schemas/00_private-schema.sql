-- The private schema and the helpers every topic reuses.
--
-- supabase/schemas/ holds the live definition of every object the migrations own, one topic per
-- file, applied in file-name order (config.toml [db.migrations] schema_paths). A migration is the
-- forward-only step that brings a database from yesterday's definition to this one;
-- tests/db/declarative-schema.test.ts builds a database from these files and proves it equal to
-- the migrated one.

-- ============================================================================
-- Schema
-- ============================================================================
-- Internal tables (audit, repair queue, settings) live here: PostgREST does not expose it and
-- the API roles get no privilege on it. Only the callable surface lives in public.
create schema private;
revoke all on schema private from public, anon, authenticated, service_role;

-- ============================================================================
-- Functions
-- ============================================================================
-- Generic updated_at maintenance, reused by every table that has the column.
create or replace function private.set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke execute on function private.set_updated_at() from public, anon, authenticated, service_role;
