// One registration, whichever path takes it: the register function (guarded) or Auth's own
// signUp (legacy), answered in one shape so the app's form does not care which ran.
import type { SupabaseClient } from '@supabase/supabase-js';
import type { ProfileClient, ProfileStatus, RegisterInput, RegisterResult } from '../client.ts';
import { fromAuthError } from './api-errors.ts';
import { getMyProfile } from './own-profile.ts';
import type { Database, Profile } from './profile-types.ts';

export interface Registration {
  via: 'register' | 'legacy';
  /** Why the legacy path ran: the app chose it, or the server's register switch was off. */
  reason?: 'configured' | 'registration_disabled';
  user: { id: string; email: string };
  profile: Profile | null;
  status: ProfileStatus;
  emailConfirmationRequired: boolean;
  signedIn: boolean;
  replayed: boolean;
}

export interface RegistrationDeps {
  supabase: SupabaseClient<Database>;
  client: ProfileClient;
  signInAfterRegister: boolean;
}

// A sign-in that fails after the account exists is not a failed registration: the app gets
// signedIn false and shows its sign-in form, instead of an error that invites registering again.
async function signIn(supabase: SupabaseClient<Database>, input: RegisterInput): Promise<boolean> {
  const { data, error } = await supabase.auth.signInWithPassword({
    email: input.email,
    password: input.password,
  });
  return !error && data.session !== null;
}

export async function registerGuarded(
  deps: RegistrationDeps,
  input: RegisterInput,
  idempotencyKey: string | undefined,
): Promise<Registration> {
  const result: RegisterResult = await deps.client.register(
    input,
    idempotencyKey ? { idempotencyKey } : {},
  );
  const signedIn = deps.signInAfterRegister && !result.email_confirmation_required
    ? await signIn(deps.supabase, input)
    : false;
  return {
    via: 'register',
    user: result.user,
    profile: result.profile,
    status: result.profile_status,
    emailConfirmationRequired: result.email_confirmation_required,
    signedIn,
    replayed: result.replayed,
  };
}

/**
 * supabase.auth.signUp with the same user metadata register sends, so the trigger makes the same
 * profile. With confirmation off Auth signs the user in at once; the profile is then read
 * through RLS ('pending' when the trigger has not made it, which ensure-profile finishes).
 */
export async function registerLegacy(
  deps: RegistrationDeps,
  input: RegisterInput,
  reason: 'configured' | 'registration_disabled',
): Promise<Registration> {
  const data = Object.fromEntries(
    Object.entries({
      full_name: input.full_name,
      username: input.username,
      avatar_url: input.avatar_url,
      metadata: input.metadata,
    }).filter(([, value]) => value !== undefined),
  );
  const { data: answer, error } = await deps.supabase.auth.signUp({
    email: input.email,
    password: input.password,
    options: { data, ...(input.captcha_token ? { captchaToken: input.captcha_token } : {}) },
  });
  if (error) throw fromAuthError(error);
  if (!answer.user) throw fromAuthError({ status: 500, message: 'Auth answered without a user' });
  const user = { id: answer.user.id, email: answer.user.email ?? input.email };
  if (!answer.session) {
    return {
      via: 'legacy',
      reason,
      user,
      profile: null,
      status: 'awaiting_confirmation',
      emailConfirmationRequired: true,
      signedIn: false,
      replayed: false,
    };
  }
  const profile = await getMyProfile(deps.supabase);
  return {
    via: 'legacy',
    reason,
    user,
    profile,
    status: profile ? 'existed' : 'pending',
    emailConfirmationRequired: false,
    signedIn: true,
    replayed: false,
  };
}
