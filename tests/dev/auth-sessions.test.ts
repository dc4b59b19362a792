// Sessions in the Auth stand-in as GoTrue keeps them: every sign-in is a row in auth.sessions with
// a refresh token in auth.refresh_tokens; the refresh grant swaps a token once for a new one in
// the same session; POST /logout deletes sessions and, with them, their refresh tokens. Real
// supabase-js against the stand-in served over HTTP (under /auth/v1, as the stack mounts it),
// raw requests where the exact answer matters.
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { AuthChangeEvent, SupabaseClient } from '@supabase/supabase-js';
import { Hono } from 'hono';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthApp } from '../../dev/auth/app.ts';
import { localKeys } from '../../dev/keys.ts';
import type { LocalKeys } from '../../dev/keys.ts';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();
const VERSION = { 'X-Supabase-Api-Version': '2024-01-01' };
const PASSWORD = 'correct horse battery staple';
const REFRESH_TOKEN = /^[a-z0-9]{12}$/;

interface RunningAuth {
  url: string;
  close(): Promise<void>;
}

let keys: LocalKeys;
let standard: RunningAuth; // refresh_token_reuse_interval 10 s, the CLI's default
let strict: RunningAuth; // refresh_token_reuse_interval 0 s

async function startAuth(refreshTokenReuseIntervalSeconds?: number): Promise<RunningAuth> {
  let server: Server | undefined;
  const port = await new Promise<number>((resolve) => {
    // app is made below, once the port is known; nothing calls the server before then.
    server = serve(
      { fetch: (request, env) => app.fetch(request, env), port: 0, hostname: '127.0.0.1' },
      (info) => resolve(info.port),
    ) as Server;
  });
  const url = `http://127.0.0.1:${port}`;
  const app = new Hono().route(
    '/auth/v1',
    createAuthApp({
      pool: db().auth,
      keys,
      apiUrl: url,
      autoconfirm: true,
      bcryptCost: 4,
      onEmail: () => {},
      ...(refreshTokenReuseIntervalSeconds === undefined
        ? {}
        : { refreshTokenReuseIntervalSeconds }),
    }),
  );
  return {
    url,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server!.closeAllConnections();
        server!.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

beforeAll(async () => {
  keys = await localKeys();
  standard = await startAuth();
  strict = await startAuth(0);
});

afterAll(async () => {
  await Promise.all([standard?.close(), strict?.close()]);
});

/** A supabase-js client recording the auth events it fires and the answers it gets. */
function recordingClient(auth: RunningAuth) {
  const events: AuthChangeEvent[] = [];
  const answers: string[] = [];
  const supabase: SupabaseClient = appClient(auth.url, keys.anonKey, {
    global: {
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        const url = new URL(input instanceof Request ? input.url : String(input));
        answers.push(`${init?.method ?? 'GET'} ${url.pathname}${url.search} ${response.status}`);
        return response;
      },
    },
  });
  supabase.auth.onAuthStateChange((event) => void events.push(event));
  return { supabase, events, answers };
}

let counter = 0;
/** A confirmed user (autoconfirm signup), signed in with a supabase-js client of its own. */
async function signedIn(auth: RunningAuth) {
  counter += 1;
  const email = `session-${counter}-${Date.now().toString(36)}@example.test`;
  const { data, error } = await appClient(auth.url, keys.anonKey).auth.signUp({
    email,
    password: PASSWORD,
  });
  if (error) throw error;
  const client = recordingClient(auth);
  const signIn = await client.supabase.auth.signInWithPassword({ email, password: PASSWORD });
  if (signIn.error) throw signIn.error;
  return { ...client, email, userId: data.user!.id, session: signIn.data.session! };
}

async function refreshGrant(auth: RunningAuth, refreshToken: string) {
  const response = await fetch(`${auth.url}/auth/v1/token?grant_type=refresh_token`, {
    method: 'POST',
    headers: { ...VERSION, apikey: keys.anonKey, 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown> & {
      access_token?: string;
      refresh_token?: string;
    },
  };
}

const sessionIdOf = (accessToken: string) => decodeJwt(accessToken).session_id as string;

async function tokensOf(sessionId: string) {
  const { rows } = await db().query(
    'select token, parent, revoked from auth.refresh_tokens where session_id = $1 order by id',
    [sessionId],
  );
  return rows;
}

const ALREADY_USED = {
  status: 400,
  body: { code: 'refresh_token_already_used', message: 'Invalid Refresh Token: Already Used' },
};
const NOT_FOUND = {
  status: 400,
  body: {
    code: 'refresh_token_not_found',
    message: 'Invalid Refresh Token: Refresh Token Not Found',
  },
};

describe('the refresh_token grant', () => {
  it('refreshSession swaps the refresh token for a new access and refresh token in the same session, firing TOKEN_REFRESHED', async () => {
    const { supabase, events, userId, session } = await signedIn(standard);
    expect(session.refresh_token).toMatch(REFRESH_TOKEN);
    const sessionId = sessionIdOf(session.access_token);
    expect(await db().one('select user_id, aal from auth.sessions where id = $1', [sessionId]))
      .toEqual({ user_id: userId, aal: 'aal1' });

    const { data, error } = await supabase.auth.refreshSession();
    expect(error).toBeNull();
    const refreshed = data.session!;
    expect(refreshed.access_token).not.toBe(session.access_token);
    expect(refreshed.refresh_token).toMatch(REFRESH_TOKEN);
    expect(refreshed.refresh_token).not.toBe(session.refresh_token);
    expect(refreshed.user.id).toBe(userId);
    expect(decodeJwt(refreshed.access_token)).toMatchObject({
      sub: userId,
      session_id: sessionId,
      aal: 'aal1',
      amr: decodeJwt(session.access_token).amr,
    });
    expect(events).toEqual(['INITIAL_SESSION', 'SIGNED_IN', 'TOKEN_REFRESHED']);
    expect(await tokensOf(sessionId)).toEqual([
      { token: session.refresh_token, parent: null, revoked: true },
      { token: refreshed.refresh_token, parent: session.refresh_token, revoked: false },
    ]);
    const { data: current } = await supabase.auth.getSession();
    expect(current.session!.refresh_token).toBe(refreshed.refresh_token);
  });

  it('a used token that is the parent of the active one gets that active token again (the client lost the answer)', async () => {
    const { session } = await signedIn(strict);
    const first = await refreshGrant(strict, session.refresh_token);
    expect(first.status).toBe(200);
    const again = await refreshGrant(strict, session.refresh_token);
    expect(again.status).toBe(200);
    expect(again.body.refresh_token).toBe(first.body.refresh_token);
    expect(await tokensOf(sessionIdOf(session.access_token))).toHaveLength(2);
  });

  it('a used token past the reuse interval is refused as already used, and every token of its session is revoked', async () => {
    const { supabase, session } = await signedIn(strict);
    const second = await refreshGrant(strict, session.refresh_token);
    const third = await refreshGrant(strict, second.body.refresh_token!);
    expect(third.status).toBe(200);

    expect(await refreshGrant(strict, session.refresh_token)).toEqual(ALREADY_USED);
    expect(
      (await tokensOf(sessionIdOf(session.access_token))).map((row) => row.revoked),
    ).toEqual([true, true, true]);
    // The newest token went down with its family.
    expect(await refreshGrant(strict, third.body.refresh_token!)).toEqual(ALREADY_USED);
    const { data, error } = await supabase.auth.refreshSession({
      refresh_token: second.body.refresh_token!,
    });
    expect(data.session).toBeNull();
    expect(error).toMatchObject({
      name: 'AuthApiError',
      status: 400,
      code: 'refresh_token_already_used',
    });
  });

  it('within the reuse interval (10 s) a used token is swapped once more', async () => {
    const { session } = await signedIn(standard);
    const second = await refreshGrant(standard, session.refresh_token);
    const third = await refreshGrant(standard, second.body.refresh_token!);
    const reused = await refreshGrant(standard, session.refresh_token);
    expect(reused.status).toBe(200);
    expect(reused.body.refresh_token).toMatch(REFRESH_TOKEN);
    expect([second.body.refresh_token, third.body.refresh_token]).not.toContain(
      reused.body.refresh_token,
    );
  });

  it('an unknown token is not found; a malformed one is not valid', async () => {
    expect(await refreshGrant(standard, 'abcdefghijkl')).toEqual(NOT_FOUND);
    for (const malformed of ['', 'short', 'ABCDEFGHIJKL', 'abcdefghijklm']) {
      expect(await refreshGrant(standard, malformed)).toEqual({
        status: 400,
        body: { code: 'validation_failed', message: 'Refresh token is not valid' },
      });
    }
  });
});

describe('POST /logout', () => {
  it('signOut is answered 204, fires SIGNED_OUT and deletes every session of the user with its refresh tokens', async () => {
    const { supabase, events, answers, userId, session, email } = await signedIn(standard);
    const other = await appClient(standard.url, keys.anonKey).auth.signInWithPassword({
      email,
      password: PASSWORD,
    });
    // The signup's session (autoconfirm), this client's and the other one's.
    expect(
      await db().one('select count(*)::int as n from auth.sessions where user_id = $1', [userId]),
    )
      .toEqual({ n: 3 });

    const { error } = await supabase.auth.signOut();
    expect(error).toBeNull();
    expect(answers.at(-1)).toBe('POST /auth/v1/logout?scope=global 204');
    expect(events).toEqual(['INITIAL_SESSION', 'SIGNED_IN', 'SIGNED_OUT']);
    expect((await supabase.auth.getSession()).data.session).toBeNull();
    expect(
      await db().one('select count(*)::int as n from auth.sessions where user_id = $1', [userId]),
    )
      .toEqual({ n: 0 });
    expect(await tokensOf(sessionIdOf(session.access_token))).toEqual([]);

    expect(await refreshGrant(standard, session.refresh_token)).toEqual(NOT_FOUND);
    expect(await refreshGrant(standard, other.data.session!.refresh_token)).toEqual(NOT_FOUND);
    const user = await fetch(`${standard.url}/auth/v1/user`, {
      headers: {
        ...VERSION,
        apikey: keys.anonKey,
        Authorization: `Bearer ${session.access_token}`,
      },
    });
    expect({ status: user.status, body: await user.json() }).toEqual({
      status: 403,
      body: {
        code: 'session_not_found',
        message: 'Session from session_id claim in JWT does not exist',
      },
    });
  });

  it('scope local ends only this session; scope others every session but this one', async () => {
    const first = await signedIn(standard);
    const second = await appClient(standard.url, keys.anonKey).auth.signInWithPassword({
      email: first.email,
      password: PASSWORD,
    });
    const third = await appClient(standard.url, keys.anonKey).auth.signInWithPassword({
      email: first.email,
      password: PASSWORD,
    });
    const sessions = async () =>
      (await db().query<{ id: string }>('select id from auth.sessions where user_id = $1', [
        first.userId,
      ])).rows.map((row) => row.id).sort();
    const [a, b, c] = [first.session, second.data.session!, third.data.session!].map((s) =>
      sessionIdOf(s.access_token)
    );

    expect((await first.supabase.auth.signOut({ scope: 'local' })).error).toBeNull();
    expect(first.answers.at(-1)).toBe('POST /auth/v1/logout?scope=local 204');
    const remaining = await sessions();
    expect(remaining).toHaveLength(3); // the signup's session, b and c
    expect(remaining).toEqual(expect.arrayContaining([b, c]));
    expect(remaining).not.toContain(a);

    const logout = (token: string, scope: string) =>
      fetch(`${standard.url}/auth/v1/logout?scope=${scope}`, {
        method: 'POST',
        headers: { ...VERSION, apikey: keys.anonKey, Authorization: `Bearer ${token}` },
      });
    const others = await logout(second.data.session!.access_token, 'others');
    expect({ status: others.status, body: await others.text() }).toEqual({ status: 204, body: '' });
    expect(await sessions()).toEqual([b]);

    const unknown = await logout(second.data.session!.access_token, 'everywhere');
    expect({ status: unknown.status, body: await unknown.json() }).toEqual({
      status: 400,
      body: { code: 'validation_failed', message: 'Unsupported logout scope "everywhere"' },
    });
    const anonymous = await logout(keys.anonKey, 'global');
    expect({ status: anonymous.status, body: await anonymous.json() }).toEqual({
      status: 403,
      body: { code: 'bad_jwt', message: 'invalid claim: missing sub claim' },
    });
  });
});
