// The rollout switch: which way an app registers users. 'guarded' is the register function;
// 'legacy' is supabase.auth.signUp with the trigger making the profile, the path an app had
// before the functions, kept so a deploy can switch back by configuration alone.
import type { ProfileApiError } from '../client.ts';

export type RegistrationPath = 'guarded' | 'legacy';

export const REGISTRATION_PATHS: readonly RegistrationPath[] = ['guarded', 'legacy'];

/**
 * Reads a build-time value (VITE_REGISTRATION_PATH, NEXT_PUBLIC_REGISTRATION_PATH): unset or
 * empty is 'guarded'; a typo throws at startup rather than silently choosing a path.
 */
export function parseRegistrationPath(value: string | undefined): RegistrationPath {
  if (value === undefined || value === '') return 'guarded';
  if ((REGISTRATION_PATHS as readonly string[]).includes(value)) return value as RegistrationPath;
  throw new Error(
    `Unknown registration path ${
      JSON.stringify(value)
    }: use 'guarded' or 'legacy' (or leave it unset for 'guarded')`,
  );
}

/**
 * Whether a failed guarded registration falls back to the legacy path: only for the operator's
 * switch (register_enabled = false answers 503 registration_disabled), and only when the app
 * asked for that. Every other failure is the user's to see.
 */
export function fallsBackToLegacy(
  error: ProfileApiError,
  whenRegistrationDisabled: 'legacy' | 'message',
): boolean {
  return error.code === 'registration_disabled' && whenRegistrationDisabled === 'legacy';
}
