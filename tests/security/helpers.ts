// Shared by the security suite: users with real access tokens from the Auth stand-in, raw HTTP
// calls against the local stack, and a fingerprint of every table a request could write, so a
// rejected request can be shown to have written nothing.
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { appClient } from '../helpers/clients.ts';
import { type TestDatabase, withTriggerOff } from '../helpers/database.ts';
import type { LocalApi } from '../helpers/local-api.ts';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const JSON_TYPE = { 'content-type': 'application/json' } as const;

export interface SignedInUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

/**
 * A user created through the Auth stand-in's admin API and signed in with its password, so its
 * access token is one the stack itself issued. With withoutProfile, the trigger is off while the
 * user is created: an auth user that has no profile.
 */
export async function signedInUser(
  db: TestDatabase,
  api: LocalApi,
  options: { withoutProfile?: boolean; prefix?: string } = {},
): Promise<SignedInUser> {
  const email = `${options.prefix ?? 'person'}-${randomUUID().slice(0, 8)}@example.test`;
  const password = `pw-${randomUUID()}`;
  const admin = appClient(api.stack.apiUrl, api.stack.keys.serviceRoleKey);
  const create = async () => {
    const { data, error } = await admin.auth.admin.createUser({
      email,
      password,
      email_confirm: true,
    });
    if (error) throw error;
    return data.user.id;
  };
  const id = options.withoutProfile ? await withTriggerOff(db, create) : await create();
  const { data, error } = await appClient(api.stack.apiUrl, api.stack.keys.anonKey).auth
    .signInWithPassword({ email, password });
  if (error) throw error;
  return {
    id,
    email,
    password,
    accessToken: data.session.access_token,
    refreshToken: data.session.refresh_token,
  };
}

export interface Answer<B = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON, the raw text when it is not JSON, null when empty; typed B, what a test reads of it. */
  body: B;
}

export async function answerOf<B = unknown>(response: Response): Promise<Answer<B>> {
  const text = await response.text();
  let body: unknown = null;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: response.status, headers: response.headers, body: body as B };
}

/** fetch against the local stack: path is everything after the API URL (`/rest/v1/…`, `/functions/v1/…`). */
export async function http<B = unknown>(
  api: LocalApi,
  path: string,
  init: RequestInit = {},
): Promise<Answer<B>> {
  return await answerOf<B>(await fetch(`${api.stack.apiUrl}${path}`, init));
}

/**
 * Row counts of every table in public, private and auth that a request could write, plus the full
 * contents of the profiles and the settings: equal fingerprints mean nothing was written.
 * Except private.missing_profile_census: any health check, a public one included, may store a
 * fresh missing-profile count there (at most once per settings.missing_count_max_age). It is a
 * figure the database derives; nothing of the request reaches it.
 */
export async function fingerprint(db: TestDatabase): Promise<Record<string, unknown>> {
  const { rows } = await db.query<{ name: string }>(
    `select format('%I.%I', n.nspname, c.relname) as name
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and n.nspname in ('public', 'private', 'auth')
      order by 1`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of rows) {
    counts[name] = (await db.one<{ n: number }>(`select count(*)::int as n from ${name}`)).n;
  }
  const profiles = await db.one<{ digest: string | null }>(
    `select md5(coalesce(string_agg(to_jsonb(p)::text, ',' order by p.user_id), '')) as digest from public.user_profiles p`,
  );
  const settings = await db.one<{ digest: string | null }>(
    `select md5(to_jsonb(s)::text) as digest from private.settings s`,
  );
  const users = await db.one<{ digest: string | null }>(
    `select md5(coalesce(string_agg(u.id::text || coalesce(u.raw_user_meta_data::text, ''), ',' order by u.id), '')) as digest from auth.users u`,
  );
  return { counts, profiles: profiles.digest, settings: settings.digest, users: users.digest };
}

/** Counts that a rejected request must leave unchanged. */
export async function writeCounts(
  db: TestDatabase,
): Promise<{ users: number; profiles: number; audit: number; queue: number }> {
  return await db.one(
    `select (select count(*)::int from auth.users) as users,
            (select count(*)::int from public.user_profiles) as profiles,
            (select count(*)::int from private.audit_logs) as audit,
            (select count(*)::int from private.repair_queue) as queue`,
  );
}

/** A fresh P-256 private key the project knows nothing about, under the given key id. */
export async function attackerKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
}

export const b64url = (value: unknown): string =>
  Buffer.from(JSON.stringify(value)).toString('base64url');
