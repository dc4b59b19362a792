/** Template with dev/'s Supabase bootstrap only: a Supabase project before our migrations. */
export const TEMPLATE_BARE = 'profile_guard_template_bare';
/** Template with the bootstrap and every migration applied. */
export const TEMPLATE_MIGRATED = 'profile_guard_template';
