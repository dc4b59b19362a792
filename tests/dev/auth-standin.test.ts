import type { Server } from 'node:http';
import { createHash } from 'node:crypto';
import { serve } from '@hono/node-server';
import type { SupabaseClient } from '@supabase/supabase-js';
import { Hono } from 'hono';
import { decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthApp } from '../../dev/auth/app.ts';
import type { AuthOptions } from '../../dev/auth/app.ts';
import type { ConfirmationMail } from '../../dev/auth/mail.ts';
import { localKeys, publicJwk, signEs256, signHs256 } from '../../dev/keys.ts';
import { appClient } from '../helpers/clients.ts';
import type { LocalKeys } from '../../dev/keys.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const SITE = 'http://127.0.0.1:3000';
const VERSION = { 'X-Supabase-Api-Version': '2024-01-01' };

interface RunningAuth {
  url: string;
  mails: ConfirmationMail[];
  close(): Promise<void>;
}

let keys: LocalKeys;
let open: RunningAuth; // email confirmation off: the local default
let confirming: RunningAuth; // email confirmation on, GoTrue's default mail interval (60 s)
let patient: RunningAuth; // email confirmation on, a five-minute mail interval
let guarded: RunningAuth; // captcha required on signup

// Serves the stand-in under /auth/v1 as the stack does. The app is built once the port is known,
// because the port is part of the token issuer and of the confirmation links.
async function startAuth(
  options: Pick<AuthOptions, 'autoconfirm' | 'captchaToken' | 'mailIntervalSeconds'>,
): Promise<RunningAuth> {
  const mails: ConfirmationMail[] = [];
  const deliver = (mail: ConfirmationMail) => {
    if (mail.to.startsWith('bounce')) throw new Error('mailbox unavailable');
    mails.push(mail);
  };
  let server: Server | undefined;
  const port = await new Promise<number>((resolve) => {
    // app is made below, once the port is known; nothing calls the server before then.
    server = serve({
      fetch: (request, env) => app.fetch(request, env),
      port: 0,
      hostname: '127.0.0.1',
    }, (info) => resolve(info.port)) as Server;
  });
  const url = `http://127.0.0.1:${port}`;
  const app = new Hono().route(
    '/auth/v1',
    createAuthApp({
      pool: db().auth,
      keys,
      apiUrl: url,
      siteUrl: SITE,
      bcryptCost: 4,
      onEmail: (mail) => deliver(mail),
      ...options,
    }),
  );
  return {
    url,
    mails,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server!.closeAllConnections();
        server!.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function client(
  auth: RunningAuth,
  key: string = keys.anonKey,
  fetchLog?: string[],
): SupabaseClient {
  return appClient(auth.url, key, {
    global: fetchLog
      ? {
        fetch: (input, init) => {
          fetchLog.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
          return fetch(input, init);
        },
      }
      : {},
  });
}

/** An answer; body is the parsed JSON (null when empty), typed B: what the test reads of it. */
interface Answer<B> {
  status: number;
  headers: Headers;
  body: B;
}

/** Auth's error body as API version 2024-01-01 (X-Supabase-Api-Version) answers it. */
interface AuthErrorBody {
  code: string;
  message: string;
}

/** A raw request, for what supabase-js does not expose: exact status, body and headers. */
async function call<B = unknown>(
  auth: RunningAuth,
  path: string,
  init: {
    method?: string;
    body?: unknown;
    bearer?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer<B>> {
  const headers: Record<string, string> = { apikey: keys.anonKey, ...init.headers };
  const bearer = init.bearer === undefined ? keys.anonKey : init.bearer;
  if (bearer !== null) headers.Authorization = `Bearer ${bearer}`;
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${auth.url}/auth/v1${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    redirect: 'manual',
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? null : JSON.parse(text)) as B,
  };
}

function fragmentOf(location: string | null): Record<string, string> {
  return Object.fromEntries(new URLSearchParams((location ?? '').split('#')[1] ?? ''));
}

async function profileOf(userId: string) {
  const { rows } = await db().query(
    'select email, full_name, username, created_via from public.user_profiles where user_id = $1',
    [userId],
  );
  return rows[0];
}

async function countUsers(email: string): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from auth.users where email = $1',
    [email],
  )).n;
}

async function withHostileTrigger(work: () => Promise<void>): Promise<void> {
  await db().query(
    `create function public.hostile_signup() returns trigger language plpgsql security definer
                    set search_path = '' as $$ begin raise exception 'hostile trigger says no'; end $$`,
  );
  await db().query(`create trigger users_zz_hostile after insert on auth.users
                    for each row execute function public.hostile_signup()`);
  try {
    await work();
  } finally {
    await db().query(
      'drop trigger users_zz_hostile on auth.users; drop function public.hostile_signup()',
    );
  }
}

interface SignupStep {
  tbl: string;
  op: string;
  role: string | null;
  meta: unknown;
  app: unknown;
  confirmed: boolean | null;
  tx: string;
}

/** Records every row auth.users and auth.identities see (AFTER triggers), in order, with the transaction. */
async function withSignupRecorder(
  work: (steps: () => Promise<SignupStep[]>) => Promise<void>,
): Promise<void> {
  await db().query(
    `create table public.signup_steps (n serial, tbl text, op text, role text, meta jsonb, app jsonb, confirmed boolean, tx text)`,
  );
  await db().query(
    `create function public.record_signup_step() returns trigger language plpgsql security definer set search_path = '' as $$
                    begin
                      if tg_table_name = 'users' then
                        insert into public.signup_steps (tbl, op, role, meta, app, confirmed, tx)
                        values ('users', tg_op, new.role, new.raw_user_meta_data, new.raw_app_meta_data, new.email_confirmed_at is not null, txid_current()::text);
                      else
                        insert into public.signup_steps (tbl, op, meta, tx) values ('identities', tg_op, new.identity_data, txid_current()::text);
                      end if;
                      return null;
                    end $$`,
  );
  await db().query(
    `create trigger users_zz_steps after insert or update on auth.users for each row execute function public.record_signup_step()`,
  );
  await db().query(
    `create trigger identities_zz_steps after insert on auth.identities for each row execute function public.record_signup_step()`,
  );
  try {
    await work(async () =>
      (await db().query<SignupStep>(
        'select tbl, op, role, meta, app, confirmed, tx from public.signup_steps order by n',
      )).rows
    );
  } finally {
    await db().query(
      `drop trigger users_zz_steps on auth.users; drop trigger identities_zz_steps on auth.identities;
                      drop function public.record_signup_step(); drop table public.signup_steps`,
    );
  }
}

beforeAll(async () => {
  keys = await localKeys();
  open = await startAuth({ autoconfirm: true });
  confirming = await startAuth({ autoconfirm: false });
  guarded = await startAuth({ autoconfirm: true, captchaToken: 'let-me-in' });
  patient = await startAuth({ autoconfirm: false, mailIntervalSeconds: 300 });
});

afterAll(async () => {
  await Promise.all([open?.close(), confirming?.close(), guarded?.close(), patient?.close()]);
});

describe('signup with email confirmation off', () => {
  it('creates the user and a session, and the real trigger creates the profile', async () => {
    const { data, error } = await client(open).auth.signUp({
      email: 'Ada@Example.test',
      password: 'correct horse',
      options: { data: { full_name: 'Ada Lovelace', username: 'ada_l' } },
    });
    expect(error).toBeNull();
    const user = data.user!;
    expect(data.session).toMatchObject({
      token_type: 'bearer',
      expires_in: 3600,
      user: { id: user.id },
    });
    expect(user).toMatchObject({
      aud: 'authenticated',
      role: 'authenticated',
      email: 'ada@example.test',
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      is_anonymous: false,
    });
    // GoTrue merges the identity's claims into user_metadata (RemoveUnconfirmedIdentities).
    const metadata = {
      sub: user.id,
      email: 'ada@example.test',
      email_verified: true,
      phone_verified: false,
      full_name: 'Ada Lovelace',
      username: 'ada_l',
    };
    expect(user.user_metadata).toEqual(metadata);
    expect(user.email_confirmed_at).toEqual(expect.any(String));
    expect(user.last_sign_in_at).toEqual(expect.any(String));
    expect(user.identities).toEqual([
      {
        identity_id: expect.any(String),
        id: user.id,
        user_id: user.id,
        // The answer's identity shares its map with user_metadata, so Confirm's email_verified
        // shows here; the row keeps false (below).
        identity_data: metadata,
        provider: 'email',
        last_sign_in_at: expect.any(String),
        created_at: expect.any(String),
        updated_at: expect.any(String),
        email: 'ada@example.test',
      },
    ]);
    expect(await profileOf(user.id)).toEqual({
      email: 'ada@example.test',
      full_name: 'Ada Lovelace',
      username: 'ada_l',
      created_via: 'trigger',
    });
    const { rows: audit } = await db().query(
      'select source, outcome from private.audit_logs where user_id = $1',
      [user.id],
    );
    expect(audit).toEqual([{ source: 'trigger', outcome: 'created' }]);
    const { rows: stored } = await db().query(
      'select u.raw_user_meta_data, i.identity_data from auth.users u join auth.identities i on i.user_id = u.id where u.id = $1',
      [user.id],
    );
    expect(stored).toEqual([{
      raw_user_meta_data: metadata,
      identity_data: { ...metadata, email_verified: false },
    }]);
  });

  it('writes as supabase_auth_admin in GoTrue order, so the insert trigger sees role empty and nothing confirmed', async () => {
    await db().query(
      `create table public.signup_seen (login text, role text, email_confirmed_at timestamptz, app_metadata jsonb)`,
    );
    await db().query(
      `create function public.record_signup_seen() returns trigger language plpgsql security definer
                      set search_path = '' as $$
                      begin insert into public.signup_seen values (session_user, new.role, new.email_confirmed_at, new.raw_app_meta_data);
                      return null; end $$`,
    );
    await db().query(
      `create trigger users_zz_seen after insert on auth.users for each row execute function public.record_signup_seen()`,
    );
    try {
      const { data, error } = await client(open).auth.signUp({
        email: 'order@example.test',
        password: 'secret-123',
      });
      expect(error).toBeNull();
      expect((await db().query('select * from public.signup_seen')).rows).toEqual([
        {
          login: 'supabase_auth_admin',
          role: '',
          email_confirmed_at: null,
          app_metadata: { provider: 'email', providers: ['email'] },
        },
      ]);
      const { rows } = await db().query(
        'select role, email_confirmed_at is not null as confirmed from auth.users where id = $1',
        [data.user!.id],
      );
      expect(rows).toEqual([{ role: 'authenticated', confirmed: true }]);
    } finally {
      await db().query(
        'drop trigger users_zz_seen on auth.users; drop function public.record_signup_seen(); drop table public.signup_seen',
      );
    }
  });

  it('merges the identity into user_metadata in a later UPDATE of the same transaction, statement by statement as GoTrue', async () => {
    await withSignupRecorder(async (steps) => {
      const { data, error } = await client(open).auth.signUp({
        email: 'Steps@Example.test',
        password: 'secret-123',
        options: { data: { full_name: 'Eve Steps', sub: 'spoofed', nickname: null } },
      });
      expect(error).toBeNull();
      const id = data.user!.id;
      const requested = { full_name: 'Eve Steps', sub: 'spoofed', nickname: null };
      const merged = {
        full_name: 'Eve Steps',
        sub: id,
        email: 'steps@example.test',
        email_verified: false,
        phone_verified: false,
      };
      const app = { provider: 'email', providers: ['email'] };
      const rows = await steps();
      const signupTx = rows[0]!.tx;
      expect(rows.map(({ tx, ...row }) => ({ ...row, sameTransaction: tx === signupTx }))).toEqual([
        {
          tbl: 'users',
          op: 'INSERT',
          role: '',
          meta: requested,
          app,
          confirmed: false,
          sameTransaction: true,
        },
        {
          tbl: 'users',
          op: 'UPDATE',
          role: 'authenticated',
          meta: requested,
          app,
          confirmed: false,
          sameTransaction: true,
        },
        // The identity keeps the request's null; the claims win over the request's "sub".
        {
          tbl: 'identities',
          op: 'INSERT',
          role: null,
          meta: { ...merged, nickname: null },
          app: null,
          confirmed: null,
          sameTransaction: true,
        },
        {
          tbl: 'users',
          op: 'UPDATE',
          role: 'authenticated',
          meta: merged,
          app,
          confirmed: false,
          sameTransaction: true,
        },
        {
          tbl: 'users',
          op: 'UPDATE',
          role: 'authenticated',
          meta: merged,
          app,
          confirmed: false,
          sameTransaction: true,
        },
        {
          tbl: 'users',
          op: 'UPDATE',
          role: 'authenticated',
          meta: merged,
          app,
          confirmed: true,
          sameTransaction: true,
        },
        {
          tbl: 'users',
          op: 'UPDATE',
          role: 'authenticated',
          meta: { ...merged, email_verified: true },
          app,
          confirmed: true,
          sameTransaction: true,
        },
        // The session is issued afterwards, in a transaction of its own (last_sign_in_at).
        {
          tbl: 'users',
          op: 'UPDATE',
          role: 'authenticated',
          meta: { ...merged, email_verified: true },
          app,
          confirmed: true,
          sameTransaction: false,
        },
      ]);
    });
  });

  it('ends a signup with confirmation on with the mail token UPDATE, the identity already merged', async () => {
    await withSignupRecorder(async (steps) => {
      const { data, error } = await client(confirming).auth.signUp({
        email: 'steps-on@example.test',
        password: 'secret-123',
        options: { data: { full_name: 'On' } },
      });
      expect(error).toBeNull();
      const merged = {
        full_name: 'On',
        sub: data.user!.id,
        email: 'steps-on@example.test',
        email_verified: false,
        phone_verified: false,
      };
      expect(data.user!.user_metadata).toEqual(merged);
      expect(data.user!.identities![0]!.identity_data).toEqual(merged);
      const rows = await steps();
      expect(rows.map((row) => [row.tbl, row.op, row.meta, row.confirmed])).toEqual([
        ['users', 'INSERT', { full_name: 'On' }, false],
        ['users', 'UPDATE', { full_name: 'On' }, false],
        ['identities', 'INSERT', merged, null],
        ['users', 'UPDATE', merged, false],
        ['users', 'UPDATE', merged, false],
        ['users', 'UPDATE', merged, false],
      ]);
      expect(new Set(rows.map((row) => row.tx)).size).toBe(1);
      const { rows: token } = await db().query(
        `select confirmation_token <> '' as pending from auth.users where id = $1`,
        [data.user!.id],
      );
      expect(token).toEqual([{ pending: true }]);
    });
  });

  it('issues an ES256 access token with GoTrue claims that getUser accepts', async () => {
    const { data } = await client(open).auth.signUp({
      email: 'claims@example.test',
      password: 'secret-123',
    });
    const token = data.session!.access_token;
    expect(decodeProtectedHeader(token)).toEqual({
      alg: 'ES256',
      typ: 'JWT',
      kid: keys.signingKey.kid,
    });
    const claims = decodeJwt(token);
    expect(claims).toEqual({
      iss: `${open.url}/auth/v1`,
      sub: data.user!.id,
      aud: 'authenticated',
      exp: (claims.iat as number) + 3600,
      iat: expect.any(Number),
      email: 'claims@example.test',
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: {
        sub: data.user!.id,
        email: 'claims@example.test',
        email_verified: true,
        phone_verified: false,
      },
      role: 'authenticated',
      aal: 'aal1',
      // The sign-in's time (its stored AMR claim), which the token's iat follows within a second.
      amr: [{ method: 'password', timestamp: expect.any(Number) }],
      session_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      is_anonymous: false,
    });
    expect(data.session!.expires_at).toBe(claims.exp);
    const signedInAt = (claims.amr as Array<{ timestamp: number }>)[0]!.timestamp;
    // Two clocks at second granularity (the database's for the claim, the issuer's for iat):
    // the same moment, give or take the second they straddle.
    expect(Math.abs((claims.iat as number) - signedInAt)).toBeLessThanOrEqual(1);
    const { data: fetched, error } = await client(open).auth.getUser(token);
    expect(error).toBeNull();
    // GET /user reads the identity row, which kept email_verified: false.
    const identity = data.user!.identities![0]!;
    expect(fetched.user).toEqual({
      ...data.user,
      identities: [{
        ...identity,
        identity_data: { ...identity.identity_data, email_verified: false },
      }],
    });
  });

  it('refuses a second signup of the same address with 422 user_already_exists and writes nothing', async () => {
    await client(open).auth.signUp({ email: 'twice@example.test', password: 'secret-123' });
    const { data, error } = await client(open).auth.signUp({
      email: 'TWICE@example.test',
      password: 'other-secret',
    });
    expect(data).toEqual({ user: null, session: null });
    expect(error).toMatchObject({
      name: 'AuthApiError',
      status: 422,
      code: 'user_already_exists',
      message: 'User already registered',
    });
    expect(await countUsers('twice@example.test')).toBe(1);
  });

  it('completes the signup of an address that exists unconfirmed: confirmed and signed in, nothing else changed', async () => {
    const { data: created } = await client(open, keys.serviceRoleKey).auth.admin.createUser({
      email: 'pending@example.test',
      password: 'secret-123',
      user_metadata: { full_name: 'First' },
    });
    const { data, error } = await client(open).auth.signUp({
      email: 'pending@example.test',
      password: 'other-456',
      options: { data: { full_name: 'Second' } },
    });
    expect(error).toBeNull();
    expect(data.session).not.toBeNull();
    expect(data.user).toMatchObject({
      id: created.user!.id,
      email_confirmed_at: expect.any(String),
      user_metadata: { full_name: 'First' },
    });
    expect(await countUsers('pending@example.test')).toBe(1);
  });

  it('answers 500 "Database error saving new user" and writes nothing when a trigger on auth.users raises', async () => {
    await withHostileTrigger(async () => {
      const { error } = await client(open).auth.signUp({
        email: 'doomed@example.test',
        password: 'secret-123',
      });
      // supabase-js 2.108.2+ turns every 500 into a retryable fetch error without a code.
      expect(error).toMatchObject({ name: 'AuthRetryableFetchError', status: 500 });

      const current = await call(open, '/signup', {
        body: { email: 'doomed@example.test', password: 'secret-123' },
        headers: VERSION,
      });
      expect(current.status).toBe(500);
      expect(current.body).toEqual({
        code: 'unexpected_failure',
        message: 'Database error saving new user',
      });
      expect(current.headers.get('x-sb-error-code')).toBe('unexpected_failure');
      expect(current.headers.get('x-supabase-api-version')).toBe('2024-01-01');

      const legacy = await call(open, '/signup', {
        body: { email: 'doomed@example.test', password: 'secret-123' },
      });
      expect(legacy.status).toBe(500);
      expect(legacy.body).toEqual({
        code: 500,
        error_code: 'unexpected_failure',
        msg: 'Database error saving new user',
        error_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });

      const admin = await call(open, '/admin/users', {
        bearer: keys.serviceRoleKey,
        body: { email: 'doomed@example.test' },
        headers: VERSION,
      });
      expect(admin.status).toBe(500);
      expect(admin.body).toEqual({
        code: 'unexpected_failure',
        message: 'Database error creating new user',
      });
    });
    expect(await countUsers('doomed@example.test')).toBe(0);
    const { rows } = await db().query(
      `select count(*)::int as n from auth.identities where email = 'doomed@example.test'`,
    );
    expect(rows).toEqual([{ n: 0 }]);
  });
});

describe('signup with email confirmation on', () => {
  it('creates an unconfirmed user, refuses sign-in until the mailed link is followed, then signs in', async () => {
    const anon = client(confirming);
    const { data, error } = await anon.auth.signUp({
      email: 'grace@example.test',
      password: 'secret-123',
      options: { data: { full_name: 'Grace Hopper' } },
    });
    expect(error).toBeNull();
    expect(data.session).toBeNull();
    const user = data.user!;
    expect(user.email_confirmed_at).toBeUndefined();
    expect(user.confirmation_sent_at).toEqual(expect.any(String));
    expect(user.identities).toHaveLength(1);
    expect(await profileOf(user.id)).toMatchObject({
      full_name: 'Grace Hopper',
      created_via: 'trigger',
    });

    const mail = confirming.mails.at(-1)!;
    expect(mail).toEqual({
      to: 'grace@example.test',
      type: 'signup',
      link: expect.any(String),
      token: expect.stringMatching(/^\d{6}$/),
    });
    const hash = createHash('sha224').update(`grace@example.test${mail.token}`).digest('hex');
    expect(mail.link).toBe(
      `${confirming.url}/auth/v1/verify?token=${hash}&type=signup&redirect_to=${
        encodeURIComponent(SITE)
      }`,
    );
    expect(
      (await db().query('select confirmation_token from auth.users where id = $1', [user.id])).rows,
    ).toEqual([{ confirmation_token: hash }]);

    const early = await anon.auth.signInWithPassword({
      email: 'grace@example.test',
      password: 'secret-123',
    });
    expect(early.error).toMatchObject({
      status: 400,
      code: 'email_not_confirmed',
      message: 'Email not confirmed',
    });

    const verified = await fetch(mail.link, { redirect: 'manual' });
    expect(verified.status).toBe(303);
    const location = verified.headers.get('location')!;
    expect(location.startsWith(`${SITE}#`)).toBe(true);
    const fragment = fragmentOf(location);
    expect(fragment).toEqual({
      access_token: expect.any(String),
      expires_at: expect.stringMatching(/^\d+$/),
      expires_in: '3600',
      refresh_token: expect.any(String),
      sb: '',
      token_type: 'bearer',
      type: 'signup',
    });
    expect(decodeJwt(fragment.access_token!)).toMatchObject({
      sub: user.id,
      amr: [{ method: 'otp' }],
    });
    const { rows } = await db().query(
      `select u.email_confirmed_at is not null as confirmed, u.confirmation_token, u.raw_user_meta_data, i.identity_data
         from auth.users u join auth.identities i on i.user_id = u.id where u.id = $1`,
      [user.id],
    );
    expect(rows).toEqual([
      {
        confirmed: true,
        confirmation_token: '',
        raw_user_meta_data: {
          sub: user.id,
          email: 'grace@example.test',
          email_verified: true,
          phone_verified: false,
          full_name: 'Grace Hopper',
        },
        identity_data: {
          sub: user.id,
          email: 'grace@example.test',
          email_verified: true,
          phone_verified: false,
          full_name: 'Grace Hopper',
        },
      },
    ]);

    const signedIn = await anon.auth.signInWithPassword({
      email: 'grace@example.test',
      password: 'secret-123',
    });
    expect(signedIn.error).toBeNull();
    expect(signedIn.data.user).toMatchObject({
      id: user.id,
      email_confirmed_at: expect.any(String),
    });

    const reused = await fetch(mail.link, { redirect: 'manual' });
    expect(reused.status).toBe(303);
    expect(reused.headers.get('location')).toBe(
      `${SITE}#error=access_denied&error_code=otp_expired&error_description=Email+link+is+invalid+or+has+expired&sb=`,
    );
  });

  it('lands on an allowed redirect_to after confirming, and on the site for a foreign one', async () => {
    await client(confirming).auth.signUp({
      email: 'landing@example.test',
      password: 'secret-123',
      options: { emailRedirectTo: `${SITE}/welcome` },
    });
    const mail = confirming.mails.at(-1)!;
    expect(new URL(mail.link).searchParams.get('redirect_to')).toBe(`${SITE}/welcome`);
    const landed = await fetch(mail.link, { redirect: 'manual' });
    expect(landed.headers.get('location')!.startsWith(`${SITE}/welcome#access_token=`)).toBe(true);

    const foreign = await fetch(
      `${confirming.url}/auth/v1/verify?token=nope&type=signup&redirect_to=${
        encodeURIComponent('https://evil.example')
      }`,
      {
        redirect: 'manual',
      },
    );
    expect(foreign.headers.get('location')).toBe(
      `${SITE}#error=access_denied&error_code=otp_expired&error_description=Email+link+is+invalid+or+has+expired&sb=`,
    );
  });

  it('confirms through verifyOtp with the mailed code', async () => {
    const anon = client(confirming);
    await anon.auth.signUp({ email: 'otp@example.test', password: 'secret-123' });
    const mail = confirming.mails.at(-1)!;
    const wrong = await anon.auth.verifyOtp({
      email: 'otp@example.test',
      token: '000000' === mail.token ? '111111' : '000000',
      type: 'signup',
    });
    expect(wrong.error).toMatchObject({
      status: 403,
      code: 'otp_expired',
      message: 'Token has expired or is invalid',
    });
    const { data, error } = await anon.auth.verifyOtp({
      email: 'otp@example.test',
      token: mail.token,
      type: 'signup',
    });
    expect(error).toBeNull();
    expect(data.user).toMatchObject({
      email: 'otp@example.test',
      email_confirmed_at: expect.any(String),
    });
  });

  it('answers a signup of an already confirmed address with a look-alike user and writes nothing', async () => {
    const existing = await signUpAsSupabaseAuth(db(), {
      email: 'taken@example.test',
      emailConfirmed: true,
    });
    const mailsBefore = confirming.mails.length;
    const { data, error } = await client(confirming).auth.signUp({
      email: 'taken@example.test',
      password: 'secret-123',
      options: { data: { full_name: 'Impostor' } },
    });
    expect(error).toBeNull();
    expect(data.session).toBeNull();
    expect(data.user!.id).not.toBe(existing);
    expect(data.user).toMatchObject({
      aud: 'authenticated',
      role: '',
      email: 'taken@example.test',
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: { full_name: 'Impostor' },
      identities: [],
      confirmation_sent_at: expect.any(String),
    });
    expect(data.user!.email_confirmed_at).toBeUndefined();
    expect(await countUsers('taken@example.test')).toBe(1);
    expect(await profileOf(data.user!.id)).toBeUndefined();
    expect(confirming.mails.length).toBe(mailsBefore);
  });

  it('refuses a repeated signup of an unconfirmed address within the mail interval with 429, sending and writing nothing', async () => {
    const first = await client(confirming).auth.signUp({
      email: 'soon@example.test',
      password: 'secret-123',
    });
    expect(first.error).toBeNull();
    // 15.5 s ago: 44.5 s of the 60 s default are left, which GoTrue truncates to 44.
    await db().query(
      `update auth.users set confirmation_sent_at = now() - interval '15.5 seconds' where email = 'soon@example.test'`,
    );
    const before = await db().one(
      'select confirmation_token, confirmation_sent_at from auth.users where email = $1',
      ['soon@example.test'],
    );
    const mailsBefore = confirming.mails.length;
    const message = 'For security purposes, you can only request this after 44 seconds.';

    const again = await client(confirming).auth.signUp({
      email: 'soon@example.test',
      password: 'secret-123',
    });
    expect(again.data).toEqual({ user: null, session: null });
    expect(again.error).toMatchObject({
      name: 'AuthApiError',
      status: 429,
      code: 'over_email_send_rate_limit',
      message,
    });
    const current = await call(confirming, '/signup', {
      body: { email: 'soon@example.test', password: 'secret-123' },
      headers: VERSION,
    });
    expect({ status: current.status, body: current.body }).toEqual({
      status: 429,
      body: { code: 'over_email_send_rate_limit', message },
    });
    expect(current.headers.get('x-sb-error-code')).toBe('over_email_send_rate_limit');
    const legacy = await call(confirming, '/signup', {
      body: { email: 'soon@example.test', password: 'secret-123' },
    });
    expect({ status: legacy.status, body: legacy.body }).toEqual({
      status: 429,
      body: { code: 429, error_code: 'over_email_send_rate_limit', msg: message },
    });

    expect(confirming.mails.length).toBe(mailsBefore);
    expect(
      await db().one(
        'select confirmation_token, confirmation_sent_at from auth.users where email = $1',
        ['soon@example.test'],
      ),
    ).toEqual(before);
  });

  it('counts the mail interval from the mailIntervalSeconds option', async () => {
    await client(patient).auth.signUp({ email: 'patient@example.test', password: 'secret-123' });
    await db().query(
      `update auth.users set confirmation_sent_at = now() - interval '15.5 seconds' where email = 'patient@example.test'`,
    );
    const again = await call(patient, '/signup', {
      body: { email: 'patient@example.test', password: 'secret-123' },
      headers: VERSION,
    });
    expect({ status: again.status, body: again.body }).toEqual({
      status: 429,
      body: {
        code: 'over_email_send_rate_limit',
        message: 'For security purposes, you can only request this after 284 seconds.',
      },
    });
  });

  it('sends a fresh confirmation once the mail interval has passed, and only the new link works', async () => {
    const first = await client(confirming).auth.signUp({
      email: 'again@example.test',
      password: 'secret-123',
    });
    const firstMail = confirming.mails.at(-1)!;
    await db().query(
      `update auth.users set confirmation_sent_at = now() - interval '61 seconds' where email = 'again@example.test'`,
    );
    const second = await client(confirming).auth.signUp({
      email: 'again@example.test',
      password: 'secret-123',
    });
    const secondMail = confirming.mails.at(-1)!;
    expect(second.error).toBeNull();
    expect(second.data.user).toMatchObject({
      id: first.data.user!.id,
      identities: [{ provider: 'email' }],
    });
    expect(secondMail.link).not.toBe(firstMail.link);
    expect(await countUsers('again@example.test')).toBe(1);
    expect(
      fragmentOf((await fetch(firstMail.link, { redirect: 'manual' })).headers.get('location'))
        .error_code,
    ).toBe('otp_expired');
    expect(
      fragmentOf((await fetch(secondMail.link, { redirect: 'manual' })).headers.get('location'))
        .type,
    ).toBe('signup');
  });
  it('rolls the signup back when the confirmation mail cannot be sent', async () => {
    const answer = await call(confirming, '/signup', {
      body: { email: 'bounce@example.test', password: 'secret-123' },
    });
    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({
      code: 500,
      error_code: 'unexpected_failure',
      msg: 'Database error saving new user',
      error_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(await countUsers('bounce@example.test')).toBe(0);
  });
});

describe('password sign-in', () => {
  it('rejects a wrong password and an unknown email alike with 400 invalid_credentials', async () => {
    await client(open).auth.signUp({ email: 'lin@example.test', password: 'right-password' });
    const wrong = await client(open).auth.signInWithPassword({
      email: 'lin@example.test',
      password: 'wrong-password',
    });
    const unknown = await client(open).auth.signInWithPassword({
      email: 'nobody@example.test',
      password: 'right-password',
    });
    for (const { data, error } of [wrong, unknown]) {
      expect(data).toEqual({ user: null, session: null });
      expect(error).toMatchObject({
        name: 'AuthApiError',
        status: 400,
        code: 'invalid_credentials',
        message: 'Invalid login credentials',
      });
    }
    const right = await client(open).auth.signInWithPassword({
      email: 'LIN@example.test',
      password: 'right-password',
    });
    expect(right.error).toBeNull();
    expect(right.data.session!.user.email).toBe('lin@example.test');
  });

  it('answers an unknown grant type as GoTrue does', async () => {
    const answer = await call(open, '/token?grant_type=magic', { body: {}, headers: VERSION });
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ code: 'invalid_credentials', message: 'unsupported_grant_type' });
  });
});

describe('GET /user, the JWKS and getClaims', () => {
  it('serves the public signing key with a ten-minute cache', async () => {
    const answer = await call<{ keys: JWK[] }>(open, '/.well-known/jwks.json', { bearer: null });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('public, max-age=600');
    expect(answer.body).toEqual({ keys: [publicJwk(keys.signingKey)] });
    expect(answer.body.keys[0]).not.toHaveProperty('d');
  });

  it('verifies an ES256 access token locally through the JWKS and rejects a tampered one', async () => {
    const { data } = await client(open).auth.signUp({
      email: 'jwks@example.test',
      password: 'secret-123',
    });
    const token = data.session!.access_token;
    const log: string[] = [];
    const verifier = client(open, keys.anonKey, log);
    const verified = await verifier.auth.getClaims(token);
    expect(verified.error).toBeNull();
    expect(verified.data!.claims).toMatchObject({ sub: data.user!.id, role: 'authenticated' });
    expect(log).toEqual(['/auth/v1/.well-known/jwks.json']);

    const [header, payload, signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(token), role: 'service_role' }))
      .toString('base64url');
    const tampered = `${header}.${forged}.${signature}`;
    expect(payload).not.toBe(forged);
    const rejected = await verifier.auth.getClaims(tampered);
    expect(rejected.data).toBeNull();
    expect(rejected.error).toMatchObject({
      name: 'AuthInvalidJwtError',
      message: 'Invalid JWT signature',
    });
    const asked = await call(open, '/user', { bearer: tampered, headers: VERSION });
    expect(asked.status).toBe(403);
    expect(asked.body).toEqual({
      code: 'bad_jwt',
      message:
        'invalid JWT: unable to parse or verify signature, token signature is invalid: signature is invalid',
    });
  });

  it('sends a legacy HS256 user token through GET /user instead of the JWKS', async () => {
    const id = await signUpAsSupabaseAuth(db(), { email: 'legacy@example.test' });
    const now = Math.floor(Date.now() / 1000);
    const token = await signHs256({
      sub: id,
      aud: 'authenticated',
      role: 'authenticated',
      email: 'legacy@example.test',
      iat: now,
      exp: now + 600,
    }, keys.jwtSecret);
    const log: string[] = [];
    const verified = await client(open, keys.anonKey, log).auth.getClaims(token);
    expect(verified.error).toBeNull();
    expect(verified.data!.claims).toMatchObject({ sub: id, role: 'authenticated' });
    expect(log).toEqual(['/auth/v1/user']);

    const stranger = await signHs256({
      sub: '00000000-0000-4000-8000-000000000001',
      aud: 'authenticated',
      role: 'authenticated',
      exp: now + 600,
    }, keys.jwtSecret);
    const refused = await client(open).auth.getClaims(stranger);
    expect(refused.error).toMatchObject({
      name: 'AuthApiError',
      status: 403,
      code: 'user_not_found',
    });
  });

  it('answers GET /user by GoTrue rules for missing, keyless, expired, unsigned and orphaned tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    const { data } = await client(open).auth.signUp({
      email: 'gone@example.test',
      password: 'secret-123',
    });
    await client(open, keys.serviceRoleKey).auth.admin.deleteUser(data.user!.id);
    const expired = await signEs256({
      sub: data.user!.id,
      aud: 'authenticated',
      role: 'authenticated',
      iat: now - 7200,
      exp: now - 3600,
    }, keys.signingKey);
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${
      Buffer.from(JSON.stringify({ sub: data.user!.id, role: 'authenticated', exp: now + 60 }))
        .toString('base64url')
    }.`;
    const cases: Array<[string | null, number, string, string]> = [
      [null, 401, 'no_authorization', 'This endpoint requires a valid Bearer token'],
      [keys.serviceRoleKey, 403, 'bad_jwt', 'invalid claim: missing sub claim'],
      [
        expired,
        403,
        'bad_jwt',
        'invalid JWT: unable to parse or verify signature, token has invalid claims: token is expired',
      ],
      [
        unsigned,
        403,
        'bad_jwt',
        'invalid JWT: unable to parse or verify signature, unsupported JWT algorithm or key: none',
      ],
      [
        data.session!.access_token,
        403,
        'user_not_found',
        'User from sub claim in JWT does not exist',
      ],
    ];
    for (const [bearer, status, code, message] of cases) {
      const answer = await call(open, '/user', { bearer, headers: VERSION });
      expect({ status: answer.status, body: answer.body }).toEqual({
        status,
        body: { code, message },
      });
    }
  });
});

describe('the admin user API', () => {
  it('creates a user and refuses a duplicate email with 422 email_exists', async () => {
    const admin = client(open, keys.serviceRoleKey).auth.admin;
    const { data, error } = await admin.createUser({
      email: 'Alan@Example.test',
      password: 'enigma-1912',
      email_confirm: true,
      user_metadata: { full_name: 'Alan Turing', username: 'alan_t' },
    });
    expect(error).toBeNull();
    const user = data.user!;
    expect(user).toMatchObject({
      email: 'alan@example.test',
      role: 'authenticated',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: { full_name: 'Alan Turing', username: 'alan_t', email_verified: true },
      identities: [{
        provider: 'email',
        identity_data: {
          sub: user.id,
          email: 'alan@example.test',
          email_verified: false,
          phone_verified: false,
        },
      }],
    });
    expect(user.email_confirmed_at).toEqual(expect.any(String));
    expect(user.last_sign_in_at).toBeUndefined();
    expect(await profileOf(user.id)).toEqual({
      email: 'alan@example.test',
      full_name: 'Alan Turing',
      username: 'alan_t',
      created_via: 'trigger',
    });

    const duplicate = await admin.createUser({
      email: 'alan@example.test',
      password: 'another-one',
    });
    expect(duplicate).toMatchObject({
      data: { user: null },
      error: {
        name: 'AuthApiError',
        status: 422,
        code: 'email_exists',
        message: 'A user with this email address has already been registered',
      },
    });

    const signedIn = await client(open).auth.signInWithPassword({
      email: 'alan@example.test',
      password: 'enigma-1912',
    });
    expect(signedIn.error).toBeNull();
  });

  it('deletes a user with deleteUser, and the profile goes with it', async () => {
    const admin = client(open, keys.serviceRoleKey).auth.admin;
    const { data } = await admin.createUser({
      email: 'brief@example.test',
      password: 'secret-123',
      user_metadata: { full_name: 'Brief' },
    });
    const id = data.user!.id;
    expect(await profileOf(id)).toMatchObject({ full_name: 'Brief' });
    const raw = await call(open, `/admin/users/${id}`, {
      method: 'DELETE',
      bearer: keys.serviceRoleKey,
      body: { should_soft_delete: false },
    });
    expect({ status: raw.status, body: raw.body }).toEqual({ status: 200, body: {} });
    expect(await countUsers('brief@example.test')).toBe(0);
    expect(await profileOf(id)).toBeUndefined();
    const again = await admin.deleteUser(id);
    expect(again.error).toMatchObject({
      status: 404,
      code: 'user_not_found',
      message: 'User not found',
    });
  });

  it('soft-deletes a user: the row and its profile stay, the email is obfuscated and sign-in stops', async () => {
    const admin = client(open, keys.serviceRoleKey).auth.admin;
    const { data } = await admin.createUser({
      email: 'soft@example.test',
      password: 'secret-123',
      email_confirm: true,
    });
    const id = data.user!.id;
    expect((await admin.deleteUser(id, true)).error).toBeNull();
    const { rows } = await db().query(
      'select email, encrypted_password, deleted_at is not null as deleted from auth.users where id = $1',
      [id],
    );
    expect(rows).toEqual([{
      email: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      encrypted_password: null,
      deleted: true,
    }]);
    expect(await profileOf(id)).toMatchObject({ email: 'soft@example.test' });
    const signIn = await client(open).auth.signInWithPassword({
      email: 'soft@example.test',
      password: 'secret-123',
    });
    expect(signIn.error).toMatchObject({ status: 400, code: 'invalid_credentials' });
    const { rows: identities } = await db().query(
      'select provider_id, identity_data, email from auth.identities where user_id = $1',
      [id],
    );
    expect(identities).toEqual([{
      provider_id: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      identity_data: {},
      email: null,
    }]);
    expect((await admin.deleteUser(id, true)).error).toBeNull();
  });

  it('refuses a non-admin JWT with 403 not_admin, no bearer with 401, and a bad signature with 403 bad_jwt, never reading apikey', async () => {
    const anonAttempt = await client(open).auth.admin.createUser({
      email: 'by-anon@example.test',
      password: 'secret-123',
    });
    expect(anonAttempt.error).toMatchObject({
      status: 403,
      code: 'not_admin',
      message: 'User not allowed',
    });

    const body = { email: 'by-someone@example.test', password: 'secret-123' };
    const { data } = await client(open).auth.signUp({
      email: 'notadmin@example.test',
      password: 'secret-123',
    });
    const asUser = await call(open, '/admin/users', {
      bearer: data.session!.access_token,
      body,
      headers: VERSION,
    });
    expect({ status: asUser.status, body: asUser.body }).toEqual({
      status: 403,
      body: { code: 'not_admin', message: 'User not allowed' },
    });

    const noBearer = await call(open, '/admin/users', {
      bearer: null,
      body,
      headers: { ...VERSION, apikey: keys.serviceRoleKey },
    });
    expect({ status: noBearer.status, body: noBearer.body }).toEqual({
      status: 401,
      body: { code: 'no_authorization', message: 'This endpoint requires a valid Bearer token' },
    });

    const forged = await signHs256({
      role: 'service_role',
      exp: Math.floor(Date.now() / 1000) + 600,
    }, 'not-the-local-jwt-secret-but-long-enough');
    const badSignature = await call<AuthErrorBody>(open, '/admin/users', {
      bearer: forged,
      body,
      headers: { ...VERSION, apikey: keys.serviceRoleKey },
    });
    expect(badSignature.status).toBe(403);
    expect(badSignature.body.code).toBe('bad_jwt');
    expect(await countUsers('by-anon@example.test') + (await countUsers('by-someone@example.test')))
      .toBe(0);
  });
});

describe('error bodies and captcha', () => {
  it('uses {code, message} and echoes the version header for 2024-01-01 clients, and the legacy shape without it', async () => {
    const body = { email: 'nobody-here@example.test', password: 'whatever-123' };
    const current = await call(open, '/token?grant_type=password', { body, headers: VERSION });
    expect(current.status).toBe(400);
    expect(current.body).toEqual({
      code: 'invalid_credentials',
      message: 'Invalid login credentials',
    });
    expect(current.headers.get('x-supabase-api-version')).toBe('2024-01-01');
    expect(current.headers.get('x-sb-error-code')).toBe('invalid_credentials');

    const legacy = await call(open, '/token?grant_type=password', { body });
    expect(legacy.status).toBe(400);
    expect(legacy.body).toEqual({
      code: 400,
      error_code: 'invalid_credentials',
      msg: 'Invalid login credentials',
    });
    expect(legacy.headers.get('x-supabase-api-version')).toBeNull();
    expect(legacy.headers.get('x-sb-error-code')).toBe('invalid_credentials');

    const badJson = await call(open, '/signup', {
      body: { email: 42, password: 'secret-123' },
      headers: VERSION,
    });
    expect(badJson.status).toBe(400);
    expect(badJson.body).toEqual({
      code: 'bad_json',
      message: expect.stringMatching(/^Could not parse request body as JSON: /),
    });
  });

  it('requires the configured captcha token on signup', async () => {
    const missing = await client(guarded).auth.signUp({
      email: 'robot@example.test',
      password: 'secret-123',
    });
    expect(missing.error).toMatchObject({
      status: 400,
      code: 'captcha_failed',
      message: 'captcha protection: request disallowed (no captcha_token found)',
    });
    const wrong = await client(guarded).auth.signUp({
      email: 'robot@example.test',
      password: 'secret-123',
      options: { captchaToken: 'guess' },
    });
    expect(wrong.error).toMatchObject({
      status: 400,
      code: 'captcha_failed',
      message: 'captcha protection: request disallowed (invalid-input-response)',
    });
    expect(await countUsers('robot@example.test')).toBe(0);
    const right = await client(guarded).auth.signUp({
      email: 'robot@example.test',
      password: 'secret-123',
      options: { captchaToken: 'let-me-in' },
    });
    expect(right.error).toBeNull();
    expect(await countUsers('robot@example.test')).toBe(1);
  });

  it('skips the captcha for an admin caller, as GoTrue verifyCaptcha does after requireAdminCredentials, and only for one', async () => {
    const admin = await client(guarded, keys.serviceRoleKey).auth.signUp({
      email: 'operator@example.test',
      password: 'secret-123',
    });
    expect(admin.error).toBeNull();
    expect(await countUsers('operator@example.test')).toBe(1);

    const { data } = await client(open).auth.signUp({
      email: 'member@example.test',
      password: 'secret-123',
    });
    const asUser = await call(guarded, '/signup', {
      bearer: data.session!.access_token,
      body: { email: 'member-friend@example.test', password: 'secret-123' },
      headers: VERSION,
    });
    expect({ status: asUser.status, body: asUser.body }).toEqual({
      status: 400,
      body: {
        code: 'captcha_failed',
        message: 'captcha protection: request disallowed (no captcha_token found)',
      },
    });
    expect(await countUsers('member-friend@example.test')).toBe(0);
  });
});
