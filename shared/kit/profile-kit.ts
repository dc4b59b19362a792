// createProfileKit: everything an app needs for profiles, over one supabase-js client. It wires
// the modules beside it (registration paths, the auth-state hook, the wait, the own-profile
// reads and writes) to one set of options.
import type { SupabaseClient } from '@supabase/supabase-js';
import {
  CLIENT_RETRY,
  createProfileClient,
  type EnsureProfileAnswer,
  ProfileApiError,
  type RegisterInput,
} from '../client.ts';
import type { RetryPolicy } from '../retry.ts';
import { ensureProfileOnSignIn } from './auth-state.ts';
import type { ProfilePatch } from './editable-columns.ts';
import { getMyProfile, updateMyProfile } from './own-profile.ts';
import type { Database, Profile } from './profile-types.ts';
import { registerGuarded, registerLegacy, type Registration } from './registration.ts';
import { fallsBackToLegacy, type RegistrationPath } from './rollout.ts';
import { waitForProfile, type WaitForProfileOptions } from './wait-for-profile.ts';

export interface ProfileKitOptions {
  /** 'guarded' (default): the register function; 'legacy': supabase.auth.signUp. */
  registration?: RegistrationPath;
  /** When the server's register switch is off: 'message' (default) reports it, 'legacy' signs up. */
  whenRegistrationDisabled?: 'legacy' | 'message';
  /** With email confirmation off, sign in with the same email and password after registering. */
  signInAfterRegister?: boolean;
  retry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
}

export interface ProfileKit {
  /** The client the kit was made with (the React hooks listen to its auth state). */
  readonly supabase: SupabaseClient<Database>;
  register(input: RegisterInput, options?: { idempotencyKey?: string }): Promise<Registration>;
  ensureProfile(): Promise<EnsureProfileAnswer>;
  waitForProfile(options?: WaitForProfileOptions): Promise<Profile>;
  getMyProfile(): Promise<Profile | null>;
  updateMyProfile(patch: ProfilePatch): Promise<Profile>;
  ensureProfileOnSignIn(): () => void;
}

export function createProfileKit(
  supabase: SupabaseClient<Database>,
  options: ProfileKitOptions = {},
): ProfileKit {
  const path = options.registration ?? 'guarded';
  const whenDisabled = options.whenRegistrationDisabled ?? 'message';
  const retryOptions = {
    retry: options.retry ?? CLIENT_RETRY,
    ...(options.sleep ? { sleep: options.sleep } : {}),
  };
  const client = createProfileClient(supabase, retryOptions);
  // For waitForProfile, whose own backoff is the retry (see wait-for-profile.ts).
  const once = createProfileClient(supabase, {
    retry: { ...retryOptions.retry, maxAttempts: 1 },
  });
  const deps = {
    supabase,
    client,
    signInAfterRegister: options.signInAfterRegister ?? false,
  };

  return {
    supabase,
    async register(input, callOptions = {}) {
      if (path === 'legacy') return await registerLegacy(deps, input, 'configured');
      try {
        return await registerGuarded(deps, input, callOptions.idempotencyKey);
      } catch (error) {
        if (error instanceof ProfileApiError && fallsBackToLegacy(error, whenDisabled)) {
          return await registerLegacy(deps, input, 'registration_disabled');
        }
        throw error;
      }
    },
    ensureProfile: () => client.ensureProfile(),
    waitForProfile: (waitOptions) => waitForProfile(supabase, once, waitOptions),
    getMyProfile: () => getMyProfile(supabase),
    updateMyProfile: (patch) => updateMyProfile(supabase, patch),
    ensureProfileOnSignIn: () => ensureProfileOnSignIn(supabase, retryOptions),
  };
}
