// What a signed-in user may change of their own profile: exactly the column UPDATE grant to
// authenticated in supabase/schemas/02_user-profiles.sql (tests/kit compares the two), so the
// kit refuses the rest before a request and names the field, instead of PostgREST's bare 403.
import type { Database } from '../database.types.ts';

export const EDITABLE_PROFILE_COLUMNS = [
  'full_name',
  'username',
  'avatar_url',
  'metadata',
] as const;

export type EditableProfileColumn = (typeof EDITABLE_PROFILE_COLUMNS)[number];

export type ProfilePatch = Partial<
  Pick<Database['public']['Tables']['user_profiles']['Update'], EditableProfileColumn>
>;
