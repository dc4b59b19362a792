-- The schema of Supabase's user-management quickstart as a project has it, plus one table that
-- points at it (posts.author_id), run as `postgres` like the SQL editor: the profiles table with
-- its three policies and the handle_new_user trigger on auth.users. The API roles' grants come
-- from Supabase's default privileges for postgres, as on a project.
create table public.profiles (
  id uuid references auth.users not null primary key,
  updated_at timestamp with time zone,
  username text unique,
  full_name text,
  avatar_url text,
  website text,

  constraint username_length check (char_length(username) >= 3)
);
alter table public.profiles enable row level security;

create policy "Public profiles are viewable by everyone." on public.profiles
  for select using (true);
create policy "Users can insert their own profile." on public.profiles
  for insert with check ((select auth.uid()) = id);
create policy "Users can update own profile." on public.profiles
  for update using ((select auth.uid()) = id);

create function public.handle_new_user()
returns trigger
set search_path = ''
as $$
begin
  insert into public.profiles (id, full_name, avatar_url)
  values (new.id, new.raw_user_meta_data->>'full_name', new.raw_user_meta_data->>'avatar_url');
  return new;
end;
$$ language plpgsql security definer;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute procedure public.handle_new_user();

create table public.posts (
  id bigint generated always as identity primary key,
  author_id uuid not null references public.profiles (id),
  title text not null
);
alter table public.posts enable row level security;
create policy "Posts are viewable by everyone." on public.posts for select using (true);
create index posts_author_id_idx on public.posts (author_id);
