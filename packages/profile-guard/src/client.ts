// supabase-profile-guard/client: the public, framework-free API. Re-exports only; the code lives
// in the project's shared/ folder, where the functions and tests use it too.
export {
  CLIENT_RETRY,
  type EnsureProfileAnswer,
  ProfileApiError,
  type ProfileStatus,
  type RegisterInput,
  type RegisterResult,
} from '../../../shared/client.ts';
export type { RetryPolicy } from '../../../shared/retry.ts';
export {
  type EnsureOnSignInOptions,
  ensureProfileOnSignIn,
} from '../../../shared/kit/auth-state.ts';
export {
  EDITABLE_PROFILE_COLUMNS,
  type ProfilePatch,
} from '../../../shared/kit/editable-columns.ts';
export {
  createProfileKit,
  type ProfileKit,
  type ProfileKitOptions,
} from '../../../shared/kit/profile-kit.ts';
export type { Database, Profile } from '../../../shared/kit/profile-types.ts';
export type { Registration } from '../../../shared/kit/registration.ts';
export { parseRegistrationPath, type RegistrationPath } from '../../../shared/kit/rollout.ts';
export type { WaitForProfileOptions } from '../../../shared/kit/wait-for-profile.ts';
