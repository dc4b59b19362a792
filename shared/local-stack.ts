// The local stack's fixed address and API keys (`npm start`), known to the operator CLIs so that
// they reach it with no configuration. Like the Supabase CLI's local keys, they are public and
// work only against the local stack.
export const LOCAL_API_URL = 'http://127.0.0.1:54321';
/** The new-style API keys of the local stack (not JWTs); its gateway maps them to the JWT keys. */
export const LOCAL_PUBLISHABLE_KEY = 'sb_publishable_LOCAL_profile_guard_not_for_production';
export const LOCAL_SECRET_KEY = 'sb_secret_LOCAL_profile_guard_not_for_production';
