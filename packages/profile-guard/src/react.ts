// supabase-profile-guard/react: the React hooks. Re-exports only (see src/client.ts).
export {
  type RegistrationState,
  type UseProfile,
  useProfile,
  type UseRegistration,
  useRegistration,
} from '../../../shared/kit/react.ts';
