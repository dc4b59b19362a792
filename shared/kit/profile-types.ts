// The row types the kit hands out, from the generated Database type, so an app's profile type
// changes exactly when the SQL does (npm run gen:types) and never drifts from a copy.
import type { Database } from '../database.types.ts';

export type { Database };

/** One public.user_profiles row, as PostgREST and the functions answer it. */
export type Profile = Database['public']['Tables']['user_profiles']['Row'];
