// Reads and the later updates of auth.users / auth.identities, each written as the GoTrue model
// method it stands for (internal/models/user.go, identity.go). Timestamps come back as GoTrue
// prints them: UTC, ISO 8601, microseconds without trailing zeros.
import type pg from 'pg';

export type Queryable = Pick<pg.ClientBase, 'query'>;

export interface UserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  phone: string | null;
  encrypted_password: string | null;
  confirmation_token: string | null;
  email_confirmed_at: string | null;
  invited_at: string | null;
  phone_confirmed_at: string | null;
  confirmation_sent_at: string | null;
  confirmed_at: string | null;
  recovery_sent_at: string | null;
  email_change: string | null;
  email_change_sent_at: string | null;
  phone_change: string | null;
  phone_change_sent_at: string | null;
  reauthentication_sent_at: string | null;
  last_sign_in_at: string | null;
  raw_app_meta_data: unknown;
  raw_user_meta_data: unknown;
  created_at: string | null;
  updated_at: string | null;
  banned_until: string | null;
  deleted_at: string | null;
  is_anonymous: boolean;
}

export interface IdentityRow {
  id: string;
  provider_id: string;
  user_id: string;
  identity_data: Record<string, unknown> | null;
  provider: string;
  last_sign_in_at: string | null;
  created_at: string | null;
  updated_at: string | null;
  email: string | null;
}

export interface StoredUser {
  row: UserRow;
  identities: IdentityRow[];
}

const iso = (column: string) => `(to_json(${column} at time zone 'UTC') #>> '{}') || 'Z'`;

const USER_COLUMNS = `
  u.id, u.aud, u.role, u.email, u.phone, u.encrypted_password, u.confirmation_token,
  ${iso('u.email_confirmed_at')} as email_confirmed_at, ${iso('u.invited_at')} as invited_at,
  ${iso('u.phone_confirmed_at')} as phone_confirmed_at, ${
  iso('u.confirmation_sent_at')
} as confirmation_sent_at,
  ${iso('u.confirmed_at')} as confirmed_at, ${iso('u.recovery_sent_at')} as recovery_sent_at,
  u.email_change, ${iso('u.email_change_sent_at')} as email_change_sent_at,
  u.phone_change, ${iso('u.phone_change_sent_at')} as phone_change_sent_at,
  ${iso('u.reauthentication_sent_at')} as reauthentication_sent_at, ${
  iso('u.last_sign_in_at')
} as last_sign_in_at,
  u.raw_app_meta_data, u.raw_user_meta_data, ${iso('u.created_at')} as created_at, ${
  iso('u.updated_at')
} as updated_at,
  ${iso('u.banned_until')} as banned_until, ${iso('u.deleted_at')} as deleted_at, u.is_anonymous`;

const IDENTITY_COLUMNS = `
  i.id, i.provider_id, i.user_id, i.identity_data, i.provider, ${
  iso('i.last_sign_in_at')
} as last_sign_in_at,
  ${iso('i.created_at')} as created_at, ${iso('i.updated_at')} as updated_at, i.email`;

// GoTrue scopes every lookup to the single instance it serves.
const NIL_INSTANCE = `'00000000-0000-0000-0000-000000000000'`;

async function withIdentities(db: Queryable, rows: UserRow[]): Promise<StoredUser[]> {
  if (rows.length === 0) return [];
  const { rows: identities } = await db.query<IdentityRow>(
    `select ${IDENTITY_COLUMNS} from identities i where i.user_id = any($1::uuid[]) order by i.created_at, i.id`,
    [rows.map((row) => row.id)],
  );
  return rows.map((row) => ({
    row,
    identities: identities.filter((identity) => identity.user_id === row.id),
  }));
}

async function findOne(
  db: Queryable,
  where: string,
  params: unknown[],
  lock = false,
): Promise<StoredUser | null> {
  const { rows } = await db.query<UserRow>(
    `select ${USER_COLUMNS} from users u where ${where} limit 1${lock ? ' for update' : ''}`,
    params,
  );
  return (await withIdentities(db, rows))[0] ?? null;
}

/** models.FindUserByID. */
export function findUserById(db: Queryable, id: string): Promise<StoredUser | null> {
  return findOne(db, `u.instance_id = ${NIL_INSTANCE} and u.id = $1`, [id]);
}

/** models.FindUserByEmailAndAudience: what a password sign-in looks up. */
export function findUserByEmail(
  db: Queryable,
  email: string,
  aud: string,
): Promise<StoredUser | null> {
  return findOne(
    db,
    `u.instance_id = ${NIL_INSTANCE} and lower(u.email) = $1 and u.aud = $2 and u.is_sso_user = false`,
    [
      email.toLowerCase(),
      aud,
    ],
  );
}

/** models.IsDuplicatedEmail: an identity with that email first, then the users table. */
export async function findUserWithEmail(
  db: Queryable,
  email: string,
  aud: string,
): Promise<StoredUser | null> {
  const viaIdentity = await findOne(
    db,
    `u.instance_id = ${NIL_INSTANCE} and u.aud = $2 and u.id in (select i.user_id from identities i where i.email = $1)`,
    [email.toLowerCase(), aud],
  );
  return viaIdentity ?? (await findUserByEmail(db, email, aud));
}

/** models.FindUserByConfirmationToken, locked for the confirmation that follows. */
export function findUserByConfirmationToken(
  db: Queryable,
  token: string,
): Promise<StoredUser | null> {
  return findOne(db, `u.confirmation_token = $1 and u.is_sso_user = false`, [token], true);
}

/** User.Confirm: clear the token, confirm, and set user_metadata.email_verified. */
export async function confirmEmail(db: Queryable, userId: string): Promise<void> {
  await db.query(
    `update users
        set confirmation_token = '', email_confirmed_at = now(),
            raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || '{"email_verified": true}'::jsonb,
            updated_at = now()
      where id = $1`,
    [userId],
  );
}

/** What /verify adds to Confirm: the email identity of that address is verified too. */
export async function markEmailIdentityVerified(
  db: Queryable,
  userId: string,
  email: string,
): Promise<void> {
  await db.query(
    `update identities set identity_data = identity_data || '{"email_verified": true}'::jsonb, updated_at = now()
      where user_id = $1 and email = $2`,
    [userId, email],
  );
}

/** User.UpdateAppMetaDataProviders: providers from the identities, oldest first. */
export async function refreshProviders(db: Queryable, userId: string): Promise<void> {
  await db.query(
    `update users u
        set raw_app_meta_data = coalesce(u.raw_app_meta_data, '{}'::jsonb) || jsonb_build_object('providers', p.providers)
              || case when jsonb_array_length(p.providers) > 0 then jsonb_build_object('provider', p.providers -> 0) else '{}'::jsonb end,
            updated_at = now()
       from (select coalesce(jsonb_agg(provider order by first_seen), '[]'::jsonb) as providers
               from (select provider, min(created_at) as first_seen from identities where user_id = $1 group by provider) x) p
      where u.id = $1`,
    [userId],
  );
}

/** sendConfirmation's write: a new pending token for an unconfirmed user signing up again. */
export async function setConfirmationToken(
  db: Queryable,
  userId: string,
  token: string,
): Promise<void> {
  await db.query(
    `update users set confirmation_token = $2, confirmation_sent_at = now(), updated_at = now() where id = $1`,
    [
      userId,
      token,
    ],
  );
}

/** User.UpdateLastSignInAt, which every issued session does. */
export async function recordSignIn(db: Queryable, userId: string): Promise<void> {
  await db.query(`update users set last_sign_in_at = now(), updated_at = now() where id = $1`, [
    userId,
  ]);
}

export async function deleteUser(db: Queryable, userId: string): Promise<void> {
  await db.query(`delete from users where id = $1`, [userId]);
}

/**
 * User.SoftDeleteUser and SoftDeleteUserIdentities: the row stays (so foreign keys such as the
 * profile's survive) but every identifying value is replaced by a hash and the metadata emptied.
 */
export async function softDeleteUser(db: Queryable, userId: string): Promise<void> {
  const obfuscate = (value: string) =>
    `translate(rtrim(encode(sha256(convert_to(id::text || ${value}, 'UTF8')), 'base64'), '='), '+/', '-_')`;
  await db.query(
    `update users
        set email = case when coalesce(email, '') = '' then email else ${obfuscate('email')} end,
            phone = case when coalesce(phone, '') = '' then phone else left(${
      obfuscate('phone')
    }, 15) end,
            email_change = case when coalesce(email_change, '') = '' then email_change else ${
      obfuscate('email_change')
    } end,
            phone_change = case when coalesce(phone_change, '') = '' then phone_change else left(${
      obfuscate('phone_change')
    }, 15) end,
            encrypted_password = null, confirmation_token = '', recovery_token = '',
            email_change_token_current = '', email_change_token_new = '', phone_change_token = '',
            raw_user_meta_data = '{}'::jsonb, raw_app_meta_data = '{}'::jsonb,
            deleted_at = now(), updated_at = now()
      where id = $1 and deleted_at is null`,
    [userId],
  );
  await db.query(
    `update identities
        set identity_data = '{}'::jsonb,
            provider_id = translate(rtrim(encode(sha256(convert_to(user_id::text || provider || ':' || provider_id, 'UTF8')), 'base64'), '='), '+/', '-_'),
            updated_at = now()
      where user_id = $1 and identity_data <> '{}'::jsonb`,
    [userId],
  );
  // models.Logout, as adminUserDelete does: a soft-deleted user keeps no session.
  await db.query('delete from sessions where user_id = $1', [userId]);
}
