// The one copy of how Supabase Auth (GoTrue) writes a new user, shared by the Auth stand-in and
// the test helper that signs users up directly in SQL. It must run on a connection logged in as
// supabase_auth_admin (search_path = auth, hence the unqualified table names), inside one
// transaction: an AFTER INSERT trigger on auth.users then sees exactly what it sees in
// production (role = '', app metadata {provider, providers} only, email not yet confirmed), and
// any error it raises rolls the whole signup back.
import type pg from 'pg';

/**
 * Whose statement sequence to follow. 'admin' (the default): the users row, the identities, then
 * one UPDATE for everything else, as the test helpers and admin createUser use it. 'signup':
 * GoTrue's POST /signup statement by statement (see insertSignupUser), which AFTER UPDATE
 * triggers can tell apart.
 */
export type WriteOrder = 'admin' | 'signup';

export interface NewAuthIdentity {
  provider: string;
  /** auth.identities.provider_id: the user id for email/phone, the provider's subject for OAuth. */
  providerId: string;
  identityData: Record<string, unknown>;
}

export interface NewAuthUser {
  id: string;
  email: string | null;
  /** A bcrypt hash, or '' for a user without a password (OAuth). */
  encryptedPassword: string;
  /** raw_user_meta_data as inserted: signUp `data`, admin `user_metadata`, or OAuth claims. */
  userMetadata: unknown;
  /** At least one; the first names app_metadata.provider, all of them app_metadata.providers. */
  identities: NewAuthIdentity[];
  /** Custom app_metadata merged in the later UPDATE (test helpers). */
  appMetadata?: Record<string, unknown>;
  emailConfirmed?: boolean;
  /** Merged into raw_user_meta_data by the UPDATE, as GoTrue's Confirm does with email_verified. */
  userMetadataUpdate?: Record<string, unknown> | null;
  /** A pending email confirmation: stored with confirmation_sent_at = now(). */
  confirmationToken?: string | null;
  createdAt?: Date;
  writeOrder?: WriteOrder;
}

// UpdateUserMetaData deletes the keys whose new value is null instead of storing null.
function withoutNulls(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([, value]) => value !== null));
}

// Every user here is in the one audience the local stack has, with the role SetRole gives it.
const AUDIENCE = 'authenticated';
const ROLE = 'authenticated';

async function insertUserRow(
  client: pg.ClientBase,
  user: NewAuthUser,
  providers: string[],
): Promise<void> {
  await client.query(
    `insert into users (instance_id, id, aud, role, email, phone, encrypted_password, raw_app_meta_data,
                        raw_user_meta_data, is_sso_user, is_anonymous, confirmation_token,
                        recovery_token, email_change_token_new, email_change, created_at, updated_at)
     values ('00000000-0000-0000-0000-000000000000', $1, $2, '', $3, null, $4, $5, $6,
             false, false, '', '', '', '', coalesce($7::timestamptz, now()), coalesce($7::timestamptz, now()))`,
    [
      user.id,
      AUDIENCE,
      user.email,
      user.encryptedPassword,
      JSON.stringify({ provider: providers[0], providers }),
      JSON.stringify(user.userMetadata),
      user.createdAt ?? null,
    ],
  );
}

async function insertIdentity(
  client: pg.ClientBase,
  userId: string,
  identity: NewAuthIdentity,
): Promise<void> {
  await client.query(
    `insert into identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
     values ($1, $2, $3, $4, now(), now(), now())`,
    [identity.providerId, userId, JSON.stringify(identity.identityData), identity.provider],
  );
}

/**
 * GoTrue internal/api/signup.go for a new email user, in its order, all in the caller's
 * transaction:
 *   1. signupNewUser: INSERT the users row (role '', request data as raw_user_meta_data), then
 *      SetRole's UPDATE;
 *   2. createNewIdentity: INSERT the identity ({sub, email, email_verified, phone_verified} plus
 *      the request data, the claims winning);
 *   3. User.RemoveUnconfirmedIdentities (models/user.go): an UPDATE that replaces
 *      raw_user_meta_data with that identity data, then UpdateAppMetaDataProviders' UPDATE;
 *   4. with autoconfirm, User.Confirm's two UPDATEs (confirmed, then email_verified: true merged);
 *      otherwise sendConfirmation's UPDATE of the token and confirmation_sent_at.
 * So an AFTER INSERT trigger sees only the request data; sub, email, email_verified and
 * phone_verified arrive in a later UPDATE of the same transaction.
 */
async function insertSignupUser(
  client: pg.ClientBase,
  user: NewAuthUser,
  providers: string[],
): Promise<void> {
  // A signup has exactly one identity, and no app metadata or metadata update of its own.
  const identity = user.identities[0]!;
  await insertUserRow(client, user, providers);
  await client.query(`update users set role = $2, updated_at = now() where id = $1`, [
    user.id,
    ROLE,
  ]);
  await insertIdentity(client, user.id, identity);
  await client.query(`update users set raw_user_meta_data = $2, updated_at = now() where id = $1`, [
    user.id,
    JSON.stringify(withoutNulls(identity.identityData)),
  ]);
  await client.query(
    `update users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}'::jsonb) || $2::jsonb, updated_at = now() where id = $1`,
    [user.id, JSON.stringify({ provider: providers[0], providers })],
  );
  if (user.emailConfirmed) {
    await client.query(
      `update users set confirmation_token = '', email_confirmed_at = now(), updated_at = now() where id = $1`,
      [user.id],
    );
    await client.query(
      `update users set raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || '{"email_verified": true}'::jsonb,
                        updated_at = now()
        where id = $1`,
      [user.id],
    );
  } else if (user.confirmationToken) {
    await client.query(
      `update users set confirmation_token = $2, confirmation_sent_at = now(), updated_at = now() where id = $1`,
      [
        user.id,
        user.confirmationToken,
      ],
    );
  }
}

/**
 * Insert users (role '' and app metadata {provider, providers}), insert the identities, then one
 * UPDATE for the role, custom app metadata and confirmation; or GoTrue's signup sequence when
 * `writeOrder` is 'signup'. Runs in the caller's transaction.
 */
export async function insertAuthUser(client: pg.ClientBase, user: NewAuthUser): Promise<void> {
  const providers = [...new Set(user.identities.map((identity) => identity.provider))];
  if (providers.length === 0) throw new Error('a new auth user needs at least one identity');
  if (user.writeOrder === 'signup') return await insertSignupUser(client, user, providers);

  await insertUserRow(client, user, providers);
  for (const identity of user.identities) await insertIdentity(client, user.id, identity);
  await client.query(
    `update users
        set role = $2,
            raw_app_meta_data = raw_app_meta_data || $3::jsonb,
            raw_user_meta_data = case when $4::jsonb is null then raw_user_meta_data
                                      else coalesce(raw_user_meta_data, '{}'::jsonb) || $4::jsonb end,
            email_confirmed_at = case when $5 then now() end,
            confirmation_token = coalesce($6::text, confirmation_token),
            confirmation_sent_at = case when $6::text is null then confirmation_sent_at else now() end,
            updated_at = now()
      where id = $1`,
    [
      user.id,
      ROLE,
      JSON.stringify(user.appMetadata ?? {}),
      user.userMetadataUpdate ? JSON.stringify(user.userMetadataUpdate) : null,
      user.emailConfirmed ?? false,
      user.confirmationToken ?? null,
    ],
  );
}
