// The kit's registration against the local stack (Auth and PostgREST stand-ins, the functions as
// Deno workers, a real PostgreSQL) through real supabase-js: the guarded path, the legacy path,
// and the server's register switch. SQL only arranges the switch and checks what was stored.
import { describe, expect, it } from 'vitest';
import { ProfileApiError } from '../../shared/client.ts';
import { createProfileKit } from '../../shared/kit/profile-kit.ts';
import { parseRegistrationPath } from '../../shared/kit/rollout.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { countingClient, newPassword, uniqueEmail, uniqueUsername } from './helpers.ts';

const db = useTestDatabase();
const api = useLocalApi(db, {
  functions: true,
  functionEnv: { REGISTER_MODE: 'signup', REGISTER_RATE_LIMIT_MAX: '1000' },
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME = expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/);

async function authUsersWith(email: string): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from auth.users where lower(email) = lower($1)',
    [email],
  )).n;
}

const profileOf = (userId: string, email: string, fields: Record<string, unknown> = {}) => ({
  user_id: userId,
  email,
  full_name: null,
  username: null,
  avatar_url: null,
  metadata: {},
  created_via: 'trigger',
  created_at: TIME,
  updated_at: TIME,
  ...fields,
});

describe('guarded registration (the register function)', () => {
  it('registers the user with the profile the trigger made, not signed in, in one register call', async () => {
    const { supabase, calls } = countingClient(api());
    const email = uniqueEmail('kit');
    const registration = await createProfileKit(supabase).register({
      email,
      password: newPassword(),
      full_name: 'Ada Lovelace',
    });
    expect(registration).toEqual({
      via: 'register',
      user: { id: expect.stringMatching(UUID), email },
      profile: profileOf(registration.user.id, email, { full_name: 'Ada Lovelace' }),
      status: 'existed',
      emailConfirmationRequired: false,
      signedIn: false,
      replayed: false,
    });
    expect(calls('/functions/v1/register')).toBe(1);
    expect((await supabase.auth.getSession()).data.session).toBeNull();
  });

  it('an invalid email is refused with a ProfileApiError naming the email field', async () => {
    const { supabase } = countingClient(api());
    const failure = createProfileKit(supabase).register({
      email: 'not-an-email',
      password: newPassword(),
    });
    await expect(failure).rejects.toBeInstanceOf(ProfileApiError);
    await expect(failure).rejects.toMatchObject({
      status: 400,
      code: 'validation_failed',
      fields: { email: 'must be a valid email address' },
      transient: false,
    });
  });

  it('a taken username is refused 409 username_taken naming the username field, and no user is made', async () => {
    const { supabase } = countingClient(api());
    const kit = createProfileKit(supabase);
    const username = uniqueUsername('taken');
    await kit.register({ email: uniqueEmail('first'), password: newPassword(), username });
    const email = uniqueEmail('second');
    await expect(kit.register({ email, password: newPassword(), username })).rejects
      .toMatchObject({
        status: 409,
        code: 'username_taken',
        fields: { username: 'is already taken' },
      });
    expect(await authUsersWith(email)).toBe(0);
  });

  it('a retry with the same Idempotency-Key replays the first registration and makes no second user', async () => {
    const { supabase } = countingClient(api());
    const kit = createProfileKit(supabase);
    const input = { email: uniqueEmail('retry'), password: newPassword() };
    const idempotencyKey = crypto.randomUUID();
    const first = await kit.register(input, { idempotencyKey });
    const second = await kit.register(input, { idempotencyKey });
    expect(first.replayed).toBe(false);
    expect(second).toEqual({ ...first, replayed: true });
    expect(await authUsersWith(input.email)).toBe(1);
  });

  it('with signInAfterRegister and confirmation off the user is signed in after registering', async () => {
    const { supabase, calls } = countingClient(api());
    const email = uniqueEmail('signin');
    const registration = await createProfileKit(supabase, { signInAfterRegister: true })
      .register({ email, password: newPassword() });
    expect(registration).toMatchObject({ via: 'register', status: 'existed', signedIn: true });
    const { data } = await supabase.auth.getSession();
    expect(data.session?.user.id).toBe(registration.user.id);
    expect(calls('/auth/v1/token?grant_type=password')).toBe(1);
  });
});

describe('legacy registration (supabase.auth.signUp)', () => {
  it("'legacy' signs up through Auth, never calls register, and reads the trigger's profile", async () => {
    const { supabase, calls } = countingClient(api());
    const email = uniqueEmail('legacy');
    const username = uniqueUsername('legacy');
    const registration = await createProfileKit(supabase, { registration: 'legacy' }).register({
      email,
      password: newPassword(),
      full_name: 'Grace Hopper',
      username,
    });
    expect(registration).toEqual({
      via: 'legacy',
      reason: 'configured',
      user: { id: expect.stringMatching(UUID), email },
      profile: profileOf(registration.user.id, email, { full_name: 'Grace Hopper', username }),
      status: 'existed',
      emailConfirmationRequired: false,
      signedIn: true,
      replayed: false,
    });
    expect(calls('/functions/v1/register')).toBe(0);
    expect(calls('/auth/v1/signup')).toBe(1);
  });

  it("'legacy' reports Auth's refusal of a taken email as register would: 409 email_taken", async () => {
    const { supabase } = countingClient(api());
    const kit = createProfileKit(supabase, { registration: 'legacy' });
    const email = uniqueEmail('twice');
    await kit.register({ email, password: newPassword() });
    await supabase.auth.signOut();
    await expect(kit.register({ email, password: newPassword() })).rejects.toMatchObject({
      status: 409,
      code: 'email_taken',
      fields: { email: 'is already registered' },
    });
  });
});

describe("the server's register switch (private.settings.register_enabled = false)", () => {
  async function withRegisterOff<T>(work: () => Promise<T>): Promise<T> {
    await db().query('update private.settings set register_enabled = false');
    try {
      return await work();
    } finally {
      await db().query('update private.settings set register_enabled = true');
    }
  }

  it("'message' (the default) rejects with registration_disabled after one call, not transient", async () => {
    const { supabase, calls } = countingClient(api());
    const email = uniqueEmail('off');
    const error = await withRegisterOff(() =>
      createProfileKit(supabase).register({ email, password: newPassword() }).catch((e) => e)
    );
    expect(error).toBeInstanceOf(ProfileApiError);
    expect(error).toMatchObject({
      status: 503,
      code: 'registration_disabled',
      retryAfterSeconds: 60,
      transient: false,
    });
    expect(calls('/functions/v1/register')).toBe(1);
    expect(await authUsersWith(email)).toBe(0);
  });

  it("'legacy' falls back to signUp with reason registration_disabled, and the trigger makes the profile", async () => {
    const { supabase, calls } = countingClient(api());
    const email = uniqueEmail('fallback');
    const registration = await withRegisterOff(() =>
      createProfileKit(supabase, { whenRegistrationDisabled: 'legacy' })
        .register({ email, password: newPassword(), full_name: 'Katherine Johnson' })
    );
    expect(registration).toMatchObject({
      via: 'legacy',
      reason: 'registration_disabled',
      status: 'existed',
      signedIn: true,
      profile: profileOf(registration.user.id, email, { full_name: 'Katherine Johnson' }),
    });
    expect(calls('/functions/v1/register')).toBe(1);
    expect(calls('/auth/v1/signup')).toBe(1);
    expect(await authUsersWith(email)).toBe(1);
  });
});

describe('parseRegistrationPath (VITE_*/NEXT_PUBLIC_* values)', () => {
  it("reads unset and empty as 'guarded', and 'guarded' and 'legacy' as themselves", () => {
    expect([undefined, '', 'guarded', 'legacy'].map(parseRegistrationPath)).toEqual([
      'guarded',
      'guarded',
      'guarded',
      'legacy',
    ]);
  });

  it('throws on anything else, naming the allowed values', () => {
    for (const value of ['Legacy', 'guarded ', 'signup', 'true']) {
      expect(() => parseRegistrationPath(value)).toThrow(
        `Unknown registration path ${
          JSON.stringify(value)
        }: use 'guarded' or 'legacy' (or leave it unset for 'guarded')`,
      );
    }
  });
});
