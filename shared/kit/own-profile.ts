// The signed-in user's own profile row, read and written straight through PostgREST: Row Level
// Security lets a user see and update only their row, and the column grant only the editable
// columns. The kit adds the user id filter (so a read never depends on RLS alone to find one
// row) and refuses other columns before any request.
import type { SupabaseClient } from '@supabase/supabase-js';
import { ProfileApiError } from '../client.ts';
import { fromPostgrestError, notSignedIn } from './api-errors.ts';
import { EDITABLE_PROFILE_COLUMNS, type ProfilePatch } from './editable-columns.ts';
import type { Database, Profile } from './profile-types.ts';

const EDITABLE: ReadonlySet<string> = new Set(EDITABLE_PROFILE_COLUMNS);

// The session's user id without a network call: the stored session is what supabase-js sends
// anyway, and the database checks the token on every request.
async function sessionUserId(supabase: SupabaseClient<Database>): Promise<string | null> {
  const { data } = await supabase.auth.getSession();
  return data.session?.user.id ?? null;
}

/** The signed-in user's profile; null when signed out or when it does not exist (yet). */
export async function getMyProfile(supabase: SupabaseClient<Database>): Promise<Profile | null> {
  const userId = await sessionUserId(supabase);
  if (!userId) return null;
  const { data, error, status } = await supabase.from('user_profiles').select('*')
    .eq('user_id', userId).maybeSingle();
  if (error) throw fromPostgrestError(error, status);
  return data;
}

/** Only the editable columns, undefined values dropped; any other key is refused by name. */
export function editablePatch(patch: ProfilePatch): ProfilePatch {
  const clean: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (!EDITABLE.has(key)) {
      throw new ProfileApiError(
        400,
        'field_not_editable',
        `The profile field "${key}" cannot be changed from the app`,
        { [key]: 'cannot be changed' },
        undefined,
      );
    }
    if (value !== undefined) clean[key] = value;
  }
  return clean as ProfilePatch;
}

/** Updates the signed-in user's profile and answers the row as stored. */
export async function updateMyProfile(
  supabase: SupabaseClient<Database>,
  patch: ProfilePatch,
): Promise<Profile> {
  const clean = editablePatch(patch);
  const userId = await sessionUserId(supabase);
  if (!userId) throw notSignedIn();
  const { data, error, status } = Object.keys(clean).length === 0
    ? await supabase.from('user_profiles').select('*').eq('user_id', userId).maybeSingle()
    : await supabase.from('user_profiles').update(clean).eq('user_id', userId).select('*')
      .maybeSingle();
  if (error) throw fromPostgrestError(error, status);
  if (!data) {
    throw new ProfileApiError(
      404,
      'profile_not_found',
      'There is no profile for this user yet',
      undefined,
      undefined,
    );
  }
  return data;
}
