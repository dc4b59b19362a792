-- Which request created an auth user. register puts a random attempt id (or one derived from the
-- request's Idempotency-Key) into the signup's user metadata as "registration_attempt"; when
-- Supabase Auth later answers that the email exists (a retry after a lost answer, a concurrent
-- registration of the same address), this tells register whether the existing user is the one
-- its own attempt made. Creation times cannot tell: two registrations a few milliseconds apart
-- look alike, and the second would be handed the first one's account.

-- ============================================================================
-- Functions
-- ============================================================================
-- Same signature as in 20261121120100_register-guards.sql; the result gains
-- "registration_attempt" (null for users created any other way).
create or replace function public.find_auth_user_by_email(p_email text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('id', u.id, 'created_at', u.created_at, 'email_confirmed_at', u.email_confirmed_at,
                            'registration_attempt', u.raw_user_meta_data ->> 'registration_attempt')
  from auth.users u
  -- Supabase Auth stores emails lower-cased: equality on lower(p_email) uses users_email_partial_key.
  where u.email = lower(p_email) and not u.is_sso_user
  limit 1
$$;
revoke execute on function public.find_auth_user_by_email(text) from public, anon, authenticated;
grant execute on function public.find_auth_user_by_email(text) to service_role;
