// The user object GoTrue sends (internal/models/user.go, identity.go): key order of the Go
// struct, `omitempty` fields left out when unset, email and phone as "" when NULL.
import { randomUUID } from 'node:crypto';
import type { IdentityRow, StoredUser, UserRow } from './user-queries.ts';

export type UserJson = Record<string, unknown>;

function optional(target: UserJson, key: string, value: string | null | undefined): void {
  if (value !== null && value !== undefined && value !== '') target[key] = value;
}

export function renderIdentity(identity: IdentityRow): UserJson {
  const json: UserJson = {
    identity_id: identity.id,
    id: identity.provider_id,
    user_id: identity.user_id,
  };
  if (identity.identity_data && Object.keys(identity.identity_data).length > 0) {
    json.identity_data = identity.identity_data;
  }
  json.provider = identity.provider;
  optional(json, 'last_sign_in_at', identity.last_sign_in_at);
  json.created_at = identity.created_at;
  json.updated_at = identity.updated_at;
  optional(json, 'email', identity.email);
  return json;
}

export function renderUser(row: UserRow, identities: IdentityRow[]): UserJson {
  const json: UserJson = {
    id: row.id,
    aud: row.aud ?? '',
    role: row.role ?? '',
    email: row.email ?? '',
  };
  optional(json, 'email_confirmed_at', row.email_confirmed_at);
  optional(json, 'invited_at', row.invited_at);
  json.phone = row.phone ?? '';
  optional(json, 'phone_confirmed_at', row.phone_confirmed_at);
  optional(json, 'confirmation_sent_at', row.confirmation_sent_at);
  optional(json, 'confirmed_at', row.confirmed_at);
  optional(json, 'recovery_sent_at', row.recovery_sent_at);
  optional(json, 'new_email', row.email_change);
  optional(json, 'email_change_sent_at', row.email_change_sent_at);
  optional(json, 'new_phone', row.phone_change);
  optional(json, 'phone_change_sent_at', row.phone_change_sent_at);
  optional(json, 'reauthentication_sent_at', row.reauthentication_sent_at);
  optional(json, 'last_sign_in_at', row.last_sign_in_at);
  json.app_metadata = row.raw_app_meta_data ?? null;
  json.user_metadata = row.raw_user_meta_data ?? null;
  json.identities = identities.map(renderIdentity);
  json.created_at = row.created_at;
  json.updated_at = row.updated_at;
  optional(json, 'banned_until', row.banned_until);
  optional(json, 'deleted_at', row.deleted_at);
  json.is_anonymous = row.is_anonymous;
  return json;
}

export function renderStoredUser(user: StoredUser): UserJson {
  return renderUser(user.row, user.identities);
}

/**
 * signup.go sanitizeUser: what a repeated signup of a confirmed address gets when confirmations
 * are on, so the response does not reveal that the address is registered. Nothing is written.
 */
export function lookAlikeUser(
  existing: UserRow,
  data: Record<string, unknown>,
  aud: string,
): UserJson {
  const now = new Date().toISOString();
  return renderUser(
    {
      ...existing,
      id: randomUUID(),
      aud,
      role: '',
      email_change: '',
      phone: '',
      created_at: now,
      updated_at: now,
      confirmation_sent_at: now,
      last_sign_in_at: null,
      confirmed_at: null,
      email_change_sent_at: null,
      email_confirmed_at: null,
      phone_confirmed_at: null,
      raw_user_meta_data: data,
      raw_app_meta_data: { provider: 'email', providers: ['email'] },
    },
    [],
  );
}

// Go's zero time.Time, which a models.User that was never saved carries as created_at/updated_at.
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * The models.User that signup.go builds (ToUserModel) and hands the before-user-created hook
 * before anything is written: role '', no identities, no timestamps.
 */
export function unsavedUser(
  user: {
    id: string;
    aud: string;
    email: string;
    userMetadata: Record<string, unknown>;
    provider: string;
  },
): UserJson {
  return renderUser(
    {
      id: user.id,
      aud: user.aud,
      role: '',
      email: user.email,
      phone: null,
      encrypted_password: null,
      confirmation_token: null,
      email_confirmed_at: null,
      invited_at: null,
      phone_confirmed_at: null,
      confirmation_sent_at: null,
      confirmed_at: null,
      recovery_sent_at: null,
      email_change: null,
      email_change_sent_at: null,
      phone_change: null,
      phone_change_sent_at: null,
      reauthentication_sent_at: null,
      last_sign_in_at: null,
      raw_app_meta_data: { provider: user.provider, providers: [user.provider] },
      raw_user_meta_data: user.userMetadata,
      created_at: GO_ZERO_TIME,
      updated_at: GO_ZERO_TIME,
      banned_until: null,
      deleted_at: null,
      is_anonymous: false,
    },
    [],
  );
}
