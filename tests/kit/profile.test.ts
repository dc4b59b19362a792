// The kit after sign-up, against the local stack through real supabase-js: ensuring the profile
// on sign-in, waiting for a pending profile, and the user's own row through Row Level Security.
// SQL only arranges faults (the trigger off, a constraint that refuses one user's profile) and
// checks what the database holds.
import { describe, expect, it, vi } from 'vitest';
import type { EnsureProfileAnswer } from '../../shared/client.ts';
import { ensureProfileOnSignIn } from '../../shared/kit/auth-state.ts';
import { EDITABLE_PROFILE_COLUMNS } from '../../shared/kit/editable-columns.ts';
import { createProfileKit } from '../../shared/kit/profile-kit.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { countingClient, newPassword, uniqueEmail, uniqueUsername } from './helpers.ts';

const db = useTestDatabase();
const api = useLocalApi(db, {
  functions: true,
  functionEnv: {
    REGISTER_MODE: 'signup',
    REGISTER_RATE_LIMIT_MAX: '1000',
    ENSURE_RATE_LIMIT_MAX: '1000',
  },
});

const ENSURE = '/functions/v1/ensure-profile';

/** A user who signed up with the trigger off: an auth user without a profile. */
async function userWithoutProfile() {
  const email = uniqueEmail('bare');
  const password = newPassword();
  const { supabase } = countingClient(api());
  const { data, error } = await withTriggerOff(
    db(),
    () => supabase.auth.signUp({ email, password }),
  );
  if (error || !data.user) throw error ?? new Error('no user');
  return { email, password, userId: data.user.id };
}

/** A user registered through the kit, with the profile the trigger made. */
async function registeredUser(fields: { username?: string } = {}) {
  const email = uniqueEmail('user');
  const password = newPassword();
  const { supabase } = countingClient(api());
  const { user } = await createProfileKit(supabase).register({ email, password, ...fields });
  return { email, password, userId: user.id };
}

async function ensureAudit(userId: string) {
  const { rows } = await db().query(
    `select outcome from private.audit_logs where user_id = $1 and source = 'ensure' order by id`,
    [userId],
  );
  return rows.map((row) => row.outcome);
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

describe('ensureProfileOnSignIn', () => {
  it('ensures the profile once per sign-in: not on a token refresh, again after signing out and in', async () => {
    const { email, password, userId } = await userWithoutProfile();
    const client = countingClient(api());
    const { supabase } = client;
    const answers: EnsureProfileAnswer[] = [];
    const stop = ensureProfileOnSignIn(supabase, { onEnsured: (a) => answers.push(a) });
    try {
      await settle();
      expect(client.calls(ENSURE)).toBe(0); // INITIAL_SESSION without a session

      await supabase.auth.signInWithPassword({ email, password });
      await vi.waitFor(() => expect(answers).toHaveLength(1));
      expect(answers[0]).toMatchObject({
        user_id: userId,
        profile_status: 'created',
        profile: { user_id: userId, created_via: 'ensure' },
      });

      const refreshed = await supabase.auth.refreshSession();
      expect(refreshed.error).toBeNull();
      expect(client.calls('grant_type=refresh_token')).toBe(1);
      await settle();
      expect(client.calls(ENSURE)).toBe(1);

      await supabase.auth.signOut();
      await supabase.auth.signInWithPassword({ email, password });
      await vi.waitFor(() => expect(answers).toHaveLength(2));
      expect(answers[1]).toMatchObject({ user_id: userId, profile_status: 'existed' });
      expect(client.calls(ENSURE)).toBe(2);
    } finally {
      stop();
    }
    expect(await ensureAudit(userId)).toEqual(['created', 'existed']);
  });

  it("the kit's ensureProfileOnSignIn calls ensure-profile on sign-in, and nothing once unsubscribed", async () => {
    const { email, password } = await registeredUser();
    const client = countingClient(api());
    const { supabase } = client;
    const stop = createProfileKit(supabase).ensureProfileOnSignIn();
    await supabase.auth.signInWithPassword({ email, password });
    await vi.waitFor(() => expect(client.calls(ENSURE)).toBe(1));
    stop();
    await supabase.auth.signOut();
    await supabase.auth.signInWithPassword({ email, password });
    await settle();
    expect(client.calls(ENSURE)).toBe(1);
  });
});

describe('waitForProfile', () => {
  /** Makes the database refuse this user's profile until the returned function is called. */
  async function refuseProfileOf(userId: string): Promise<() => Promise<void>> {
    await db().query(
      `alter table public.user_profiles add constraint kit_refuse_${
        userId.slice(0, 8)
      } check (user_id <> '${userId}') not valid`,
    );
    return () =>
      db().query(
        `alter table public.user_profiles drop constraint if exists kit_refuse_${
          userId.slice(0, 8)
        }`,
      ).then(() => undefined);
  }

  it('keeps asking while the profile is pending and resolves with it once it can be made', async () => {
    const { email, password, userId } = await userWithoutProfile();
    const client = countingClient(api());
    await client.supabase.auth.signInWithPassword({ email, password });
    const allow = await refuseProfileOf(userId);
    try {
      const waiting = createProfileKit(client.supabase).waitForProfile({ timeoutMs: 15_000 });
      // Two refused attempts recorded by the database, not two requests sent: a request counted
      // on its way out may still reach the database after allow().
      await vi.waitFor(async () => {
        expect(client.calls(ENSURE)).toBeGreaterThanOrEqual(2);
        expect((await ensureAudit(userId)).filter((o) => o === 'failed').length)
          .toBeGreaterThanOrEqual(2);
      }, { timeout: 10_000, interval: 50 });
      await allow();
      const profile = await waiting;
      expect(profile).toMatchObject({ user_id: userId, email, created_via: 'ensure' });
    } finally {
      await allow();
    }
    expect((await ensureAudit(userId)).slice(0, 2)).toEqual(['failed', 'failed']);
    expect((await ensureAudit(userId)).at(-1)).toBe('created');
  });

  it('rejects with profile_timeout when the profile stays pending past timeoutMs', async () => {
    const { email, password, userId } = await userWithoutProfile();
    const client = countingClient(api());
    await client.supabase.auth.signInWithPassword({ email, password });
    const allow = await refuseProfileOf(userId);
    const started = Date.now();
    try {
      await expect(createProfileKit(client.supabase).waitForProfile({ timeoutMs: 1500 })).rejects
        .toMatchObject({ status: 504, code: 'profile_timeout', transient: true });
    } finally {
      await allow();
    }
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(4000);
    expect(client.calls(ENSURE)).toBeGreaterThanOrEqual(2);
  });

  it('rejects with 401 not_signed_in without a session, calling nothing', async () => {
    const client = countingClient(api());
    await expect(createProfileKit(client.supabase).waitForProfile()).rejects.toMatchObject({
      status: 401,
      code: 'not_signed_in',
    });
    expect(client.calls(ENSURE)).toBe(0);
  });
});

describe('the own profile through Row Level Security', () => {
  it('getMyProfile answers the signed-in user’s row, and null when signed out', async () => {
    const { email, password, userId } = await registeredUser();
    const { supabase } = countingClient(api());
    const kit = createProfileKit(supabase);
    expect(await kit.getMyProfile()).toBeNull();
    await supabase.auth.signInWithPassword({ email, password });
    expect(await kit.getMyProfile()).toMatchObject({ user_id: userId, email });
  });

  it('updateMyProfile writes the editable columns of the own row and answers it as stored', async () => {
    const { email, password, userId } = await registeredUser();
    const { supabase } = countingClient(api());
    const kit = createProfileKit(supabase);
    await supabase.auth.signInWithPassword({ email, password });
    const username = uniqueUsername('edited');
    const updated = await kit.updateMyProfile({
      full_name: 'Mary Jackson',
      username,
      avatar_url: 'https://example.com/a.png',
      metadata: { theme: 'dark' },
    });
    const stored = await db().one(
      'select full_name, username, avatar_url, metadata, email from public.user_profiles where user_id = $1',
      [userId],
    );
    expect(stored).toEqual({
      full_name: 'Mary Jackson',
      username,
      avatar_url: 'https://example.com/a.png',
      metadata: { theme: 'dark' },
      email,
    });
    expect(updated).toMatchObject({ user_id: userId, ...stored });
  });

  it('a column outside the grant is refused before any request, naming the field', async () => {
    const { email, password, userId } = await registeredUser();
    const client = countingClient(api());
    const kit = createProfileKit(client.supabase);
    await client.supabase.auth.signInWithPassword({ email, password });
    const patch = { full_name: 'Sneaky', email: 'someone@else.example' } as Parameters<
      typeof kit.updateMyProfile
    >[0];
    await expect(kit.updateMyProfile(patch)).rejects.toMatchObject({
      status: 400,
      code: 'field_not_editable',
      fields: { email: 'cannot be changed' },
    });
    expect(client.calls('/rest/v1/user_profiles')).toBe(0);
    expect(
      await db().one('select email, full_name from public.user_profiles where user_id = $1', [
        userId,
      ]),
    ).toEqual({ email, full_name: null });
  });

  it("another user's username is refused 409 username_taken naming the username field", async () => {
    const username = uniqueUsername('owned');
    await registeredUser({ username });
    const { email, password } = await registeredUser();
    const { supabase } = countingClient(api());
    await supabase.auth.signInWithPassword({ email, password });
    await expect(createProfileKit(supabase).updateMyProfile({ username: username.toUpperCase() }))
      .rejects.toMatchObject({
        status: 409,
        code: 'username_taken',
        fields: { username: 'is already taken' },
      });
  });

  it("another user's profile is never returned or changed", async () => {
    const other = await registeredUser();
    const me = await registeredUser();
    const { supabase } = countingClient(api());
    await supabase.auth.signInWithPassword({ email: me.email, password: me.password });
    const kit = createProfileKit(supabase);
    expect((await kit.getMyProfile())?.user_id).toBe(me.userId);
    // Even asking PostgREST for every row answers the own one only.
    const { data } = await supabase.from('user_profiles').select('user_id');
    expect(data).toEqual([{ user_id: me.userId }]);
    const { data: changed } = await supabase.from('user_profiles').update({ full_name: 'Hacked' })
      .eq('user_id', other.userId).select('user_id');
    expect(changed).toEqual([]);
    expect(
      await db().one('select full_name from public.user_profiles where user_id = $1', [
        other.userId,
      ]),
    ).toEqual({ full_name: null });
  });

  it('signed out, updateMyProfile rejects with 401 not_signed_in', async () => {
    const { supabase } = countingClient(api());
    await expect(createProfileKit(supabase).updateMyProfile({ full_name: 'Nobody' })).rejects
      .toMatchObject({ status: 401, code: 'not_signed_in' });
  });
});

it("EDITABLE_PROFILE_COLUMNS is exactly the database's column UPDATE grant to authenticated", async () => {
  const { rows } = await db().query(
    `select column_name from information_schema.column_privileges
      where table_schema = 'public' and table_name = 'user_profiles'
        and grantee = 'authenticated' and privilege_type = 'UPDATE'
      order by column_name`,
  );
  expect(rows.map((row) => row.column_name)).toEqual([...EDITABLE_PROFILE_COLUMNS].sort());
  // And no table-wide UPDATE, which would make every column editable.
  const table = await db().one(
    `select has_table_privilege('authenticated', 'public.user_profiles', 'UPDATE') as update`,
  );
  expect(table).toEqual({ update: false });
});
