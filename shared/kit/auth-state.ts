// Ensures the profile when a user signs in, once per user: the app's safety net for users who
// arrived by a path that skipped register (OAuth, magic links, a signUp while the trigger was
// off). Driven by supabase.auth.onAuthStateChange, so it covers every way of signing in.
import type { AuthChangeEvent, Session, SupabaseClient } from '@supabase/supabase-js';
import {
  CLIENT_RETRY,
  createProfileClient,
  type EnsureProfileAnswer,
  ProfileApiError,
} from '../client.ts';
import type { RetryPolicy } from '../retry.ts';
import type { Database } from './profile-types.ts';

export interface EnsureOnSignInOptions {
  retry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  /** Called with each answer (the profile, or 'pending' with none). */
  onEnsured?: (answer: EnsureProfileAnswer) => void;
  /** Called when ensuring failed after its retries; the next sign-in tries again. */
  onError?: (error: ProfileApiError) => void;
}

/** Subscribes; returns the unsubscribe function (call it on unmount). */
export function ensureProfileOnSignIn(
  supabase: SupabaseClient<Database>,
  options: EnsureOnSignInOptions = {},
): () => void {
  const client = createProfileClient(supabase, {
    retry: options.retry ?? CLIENT_RETRY,
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
  // The user whose profile was ensured (or is being ensured). TOKEN_REFRESHED, USER_UPDATED and
  // the SIGNED_IN that supabase-js repeats when a tab regains focus carry the same user, and
  // cost no call; SIGNED_OUT forgets, so the next sign-in ensures again.
  let ensuredFor: string | null = null;
  let active = true;

  const ensure = (userId: string) => {
    client.ensureProfile().then(
      (answer) => {
        if (active) options.onEnsured?.(answer);
      },
      (error: unknown) => {
        // Failed: let the next SIGNED_IN for this user try again.
        if (ensuredFor === userId) ensuredFor = null;
        if (!active) return;
        options.onError?.(
          error instanceof ProfileApiError
            ? error
            : new ProfileApiError(0, 'network_error', String(error), undefined, undefined),
        );
      },
    );
  };

  const onChange = (event: AuthChangeEvent, session: Session | null) => {
    if (event === 'SIGNED_OUT') {
      ensuredFor = null;
      return;
    }
    if ((event !== 'SIGNED_IN' && event !== 'INITIAL_SESSION') || !session) return;
    const userId = session.user.id;
    if (ensuredFor === userId) return;
    ensuredFor = userId;
    // Out of the callback: supabase-js holds its auth lock while it runs the callbacks, and a
    // call that needs the session (functions.invoke does) would wait for that lock: a deadlock.
    setTimeout(() => {
      if (active && ensuredFor === userId) ensure(userId);
    }, 0);
  };

  const { data } = supabase.auth.onAuthStateChange(onChange);
  return () => {
    active = false;
    data.subscription.unsubscribe();
  };
}
