-- The application profile: exactly one per auth user.

-- ============================================================================
-- Functions
-- ============================================================================
-- Username format, shared by the table's check constraint and by the mapping from provider
-- metadata: 3 to 39 characters (GitHub's maximum), letters, digits, '_', '.', '-', starting and
-- ending with a letter, digit or '_'. Uniqueness is case-insensitive (see the index below).
create or replace function private.is_valid_username(p_username text)
returns boolean
language sql
immutable
security invoker
set search_path = ''
as $$
  select p_username ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{1,37}[A-Za-z0-9_]$'
$$;
revoke execute on function private.is_valid_username(text) from public, anon, authenticated, service_role;

-- An avatar is an http(s) URL of sane length; anything else from a provider is dropped.
create or replace function private.is_valid_avatar_url(p_avatar_url text)
returns boolean
language sql
immutable
security invoker
set search_path = ''
as $$
  select char_length(p_avatar_url) <= 2048 and p_avatar_url ~ '^https?://[^[:space:]]+$'
$$;
revoke execute on function private.is_valid_avatar_url(text) from public, anon, authenticated, service_role;

-- ============================================================================
-- Tables
-- ============================================================================
create table if not exists public.user_profiles (
  user_id uuid not null
    constraint user_profiles_pkey primary key
    constraint user_profiles_user_id_fkey references auth.users (id) on delete cascade,
  email text,
  full_name text
    constraint user_profiles_full_name_check check (char_length(full_name) <= 200),
  username text
    constraint user_profiles_username_check check (private.is_valid_username(username)),
  avatar_url text
    constraint user_profiles_avatar_url_check check (private.is_valid_avatar_url(avatar_url)),
  metadata jsonb not null default '{}'::jsonb
    constraint user_profiles_metadata_check
      check (jsonb_typeof(metadata) = 'object' and octet_length(metadata::text) <= 16384),
  created_via text not null
    constraint user_profiles_created_via_check
      check (created_via in ('trigger', 'register', 'ensure', 'webhook', 'backfill')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.user_profiles enable row level security;

comment on table public.user_profiles is 'Application profile, one per auth.users row; created by the profile system, never by the browser.';
comment on column public.user_profiles.created_via is 'Which layer created the row: trigger, register, ensure, webhook or backfill.';

create unique index if not exists user_profiles_username_key on public.user_profiles (lower(username));

-- ============================================================================
-- Triggers
-- ============================================================================
drop trigger if exists user_profiles_set_updated_at on public.user_profiles;
create trigger user_profiles_set_updated_at
  before update on public.user_profiles
  for each row execute function private.set_updated_at();

-- ============================================================================
-- Policies
-- ============================================================================
-- Reads and updates only; inserts and deletes belong to the service role (which bypasses RLS)
-- and to the database's own functions.
drop policy if exists "Users can read their own profile" on public.user_profiles;
create policy "Users can read their own profile"
  on public.user_profiles for select
  to authenticated
  using ((select auth.uid()) = user_id);

drop policy if exists "Users can update their own profile" on public.user_profiles;
create policy "Users can update their own profile"
  on public.user_profiles for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

-- ============================================================================
-- Grants
-- ============================================================================
-- Supabase's default privileges gave everything to the API roles; take it back, then grant on
-- purpose. Column-level UPDATE keeps user_id, email and created_via out of a user's reach.
revoke all on table public.user_profiles from public, anon, authenticated, service_role;
grant select on table public.user_profiles to authenticated;
grant update (full_name, username, avatar_url, metadata) on table public.user_profiles to authenticated;
grant select, insert, update, delete on table public.user_profiles to service_role;

-- The check constraints above call these validators with the rights of whoever writes the row,
-- so the roles allowed to write profiles must be able to execute them. They are pure, security
-- invoker and read nothing; without USAGE on schema private nobody can call them by name.
grant execute on function private.is_valid_username(text) to authenticated, service_role;
grant execute on function private.is_valid_avatar_url(text) to authenticated, service_role;
