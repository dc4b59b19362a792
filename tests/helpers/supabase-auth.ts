import { randomUUID } from 'node:crypto';
import { insertAuthUser } from '../../dev/auth/user-store.ts';
import { withTransaction } from '../../dev/transaction.ts';
import type { TestDatabase } from './database.ts';

export type Provider = 'email' | 'github' | 'google';

export interface SignUp {
  id?: string;
  email?: string | null;
  provider?: Provider;
  /** What Auth stores as raw_user_meta_data (signUp `data`, or the OAuth provider's claims). */
  userMetadata?: unknown;
  /** Custom app_metadata Auth merges in its later UPDATE. */
  appMetadata?: Record<string, unknown>;
  emailConfirmed?: boolean;
  /** Override created_at (e.g. to age a user past the grace period). */
  createdAt?: Date;
}

// A bcrypt-shaped hash: these tests never sign in, and the Auth stand-in hashes for real.
const PLACEHOLDER_BCRYPT = '$2a$10$abcdefghijklmnopqrstuuJ4tvbhS2Ycv6mJ3L2oMgUs5p0Z5C3eS';

/**
 * Inserts a user exactly as Supabase Auth (GoTrue) does, through the same write path as the Auth
 * stand-in (dev/auth/user-store.ts): one transaction on the supabase_auth_admin connection; the
 * users row inserted with role = '' and raw_app_meta_data = {provider, providers}, then the
 * identity row, then an UPDATE sets role, merges custom app_metadata and confirms the email. The
 * AFTER INSERT trigger therefore sees what it sees in production.
 */
export async function signUpAsSupabaseAuth(db: TestDatabase, signUp: SignUp = {}): Promise<string> {
  const id = signUp.id ?? randomUUID();
  const provider = signUp.provider ?? 'email';
  const email = signUp.email === undefined ? `user-${id}@example.test` : signUp.email;
  const userMetadata = signUp.userMetadata ?? {};
  const providerId = provider === 'email'
    ? id
    : String((userMetadata as Record<string, unknown>)?.provider_id ?? id);
  const identityData = provider === 'email'
    ? { sub: id, email, email_verified: false, phone_verified: false }
    : { ...(userMetadata as Record<string, unknown>), sub: providerId };
  await withTransaction(db.auth, (client) =>
    insertAuthUser(client, {
      id,
      email,
      encryptedPassword: provider === 'email' ? PLACEHOLDER_BCRYPT : '',
      userMetadata,
      identities: [{ provider, providerId, identityData }],
      appMetadata: signUp.appMetadata ?? {},
      emailConfirmed: signUp.emailConfirmed ?? provider !== 'email',
      createdAt: signUp.createdAt ?? new Date(),
    }));
  return id;
}

/**
 * An anonymous sign-in as Supabase Auth (GoTrue) stores it, on the supabase_auth_admin connection:
 * a users row with no email, is_anonymous = true, provider "anonymous", no identity; inserted
 * with role = '' and set to 'authenticated' by the UPDATE after it, so the trigger sees what it
 * sees in production.
 */
export async function signUpAnonymouslyAsSupabaseAuth(
  db: TestDatabase,
  options: { id?: string } = {},
): Promise<string> {
  const id = options.id ?? randomUUID();
  await withTransaction(db.auth, async (client) => {
    await client.query(
      `insert into users (instance_id, id, aud, role, email, raw_app_meta_data, raw_user_meta_data, is_sso_user,
                          is_anonymous, confirmation_token, recovery_token, email_change_token_new, email_change,
                          created_at, updated_at)
       values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', '', null,
               '{"provider": "anonymous", "providers": ["anonymous"]}', '{}', false, true, '', '', '', '', now(), now())`,
      [id],
    );
    await client.query(
      `update users set role = 'authenticated', updated_at = now() where id = $1`,
      [id],
    );
  });
  return id;
}

/** raw_user_meta_data as GitHub sign-in stores it. */
export function githubMetadata(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    avatar_url: 'https://avatars.githubusercontent.com/u/583231?v=4',
    email: 'octocat@example.test',
    email_verified: true,
    full_name: 'The Octocat',
    iss: 'https://api.github.com',
    name: 'The Octocat',
    phone_verified: false,
    preferred_username: 'octocat',
    provider_id: '583231',
    sub: '583231',
    user_name: 'octocat',
    ...overrides,
  };
}

/** raw_user_meta_data as Google sign-in stores it: `name` and `picture`, no username. */
export function googleMetadata(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    avatar_url: 'https://lh3.googleusercontent.com/a/ACg8ocJ',
    email: 'ada@example.test',
    email_verified: true,
    full_name: 'Ada Lovelace',
    iss: 'https://accounts.google.com',
    name: 'Ada Lovelace',
    phone_verified: false,
    picture: 'https://lh3.googleusercontent.com/a/ACg8ocJ',
    provider_id: '109876543210987654321',
    sub: '109876543210987654321',
    ...overrides,
  };
}

/**
 * Many email signups at once, in Supabase Auth's write order (users row with role = '', the
 * identity, then the UPDATE), set-based, on the supabase_auth_admin connection. `metadataSql` is
 * an SQL expression over `n` (1..count) giving raw_user_meta_data. Returns the ids in id order.
 */
export async function bulkSignUpAsSupabaseAuth(
  db: TestDatabase,
  count: number,
  options: { metadataSql?: string; emailPrefix?: string; createdAgo?: string } = {},
): Promise<string[]> {
  const client = await db.auth.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query<{ id: string }>(
      `insert into users (instance_id, id, aud, role, email, encrypted_password, raw_app_meta_data,
                          raw_user_meta_data, is_sso_user, is_anonymous, confirmation_token,
                          recovery_token, email_change_token_new, email_change, created_at, updated_at)
       select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', '',
              $1 || n || '-' || substr(md5(random()::text), 1, 8) || '@example.test', $2,
              '{"provider": "email", "providers": ["email"]}', ${
        options.metadataSql ?? `'{}'::jsonb`
      },
              false, false, '', '', '', '', now() - $3::interval, now() - $3::interval
       from generate_series(1, $4::int) as n
       returning id`,
      [
        options.emailPrefix ?? 'bulk-',
        PLACEHOLDER_BCRYPT,
        options.createdAgo ?? '0 seconds',
        count,
      ],
    );
    const ids = rows.map((r) => r.id);
    await client.query(
      `insert into identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
       select u.id::text, u.id, jsonb_build_object('sub', u.id, 'email', u.email), 'email', now(), now()
       from users u where u.id = any($1)`,
      [ids],
    );
    await client.query(
      `update users set role = 'authenticated', updated_at = now() where id = any($1)`,
      [ids],
    );
    await client.query('commit');
    return ids.sort();
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
