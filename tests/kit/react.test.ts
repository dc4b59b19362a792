// @vitest-environment happy-dom
// The React hooks in a DOM (happy-dom) over a kit with a real supabase-js client against the local
// stack: the registration form's state machine and the signed-in user's profile.
import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { createProfileKit } from '../../shared/kit/profile-kit.ts';
import { useProfile, useRegistration } from '../../shared/kit/react.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { countingClient, newPassword, uniqueEmail, useStackProcess } from './helpers.ts';

// happy-dom checks CORS as a browser does (a preflight, then Access-Control-Allow-Origin), which
// the local stack answers as hosted Supabase does. The stack runs in a process of its own, under
// Node's globals rather than the DOM's.

const db = useTestDatabase();
const api = useStackProcess(db, {
  functions: true,
  functionEnv: { REGISTER_MODE: 'signup', REGISTER_RATE_LIMIT_MAX: '1000' },
});

const REGISTER = '/functions/v1/register';

describe('useRegistration', () => {
  it('goes idle -> submitting -> done, with the registration and no field errors', async () => {
    const client = countingClient(api());
    const kit = createProfileKit(client.supabase);
    const { result } = renderHook(() => useRegistration(kit));
    expect(result.current).toMatchObject({
      state: 'idle',
      registration: null,
      error: null,
      fieldErrors: {},
    });
    const email = uniqueEmail('hook');
    let submitted!: Promise<unknown>;
    act(() => {
      submitted = result.current.register({ email, password: newPassword() });
    });
    expect(result.current.state).toBe('submitting');
    await act(() => submitted);
    expect(result.current).toMatchObject({
      state: 'done',
      error: null,
      fieldErrors: {},
      registration: { via: 'register', status: 'existed', user: { email } },
    });
    expect(await submitted).toEqual(result.current.registration);
  });

  it('a refused registration goes to error with the field errors; reset goes back to idle', async () => {
    const kit = createProfileKit(countingClient(api()).supabase);
    const { result } = renderHook(() => useRegistration(kit));
    let answer: unknown;
    await act(async () => {
      answer = await result.current.register({ email: 'not-an-email', password: newPassword() });
    });
    expect(answer).toBeNull();
    expect(result.current.state).toBe('error');
    expect(result.current.error).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(result.current.fieldErrors).toEqual({ email: 'must be a valid email address' });
    act(() => result.current.reset());
    expect(result.current).toMatchObject({
      state: 'idle',
      registration: null,
      error: null,
      fieldErrors: {},
    });
  });

  it('a registration whose profile is not there yet ends in pending', async () => {
    const kit = createProfileKit(countingClient(api()).supabase, { registration: 'legacy' });
    const { result } = renderHook(() => useRegistration(kit));
    await withTriggerOff(db(), () =>
      act(async () => {
        await result.current.register({ email: uniqueEmail('pending'), password: newPassword() });
      }));
    expect(result.current.state).toBe('pending');
    expect(result.current.registration).toMatchObject({
      via: 'legacy',
      status: 'pending',
      profile: null,
      signedIn: true,
    });
  });

  it('a double submit joins the submission under way, and the same form again is replayed', async () => {
    const client = countingClient(api());
    const kit = createProfileKit(client.supabase);
    const { result } = renderHook(() => useRegistration(kit));
    const input = { email: uniqueEmail('double'), password: newPassword() };
    let first!: Promise<unknown>;
    let second!: Promise<unknown>;
    act(() => {
      first = result.current.register(input);
      second = result.current.register(input);
    });
    await act(async () => {
      await Promise.all([first, second]);
    });
    expect(first).toBe(second);
    expect(client.calls(REGISTER)).toBe(1);
    await act(async () => {
      await result.current.register(input);
    });
    expect(client.calls(REGISTER)).toBe(2);
    expect(result.current.registration).toMatchObject({ replayed: true, status: 'existed' });
    const users = await db().one<{ n: number }>(
      'select count(*)::int as n from auth.users where email = $1',
      [input.email],
    );
    expect(users.n).toBe(1);
  });
});

describe('useProfile', () => {
  it('follows sign-in and sign-out, and updates the own profile', async () => {
    const email = uniqueEmail('profile');
    const password = newPassword();
    const client = countingClient(api());
    const kit = createProfileKit(client.supabase);
    const { user } = await kit.register({ email, password, full_name: 'Dorothy Vaughan' });

    const { result } = renderHook(() => useProfile(kit));
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current).toMatchObject({ data: null, error: null });

    await act(async () => {
      await client.supabase.auth.signInWithPassword({ email, password });
    });
    await waitFor(() => expect(result.current.data?.user_id).toBe(user.id));
    expect(result.current).toMatchObject({
      loading: false,
      error: null,
      data: { email, full_name: 'Dorothy Vaughan' },
    });

    let updated: unknown;
    await act(async () => {
      updated = await result.current.update({ full_name: 'Dorothy J. Vaughan' });
    });
    expect(updated).toMatchObject({ user_id: user.id, full_name: 'Dorothy J. Vaughan' });
    expect(result.current.data).toEqual(updated);
    expect(
      await db().one('select full_name from public.user_profiles where user_id = $1', [user.id]),
    ).toEqual({ full_name: 'Dorothy J. Vaughan' });

    await act(async () => {
      updated = await result.current.update({ created_via: 'ensure' } as never);
    });
    expect(updated).toBeNull();
    expect(result.current.error).toMatchObject({
      status: 400,
      code: 'field_not_editable',
      fields: { created_via: 'cannot be changed' },
    });
    expect(result.current.data).toMatchObject({ full_name: 'Dorothy J. Vaughan' });

    await act(async () => {
      await client.supabase.auth.signOut();
    });
    await waitFor(() => expect(result.current.data).toBeNull());
    expect(result.current).toMatchObject({ loading: false, error: null });
  });
});
