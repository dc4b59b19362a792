-- Idempotency-Key support: a retried request returns the first answer instead of doing the work
-- twice (a second auth user, a 409 for the user's own retry).

-- ============================================================================
-- Tables
-- ============================================================================
-- One row per (scope, key). request_hash is an HMAC of the request body keyed with a server
-- secret, so a replay with a different body is recognised without storing (or exposing to
-- offline guessing) the body's password. status/response are null while the first request runs.
create table if not exists private.idempotency_keys (
  scope text not null,
  key text not null,
  request_hash text not null,
  status integer,
  response jsonb,
  locked_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  constraint idempotency_keys_pkey primary key (scope, key)
);
alter table private.idempotency_keys enable row level security;
revoke all on table private.idempotency_keys from public, anon, authenticated, service_role;
create index if not exists idempotency_keys_expires_at_idx on private.idempotency_keys (expires_at);

comment on table private.idempotency_keys is 'Idempotency-Key of requests to the functions; rows expire after their TTL.';

-- ============================================================================
-- Functions
-- ============================================================================
create or replace function private.check_idempotency_arguments(p_scope text, p_key text, p_request_hash text)
returns void
language plpgsql
immutable
security invoker
set search_path = ''
as $$
begin
  if p_scope is null or p_scope !~ '^[a-z][a-z0-9_-]{0,39}$' then
    raise exception 'p_scope must be a lower-case name of at most 40 characters' using errcode = '22023';
  end if;
  if p_key is null or p_key !~ '^[\x21-\x7e]{1,255}$' then
    raise exception 'p_key must be 1-255 printable ASCII characters' using errcode = '22023';
  end if;
  if p_request_hash is null or p_request_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'p_request_hash must be 64 lower-case hex digits' using errcode = '22023';
  end if;
end;
$$;
revoke execute on function private.check_idempotency_arguments(text, text, text) from public, anon, authenticated, service_role;

-- Claims a key for a request. Returns {"state": ...}:
--   "claimed"     this caller owns the key and must finish with idempotency_complete/release;
--   "replay"      the first request finished: answer its {"status", "response"} again;
--   "in_progress" another request holds the key right now (retry shortly);
--   "mismatch"    the key was used for a different request body.
-- A holder that has not finished within p_lock_seconds is presumed dead and the key is reclaimed.
create or replace function public.idempotency_claim(
  p_scope text,
  p_key text,
  p_request_hash text,
  p_ttl_seconds integer default 86400,
  p_lock_seconds integer default 60
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row private.idempotency_keys;
begin
  perform private.check_idempotency_arguments(p_scope, p_key, p_request_hash);
  if p_ttl_seconds is null or p_ttl_seconds < 60 or p_lock_seconds is null or p_lock_seconds < 1 then
    raise exception 'p_ttl_seconds must be at least 60 and p_lock_seconds at least 1' using errcode = '22023';
  end if;

  -- Keep the table bounded without a scheduler: every claim removes a few expired keys.
  delete from private.idempotency_keys k
  where k.ctid in (select e.ctid from private.idempotency_keys e where e.expires_at <= now() limit 100);

  insert into private.idempotency_keys (scope, key, request_hash, expires_at)
  values (p_scope, p_key, p_request_hash, now() + make_interval(secs => p_ttl_seconds))
  on conflict (scope, key) do nothing
  returning * into v_row;
  if found then
    return '{"state": "claimed"}'::jsonb;
  end if;

  select * into v_row from private.idempotency_keys k
  where k.scope = p_scope and k.key = p_key
  for update;
  if not found then
    -- Expired and deleted by someone else between our insert and select: claim it now.
    insert into private.idempotency_keys (scope, key, request_hash, expires_at)
    values (p_scope, p_key, p_request_hash, now() + make_interval(secs => p_ttl_seconds))
    on conflict (scope, key) do nothing;
    return '{"state": "in_progress"}'::jsonb;
  end if;
  if v_row.request_hash <> p_request_hash then
    return '{"state": "mismatch"}'::jsonb;
  end if;
  if v_row.status is not null then
    return jsonb_build_object('state', 'replay', 'status', v_row.status, 'response', v_row.response);
  end if;
  if v_row.locked_at < now() - make_interval(secs => p_lock_seconds) then
    update private.idempotency_keys k set locked_at = now() where k.scope = p_scope and k.key = p_key;
    return '{"state": "claimed"}'::jsonb;
  end if;
  return '{"state": "in_progress"}'::jsonb;
end;
$$;
revoke execute on function public.idempotency_claim(text, text, text, integer, integer) from public, anon, authenticated;
grant execute on function public.idempotency_claim(text, text, text, integer, integer) to service_role;

-- Stores the final answer of a claimed key so later requests replay it.
create or replace function public.idempotency_complete(
  p_scope text,
  p_key text,
  p_request_hash text,
  p_status integer,
  p_response jsonb
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_idempotency_arguments(p_scope, p_key, p_request_hash);
  if p_status is null or p_status < 200 or p_status > 499 then
    raise exception 'p_status must be a final 2xx-4xx status; release the key on a 5xx' using errcode = '22023';
  end if;
  update private.idempotency_keys k
     set status = p_status, response = p_response
   where k.scope = p_scope and k.key = p_key and k.request_hash = p_request_hash and k.status is null;
end;
$$;
revoke execute on function public.idempotency_complete(text, text, text, integer, jsonb) from public, anon, authenticated;
grant execute on function public.idempotency_complete(text, text, text, integer, jsonb) to service_role;

-- Gives a claimed key back (the request failed in a way worth retrying), so the next retry runs.
create or replace function public.idempotency_release(p_scope text, p_key text, p_request_hash text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_idempotency_arguments(p_scope, p_key, p_request_hash);
  delete from private.idempotency_keys k
  where k.scope = p_scope and k.key = p_key and k.request_hash = p_request_hash and k.status is null;
end;
$$;
revoke execute on function public.idempotency_release(text, text, text) from public, anon, authenticated;
grant execute on function public.idempotency_release(text, text, text) to service_role;
