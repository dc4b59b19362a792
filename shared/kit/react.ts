// React hooks over a ProfileKit: a registration form's state machine and the signed-in user's
// profile. Plain function calls (no JSX), so the file stays .ts and the package needs no JSX
// runtime; react is the app's own copy (a peer dependency).
import { useCallback, useEffect, useRef, useState } from 'react';
import { ProfileApiError, type RegisterInput } from '../client.ts';
import type { ProfilePatch } from './editable-columns.ts';
import type { ProfileKit } from './profile-kit.ts';
import type { Profile } from './profile-types.ts';
import type { Registration } from './registration.ts';

/** Anything thrown, as the one error type the hooks report. */
function asApiError(error: unknown): ProfileApiError {
  if (error instanceof ProfileApiError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ProfileApiError(0, 'unexpected_error', message, undefined, undefined);
}

export type RegistrationState = 'idle' | 'submitting' | 'done' | 'pending' | 'error';

export interface UseRegistration {
  state: RegistrationState;
  registration: Registration | null;
  error: ProfileApiError | null;
  /** Field name -> message, for the form's inputs (empty when there are none). */
  fieldErrors: Record<string, string>;
  register(
    input: RegisterInput,
    options?: { idempotencyKey?: string },
  ): Promise<Registration | null>;
  reset(): void;
}

const NO_FIELDS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export function useRegistration(kit: ProfileKit): UseRegistration {
  const [state, setState] = useState<RegistrationState>('idle');
  const [registration, setRegistration] = useState<Registration | null>(null);
  const [error, setError] = useState<ProfileApiError | null>(null);
  // Each submission has a number; reset() and newer submissions make older answers stale.
  const generation = useRef(0);
  const inFlight = useRef<Promise<Registration | null> | null>(null);
  // The same form submitted again (after a failure the user retries) keeps its Idempotency-Key,
  // so a first try whose answer was lost is replayed instead of answering email_taken.
  const lastKey = useRef<{ input: string; key: string } | null>(null);

  const register = useCallback(
    (input: RegisterInput, options: { idempotencyKey?: string } = {}) => {
      // A double click while submitting joins the submission under way.
      if (inFlight.current) return inFlight.current;
      const serialized = JSON.stringify(input);
      if (lastKey.current?.input !== serialized) {
        lastKey.current = { input: serialized, key: crypto.randomUUID() };
      }
      const idempotencyKey = options.idempotencyKey ?? lastKey.current.key;
      const mine = ++generation.current;
      setState('submitting');
      setError(null);
      const run = (async () => {
        try {
          const result = await kit.register(input, { idempotencyKey });
          if (generation.current === mine) {
            setRegistration(result);
            setState(
              result.status === 'pending' || result.status === 'awaiting_confirmation'
                ? 'pending'
                : 'done',
            );
          }
          return result;
        } catch (caught) {
          if (generation.current === mine) {
            setError(asApiError(caught));
            setRegistration(null);
            setState('error');
          }
          return null;
        } finally {
          if (generation.current === mine) inFlight.current = null;
        }
      })();
      inFlight.current = run;
      return run;
    },
    [kit],
  );

  const reset = useCallback(() => {
    generation.current++;
    inFlight.current = null;
    lastKey.current = null;
    setState('idle');
    setRegistration(null);
    setError(null);
  }, []);

  return {
    state,
    registration,
    error,
    fieldErrors: error?.fields ?? NO_FIELDS,
    register,
    reset,
  };
}

export interface UseProfile {
  loading: boolean;
  data: Profile | null;
  error: ProfileApiError | null;
  update(patch: ProfilePatch): Promise<Profile | null>;
  reload(): Promise<void>;
}

/** The signed-in user's profile (null when signed out), reloaded when the user changes. */
export function useProfile(kit: ProfileKit): UseProfile {
  const [loading, setLoading] = useState(true);
  const [data, setData] = useState<Profile | null>(null);
  const [error, setError] = useState<ProfileApiError | null>(null);
  // Loads can overlap (sign-in, then sign-out); only the newest one's answer is shown.
  const generation = useRef(0);
  const mounted = useRef(true);

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const profile = await kit.getMyProfile();
      if (mounted.current && generation.current === mine) {
        setData(profile);
        setError(null);
      }
    } catch (caught) {
      if (mounted.current && generation.current === mine) setError(asApiError(caught));
    } finally {
      if (mounted.current && generation.current === mine) setLoading(false);
    }
  }, [kit]);

  const update = useCallback(async (patch: ProfilePatch) => {
    try {
      const profile = await kit.updateMyProfile(patch);
      // A newer answer than any load under way: that load's (older) row must not replace it.
      generation.current++;
      if (mounted.current) {
        setData(profile);
        setError(null);
        setLoading(false);
      }
      return profile;
    } catch (caught) {
      if (mounted.current) setError(asApiError(caught));
      return null;
    }
  }, [kit]);

  useEffect(() => {
    mounted.current = true;
    let userId: string | null | undefined;
    void reload();
    // Reload when the signed-in user changes (sign-in, sign-out, another account); a token
    // refresh keeps the user and costs no request. Deferred out of the callback, because
    // supabase-js must not be called from inside it (it holds its auth lock there).
    const { data: listener } = kit.supabase.auth.onAuthStateChange((_event, session) => {
      const next = session?.user.id ?? null;
      if (userId === undefined) {
        userId = next;
        return;
      }
      if (next === userId) return;
      userId = next;
      setTimeout(() => {
        if (mounted.current) void reload();
      }, 0);
    });
    return () => {
      mounted.current = false;
      listener.subscription.unsubscribe();
    };
  }, [kit, reload]);

  return { loading, data, error, update, reload };
}
