// The app's one Supabase client and its profile kit. Which registration path runs is the app's
// configuration (VITE_REGISTRATION_PATH: guarded | legacy), and what happens when the server
// switches registration off (register_enabled = false) too (VITE_WHEN_REGISTRATION_DISABLED).
import { createClient } from '@supabase/supabase-js';
import {
  createProfileKit,
  type Database,
  parseRegistrationPath,
} from 'supabase-profile-guard/client';

const env = import.meta.env;

export const supabase = createClient<Database>(
  env.VITE_SUPABASE_URL ?? 'http://127.0.0.1:54321',
  env.VITE_SUPABASE_PUBLISHABLE_KEY ?? 'sb_publishable_LOCAL_profile_guard_not_for_production',
);

export const kit = createProfileKit(supabase, {
  registration: parseRegistrationPath(env.VITE_REGISTRATION_PATH),
  whenRegistrationDisabled: env.VITE_WHEN_REGISTRATION_DISABLED === 'legacy' ? 'legacy' : 'message',
  signInAfterRegister: true,
});

// Every sign-in (password, OAuth, magic link) ensures the profile once; token refreshes do not.
kit.ensureProfileOnSignIn();
