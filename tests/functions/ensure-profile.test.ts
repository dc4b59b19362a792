import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signEs256, signHs256 } from '../../dev/keys.ts';
import { createEnsureProfileHandler } from '../../shared/ensure-profile-handler.ts';
import { createLogger } from '../../shared/logger.ts';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import {
  githubMetadata,
  signUpAnonymouslyAsSupabaseAuth,
  signUpAsSupabaseAuth,
} from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

const URL_ = 'http://127.0.0.1/functions/v1/ensure-profile';
const JSON_TYPE = { 'content-type': 'application/json' };
const PENDING_MESSAGE =
  'The profile could not be completed right now and will be finished automatically within minutes.';
const USERNAME_MESSAGE =
  'username must be 3-39 letters, digits, "_", "." or "-", not starting or ending with "." or "-"';

function handler(overrides: Record<string, string> = {}): (request: Request) => Promise<Response> {
  return createEnsureProfileHandler({ config: api().config(overrides) });
}

function post(headers: Record<string, string>, body?: string): Request {
  return new Request(URL_, { method: 'POST', headers, ...(body !== undefined ? { body } : {}) });
}

async function call(
  request: Request,
  overrides: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const response = await handler(overrides)(request);
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const asService = (body: unknown, key = api().stack.keys.secretKey) =>
  post({ ...bearer(key), ...JSON_TYPE }, JSON.stringify(body));

async function auditCount(): Promise<number> {
  return (await db().one<{ n: number }>('select count(*)::int as n from private.audit_logs')).n;
}

async function profileRow(userId: string): Promise<Record<string, unknown> | null> {
  const { rows } = await db().query<{ p: Record<string, unknown> }>(
    'select to_jsonb(p) as p from public.user_profiles p where user_id = $1',
    [userId],
  );
  return rows[0]?.p ?? null;
}

async function profileCount(userId: string): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from public.user_profiles where user_id = $1',
    [userId],
  )).n;
}

/** An auth user with no profile, as if every other layer had missed it. */
function userWithoutProfile(email?: string): Promise<string> {
  return withTriggerOff(
    db(),
    () => signUpAsSupabaseAuth(db(), email !== undefined ? { email } : {}),
  );
}

interface SignedInUser {
  id: string;
  email: string;
  accessToken: string;
}

/** A user created through the Auth stand-in's admin API, signed in with a password for a real access token. */
async function signedInUser(options: { triggerOff?: boolean } = {}): Promise<SignedInUser> {
  const email = `person-${randomUUID().slice(0, 8)}@example.test`;
  const password = 'correct horse battery staple';
  const admin = appClient(api().stack.apiUrl, api().stack.keys.serviceRoleKey);
  const create = async () => {
    const { data, error } = await admin.auth.admin.createUser({
      email,
      password,
      email_confirm: true,
    });
    if (error) throw error;
    return data.user.id;
  };
  const id = options.triggerOff ? await withTriggerOff(db(), create) : await create();
  const { data, error } = await appClient(api().stack.apiUrl, api().stack.keys.anonKey).auth
    .signInWithPassword({ email, password });
  if (error) throw error;
  return { id, email, accessToken: data.session.access_token };
}

/** Claims as the Auth stand-in puts them in an access token, for hand-made tokens. */
function userClaims(
  userId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: `${api().stack.apiUrl}/auth/v1`,
    sub: userId,
    aud: 'authenticated',
    exp: now + 3600,
    iat: now,
    email: 'someone@example.test',
    role: 'authenticated',
    aal: 'aal1',
    session_id: randomUUID(),
    is_anonymous: false,
    ...overrides,
  };
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A fresh P-256 private key the project knows nothing about, under the given key id. */
async function attackerKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'ES256' };
}

/** Per-user windows and counted existed answers are hours, aligned on the hour: keep a test's calls inside one. */
async function clearOfHourEdge(): Promise<void> {
  const intoHour = (Date.now() / 1000) % 3600;
  if (intoHour > 3590) await sleep((3601 - intoHour) * 1000);
}

describe('ensure-profile for a signed-in user', () => {
  it('answers 200 existed with the profile the trigger made, for a bodiless POST with the access token', async () => {
    const user = await signedInUser();
    const result = await call(post(bearer(user.accessToken)));
    expect(result).toEqual({
      status: 200,
      body: { user_id: user.id, profile: await profileRow(user.id), profile_status: 'existed' },
    });
    expect((result.body as { profile: { created_via: string } }).profile.created_via).toBe(
      'trigger',
    );
  });

  it('creates the missing profile (created_via ensure) and audits it when the trigger was off at signup', async () => {
    const user = await signedInUser({ triggerOff: true });
    expect(await profileRow(user.id)).toBeNull();
    const result = await call(post(bearer(user.accessToken)));
    const profile = await profileRow(user.id);
    expect(result).toEqual({
      status: 200,
      body: { user_id: user.id, profile, profile_status: 'created' },
    });
    expect(profile).toMatchObject({ user_id: user.id, email: user.email, created_via: 'ensure' });
    const { rows } = await db().query(
      `select source, outcome from private.audit_logs where user_id = $1 and source <> 'trigger'`,
      [user.id],
    );
    expect(rows).toEqual([{ source: 'ensure', outcome: 'created' }]);
  });

  it('accepts the caller naming their own user_id, in any letter case', async () => {
    const user = await signedInUser();
    const result = await call(
      post(
        { ...bearer(user.accessToken), ...JSON_TYPE },
        JSON.stringify({ user_id: user.id.toUpperCase() }),
      ),
    );
    expect(result).toEqual({
      status: 200,
      body: { user_id: user.id, profile: await profileRow(user.id), profile_status: 'existed' },
    });
  });

  it('accepts a hand-signed token whose nbf is a few seconds ahead, within the clock-skew allowance', async () => {
    const user = await signedInUser();
    const token = await signEs256(
      userClaims(user.id, { nbf: Math.floor(Date.now() / 1000) + 10 }),
      api().stack.keys.signingKey,
    );
    expect(await call(post(bearer(token)))).toEqual({
      status: 200,
      body: { user_id: user.id, profile: await profileRow(user.id), profile_status: 'existed' },
    });
  });

  it("answers 403 and writes nothing when a user names another user's id", async () => {
    const user = await signedInUser();
    const victim = await userWithoutProfile();
    const before = await auditCount();
    const result = await call(
      post({ ...bearer(user.accessToken), ...JSON_TYPE }, JSON.stringify({ user_id: victim })),
    );
    expect(result).toEqual({
      status: 403,
      body: {
        error: { code: 'forbidden', message: 'A signed-in user can only ensure their own profile' },
      },
    });
    expect(await auditCount()).toBe(before);
    expect(await profileCount(victim)).toBe(0);
  });

  it('answers 400 naming the field when a user sends an unknown field', async () => {
    const user = await signedInUser();
    const result = await call(
      post({ ...bearer(user.accessToken), ...JSON_TYPE }, JSON.stringify({ full_name: 'Mallory' })),
    );
    expect(result).toEqual({
      status: 400,
      body: {
        error: {
          code: 'validation_failed',
          message: 'The request body is invalid',
          fields: { full_name: 'is not a known field' },
        },
      },
    });
  });

  const INVALID = { code: 'invalid_token', message: 'The access token is invalid or expired' };
  it.each<
    [string, (user: SignedInUser) => Promise<string>, number, { code: string; message: string }]
  >([
    [
      'a real token whose payload was tampered with',
      async (user) => {
        const [header, payload, signature] = user.accessToken.split('.') as [
          string,
          string,
          string,
        ];
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<
          string,
          unknown
        >;
        return `${header}.${b64url({ ...claims, email: 'mallory@example.test' })}.${signature}`;
      },
      401,
      INVALID,
    ],
    [
      'a correctly signed token that expired a minute ago',
      async (user) =>
        await signEs256(
          userClaims(user.id, { exp: Math.floor(Date.now() / 1000) - 60 }),
          api().stack.keys.signingKey,
        ),
      401,
      INVALID,
    ],
    [
      'a correctly signed token without exp',
      async (user) =>
        await signEs256(userClaims(user.id, { exp: undefined }), api().stack.keys.signingKey),
      401,
      INVALID,
    ],
    [
      'an unsigned token (alg none)',
      async (user) => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(userClaims(user.id))}.`,
      401,
      INVALID,
    ],
    [
      'an unsigned token (alg none) naming the signing key id',
      async (user) =>
        `${b64url({ alg: 'none', typ: 'JWT', kid: api().stack.keys.signingKey.kid })}.${
          b64url(userClaims(user.id))
        }.`,
      401,
      INVALID,
    ],
    [
      "a token signed as RS256 under the project's ES256 key id",
      async (user) => {
        const [, payload, signature] =
          (await signEs256(userClaims(user.id), api().stack.keys.signingKey)).split('.') as [
            string,
            string,
            string,
          ];
        return `${
          b64url({ alg: 'RS256', typ: 'JWT', kid: api().stack.keys.signingKey.kid })
        }.${payload}.${signature}`;
      },
      401,
      INVALID,
    ],
    [
      'an ES256 token signed by a key the project does not publish',
      async (user) => await signEs256(userClaims(user.id), await attackerKey('attacker-key')),
      401,
      INVALID,
    ],
    [
      "an ES256 token signed by another key under the project's key id",
      async (user) =>
        await signEs256(userClaims(user.id), await attackerKey(api().stack.keys.signingKey.kid!)),
      401,
      INVALID,
    ],
    [
      'an HS256 token signed with a guessed secret',
      async (user) =>
        await signHs256(userClaims(user.id), 'not-the-project-jwt-secret-at-all-really-not'),
      401,
      INVALID,
    ],
    ['the anon key', async () => api().stack.keys.anonKey, 401, INVALID],
    ['a bearer that is not a JWT', async () => 'not-a-jwt', 401, INVALID],
    ['a three-part bearer whose parts are not JSON', async () => 'abcd.efgh.ijkl', 401, INVALID],
    [
      'a correctly signed token for another audience',
      async (user) =>
        await signEs256(
          userClaims(user.id, { aud: 'some-other-app' }),
          api().stack.keys.signingKey,
        ),
      401,
      { code: 'invalid_token', message: 'The access token is not meant for signed-in users' },
    ],
    [
      'a correctly signed token that is not valid for another hour (nbf)',
      async (user) =>
        await signEs256(
          userClaims(user.id, { nbf: Math.floor(Date.now() / 1000) + 3600 }),
          api().stack.keys.signingKey,
        ),
      401,
      { code: 'invalid_token', message: 'The access token is not valid yet' },
    ],
    [
      'a correctly signed user token claiming the service_role role',
      async (user) =>
        await signEs256(userClaims(user.id, { role: 'service_role' }), api().stack.keys.signingKey),
      403,
      {
        code: 'forbidden',
        message: 'Only signed-in users or the service role may call this function',
      },
    ],
    [
      'a correctly signed token that names no user',
      async (user) =>
        await signEs256(userClaims(user.id, { sub: 'not-a-uuid' }), api().stack.keys.signingKey),
      401,
      { code: 'invalid_token', message: 'The access token names no user' },
    ],
  ])('rejects %s and writes nothing', async (_label, makeToken, status, error) => {
    const user = await signedInUser({ triggerOff: true });
    const token = await makeToken(user);
    const before = await auditCount();
    const result = await call(post(bearer(token)));
    expect(result).toEqual({ status, body: { error } });
    expect(await auditCount()).toBe(before);
    expect(await profileCount(user.id)).toBe(0);
  });
});

describe('ensure-profile limits and vets signed-in users', () => {
  const ensureRows = async (userId: string) =>
    (await db().query(
      `select outcome, details from private.audit_logs where user_id = $1 and source = 'ensure' order by id`,
      [userId],
    )).rows;

  it('answers 429 rate_limited with Retry-After past ENSURE_RATE_LIMIT_MAX calls per window, writing nothing for it', async () => {
    await clearOfHourEdge();
    const limited = { ENSURE_RATE_LIMIT_MAX: '3', ENSURE_RATE_LIMIT_WINDOW_SECONDS: '3600' };
    const user = await signedInUser();
    const ensure = handler(limited);
    const responses = [];
    for (let i = 0; i < 4; i++) responses.push(await ensure(post(bearer(user.accessToken))));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    const refused = responses[3]!;
    expect(await refused.json()).toEqual({
      error: {
        code: 'rate_limited',
        message: 'Too many ensure-profile calls for this user; try again later',
      },
    });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await ensureRows(user.id)).toEqual([{ outcome: 'existed', details: {} }]);
  });

  it('does not limit the service role or a Database Webhook', async () => {
    const limited = { ENSURE_RATE_LIMIT_MAX: '2' };
    const id = await userWithoutProfile('unlimited@example.test');
    const ensure = handler(limited);
    const service = await Promise.all(
      Array.from({ length: 5 }, () => ensure(asService({ user_id: id }))),
    );
    expect(service.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const delivery = webhookDelivery(authUserRecord(id, 'unlimited@example.test'));
    const webhook = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          ensure(
            post({
              'x-webhook-secret': api().stack.functionSecrets.PROFILE_WEBHOOK_SECRET!,
              ...JSON_TYPE,
            }, delivery),
          ),
      ),
    );
    expect(webhook.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(
      await db().one(`select count(*)::int as n from private.rate_limits where bucket = $1`, [
        `ensure:${id}`,
      ]),
    ).toEqual({ n: 0 });
  });

  it('answers an anonymous user (is_anonymous) like anyone: 200 with the profile the trigger made, email null', async () => {
    await clearOfHourEdge();
    const id = await signUpAnonymouslyAsSupabaseAuth(db());
    const token = await signEs256(
      userClaims(id, { is_anonymous: true, email: '' }),
      api().stack.keys.signingKey,
    );
    const profile = await profileRow(id);
    expect(profile).toMatchObject({ user_id: id, email: null, created_via: 'trigger' });
    expect(await call(post(bearer(token)))).toEqual({
      status: 200,
      body: { user_id: id, profile, profile_status: 'existed' },
    });
  });

  it('creates the missing profile of an anonymous user, with email null', async () => {
    const id = await withTriggerOff(db(), () => signUpAnonymouslyAsSupabaseAuth(db()));
    const token = await signEs256(
      userClaims(id, { is_anonymous: true, email: '' }),
      api().stack.keys.signingKey,
    );
    const result = await call(post(bearer(token)));
    const profile = await profileRow(id);
    expect(result).toEqual({
      status: 200,
      body: { user_id: id, profile, profile_status: 'created' },
    });
    expect(profile).toMatchObject({ email: null, created_via: 'ensure' });
  });

  it('answers 403 user_not_found to a soft-deleted user, with a refused audit row, and leaves the profile as it was', async () => {
    const user = await signedInUser();
    const before = await profileRow(user.id);
    const { error } = await appClient(api().stack.apiUrl, api().stack.keys.serviceRoleKey).auth
      .admin.deleteUser(user.id, true);
    expect(error).toBeNull();
    expect(await call(post(bearer(user.accessToken)))).toEqual({
      status: 403,
      body: {
        error: { code: 'user_not_found', message: 'The user of this access token does not exist' },
      },
    });
    expect(await ensureRows(user.id)).toEqual([{
      outcome: 'refused',
      details: { reason: 'deleted' },
    }]);
    expect(await profileRow(user.id)).toEqual(before);
  });

  it('answers 403 user_not_found to a deleted user, with a refused audit row, and makes no profile', async () => {
    const user = await signedInUser();
    const { error } = await appClient(api().stack.apiUrl, api().stack.keys.serviceRoleKey).auth
      .admin.deleteUser(user.id);
    expect(error).toBeNull();
    expect(await call(post(bearer(user.accessToken)))).toEqual({
      status: 403,
      body: {
        error: { code: 'user_not_found', message: 'The user of this access token does not exist' },
      },
    });
    expect(await ensureRows(user.id)).toEqual([{
      outcome: 'refused',
      details: { reason: 'missing' },
    }]);
    expect(await profileCount(user.id)).toBe(0);
  });

  it('still ensures the profile, without the guard, when ensure_profile_for_caller is missing', async () => {
    const user = await signedInUser({ triggerOff: true });
    const signature = 'public.ensure_profile_for_caller(uuid, integer, integer, text)';
    await db().query(`alter function ${signature} rename to ensure_profile_for_caller_gone`);
    let result: { status: number; body: unknown };
    try {
      result = await call(post(bearer(user.accessToken)));
    } finally {
      await db().query(
        'alter function public.ensure_profile_for_caller_gone(uuid, integer, integer, text) rename to ensure_profile_for_caller',
      );
    }
    expect(result).toEqual({
      status: 200,
      body: { user_id: user.id, profile: await profileRow(user.id), profile_status: 'created' },
    });
    expect((await ensureRows(user.id)).map((r) => r.outcome)).toEqual(['created']);
  });
});

describe('ensure-profile for the service role', () => {
  it('creates the profile with the secret key and finds it with the legacy service_role key', async () => {
    const id = await userWithoutProfile();
    const created = await call(asService({ user_id: id }));
    expect(created).toEqual({
      status: 200,
      body: { user_id: id, profile: await profileRow(id), profile_status: 'created' },
    });
    expect(await profileRow(id)).toMatchObject({
      created_via: 'ensure',
      email: `user-${id}@example.test`,
    });
    const existed = await call(asService({ user_id: id }, api().stack.keys.serviceRoleKey));
    expect(existed).toEqual({
      status: 200,
      body: { user_id: id, profile: await profileRow(id), profile_status: 'existed' },
    });
    const { rows } = await db().query(
      `select outcome from private.audit_logs where user_id = $1 and source = 'ensure' order by id`,
      [id],
    );
    expect(rows).toEqual([{ outcome: 'created' }, { outcome: 'existed' }]);
  });

  it('leaves one info line per request, naming the request id, the user, the outcome and the status', async () => {
    const id = await userWithoutProfile();
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      bindings: { function: 'ensure-profile' },
      destination: new Writable({
        write(c, _e, d) {
          lines.push(String(c));
          d();
        },
      }),
    });
    const response = await createEnsureProfileHandler({ config: api().config(), log })(
      asService({ user_id: id }),
    );
    expect(response.status).toBe(200);
    const logged = lines.map((line) => JSON.parse(line));
    expect(logged).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'request',
        function: 'ensure-profile',
        request_id: response.headers.get('x-request-id'),
        method: 'POST',
        status: 200,
        user_id: id,
        profile_status: 'created',
        attempts: 1,
        via: 'rpc',
        duration_ms: expect.any(Number),
      }),
    ]);
  });

  it('answers 404 user_not_found for an id no auth user has, writing nothing', async () => {
    const id = randomUUID();
    const before = await auditCount();
    expect(await call(asService({ user_id: id }))).toEqual({
      status: 404,
      body: { error: { code: 'user_not_found', message: `No auth user has id ${id}` } },
    });
    expect(await auditCount()).toBe(before);
  });

  it.each<[string, unknown, Record<string, string>]>([
    ['a user_id that is not a UUID', { user_id: 'not-a-uuid' }, { user_id: 'must be a UUID' }],
    ['a numeric user_id', { user_id: 42 }, { user_id: 'must be a UUID' }],
    ['no user_id', {}, { user_id: 'is required' }],
    ['an extra field', { user_id: randomUUID(), source: 'trigger' }, {
      source: 'is not a known field',
    }],
    ['a JSON array', [1], { body: 'must be a JSON object' }],
  ])('answers 400 validation_failed naming the field for %s', async (_label, body, fields) => {
    const before = await auditCount();
    expect(await call(asService(body))).toEqual({
      status: 400,
      body: {
        error: { code: 'validation_failed', message: 'The request body is invalid', fields },
      },
    });
    expect(await auditCount()).toBe(before);
  });

  it.each<[string, Record<string, string>]>([
    ['no Authorization header', {}],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['a Basic credential', {
      authorization: `Basic ${Buffer.from('service_role:x').toString('base64')}`,
    }],
    ['the secret key only in apikey', {
      apikey: 'sb_secret_LOCAL_profile_guard_not_for_production',
    }],
  ])('answers 401 unauthorized with %s', async (_label, headers) => {
    const id = await userWithoutProfile();
    const result = await call(post({ ...headers, ...JSON_TYPE }, JSON.stringify({ user_id: id })));
    expect(result).toEqual({
      status: 401,
      body: {
        error: { code: 'unauthorized', message: 'A valid Authorization header is required' },
      },
    });
    expect(await profileCount(id)).toBe(0);
  });
});

function webhookDelivery(
  record: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    type: 'INSERT',
    table: 'users',
    schema: 'auth',
    record,
    old_record: null,
    ...overrides,
  });
}

function authUserRecord(id: string, email: string): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    id,
    aud: 'authenticated',
    role: '',
    email,
    raw_app_meta_data: { provider: 'email', providers: ['email'] },
    raw_user_meta_data: {},
    created_at: now,
    updated_at: now,
    is_anonymous: false,
  };
}

describe('ensure-profile as a Database Webhook', () => {
  const secretHeader = () => ({
    'x-webhook-secret': api().stack.functionSecrets.PROFILE_WEBHOOK_SECRET!,
    ...JSON_TYPE,
  });

  it('creates the profile (created_via webhook) for an INSERT delivery with the right secret', async () => {
    const email = 'hooked@example.test';
    const id = await userWithoutProfile(email);
    const result = await call(post(secretHeader(), webhookDelivery(authUserRecord(id, email))));
    const profile = await profileRow(id);
    expect(result).toEqual({
      status: 200,
      body: { user_id: id, profile, profile_status: 'created' },
    });
    expect(profile).toMatchObject({ user_id: id, email, created_via: 'webhook' });
    const { rows } = await db().query(
      `select source, outcome from private.audit_logs where user_id = $1 and source = 'webhook'`,
      [id],
    );
    expect(rows).toEqual([{ source: 'webhook', outcome: 'created' }]);
  });

  it('answers 401 and writes nothing for a wrong secret', async () => {
    const id = await userWithoutProfile();
    const before = await auditCount();
    const result = await call(
      post(
        { 'x-webhook-secret': 'not-the-webhook-secret-at-all', ...JSON_TYPE },
        webhookDelivery(authUserRecord(id, 'x@example.test')),
      ),
    );
    expect(result).toEqual({
      status: 401,
      body: {
        error: { code: 'invalid_webhook_secret', message: 'The webhook secret does not match' },
      },
    });
    expect(await auditCount()).toBe(before);
    expect(await profileCount(id)).toBe(0);
  });

  it('answers 401 webhook_not_configured when PROFILE_WEBHOOK_SECRET is unset', async () => {
    const id = await userWithoutProfile();
    const result = await call(
      post(secretHeader(), webhookDelivery(authUserRecord(id, 'x@example.test'))),
      { PROFILE_WEBHOOK_SECRET: '' },
    );
    expect(result).toEqual({
      status: 401,
      body: {
        error: {
          code: 'webhook_not_configured',
          message: 'Database webhooks are not configured for this function',
        },
      },
    });
    expect(await profileCount(id)).toBe(0);
  });

  it.each<[string, Record<string, unknown>, Record<string, string>]>([
    ['an UPDATE', { type: 'UPDATE' }, { type: 'must be "INSERT"' }],
    ['another table', { table: 'identities' }, { table: 'must be "users"' }],
    ['an old_record', { old_record: {} }, { old_record: 'must be null for INSERT' }],
  ])('answers 400 naming the field for %s, writing nothing', async (_label, overrides, fields) => {
    const id = await userWithoutProfile();
    const before = await auditCount();
    const result = await call(
      post(secretHeader(), webhookDelivery(authUserRecord(id, 'x@example.test'), overrides)),
    );
    expect(result).toEqual({
      status: 400,
      body: {
        error: { code: 'validation_failed', message: 'The request body is invalid', fields },
      },
    });
    expect(await auditCount()).toBe(before);
    expect(await profileCount(id)).toBe(0);
  });

  it('answers 400 naming record.id when the record has no UUID id', async () => {
    const result = await call(
      post(secretHeader(), webhookDelivery({ id: 'nope', email: 'x@example.test' })),
    );
    expect(result).toEqual({
      status: 400,
      body: {
        error: {
          code: 'validation_failed',
          message: 'The request body is invalid',
          fields: { 'record.id': 'must be a UUID' },
        },
      },
    });
  });

  it('makes exactly one profile when the same delivery arrives ten times at once, storing one created and one existed row and counting the other eight', async () => {
    await clearOfHourEdge();
    const email = 'tenfold@example.test';
    const id = await userWithoutProfile(email);
    const body = webhookDelivery(authUserRecord(id, email));
    const ensure = handler();
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => ensure(post(secretHeader(), body))),
    );
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<
      { profile_status: string; profile: unknown }
    >;
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(bodies.map((b) => b.profile_status).sort()).toEqual([
      'created',
      ...Array(9).fill('existed'),
    ]);
    const profile = await profileRow(id);
    for (const b of bodies) expect(b.profile).toEqual(profile);
    expect(await profileCount(id)).toBe(1);
    const { rows } = await db().query(
      `select outcome, count(*)::int as n from private.audit_logs where user_id = $1 and source = 'webhook' group by outcome order by outcome`,
      [id],
    );
    expect(rows).toEqual([{ outcome: 'created', n: 1 }, { outcome: 'existed', n: 1 }]);
    expect(
      (await db().query(
        `select repeats from private.existed_repeats where user_id = $1 and source = 'webhook'`,
        [id],
      )).rows,
    ).toEqual([{ repeats: 8 }]);
  });
});

interface HookUser {
  provider?: string;
  userMetadata?: Record<string, unknown>;
}

function hookPayload(user: HookUser = {}): string {
  const now = new Date().toISOString();
  const provider = user.provider ?? 'email';
  return JSON.stringify({
    metadata: {
      uuid: randomUUID(),
      time: now,
      name: 'before-user-created',
      ip_address: '127.0.0.1',
    },
    user: {
      id: randomUUID(),
      aud: 'authenticated',
      role: '',
      email: 'new-person@example.test',
      app_metadata: { provider, providers: [provider] },
      user_metadata: user.userMetadata ?? {},
      identities: [],
      created_at: now,
      updated_at: now,
      is_anonymous: false,
    },
  });
}

/** A before-user-created call as Supabase Auth makes it: Standard Webhooks headers over the raw body. */
function hookRequest(
  body: string,
  options: { at?: Date; secret?: string; sentBody?: string } = {},
): Request {
  const secret = options.secret ?? api().stack.functionSecrets.AUTH_HOOK_SECRET!;
  const at = options.at ?? new Date();
  const id = `msg_${randomUUID()}`;
  const signature = new Webhook(secret.replace(/^v1,/, '')).sign(id, at, body);
  return post(
    {
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signature,
      ...JSON_TYPE,
    },
    options.sentBody ?? body,
  );
}

describe('ensure-profile as the before-user-created Auth Hook', () => {
  const INVALID_SIGNATURE = {
    error: { code: 'invalid_signature', message: 'The webhook signature or timestamp is invalid' },
  };

  it('allows (204, no body) an email signup whose metadata makes a valid profile', async () => {
    const before = await auditCount();
    const result = await call(
      hookRequest(
        hookPayload({
          userMetadata: {
            username: 'ada_lovelace',
            full_name: 'Ada Lovelace',
            avatar_url: 'https://example.test/ada.png',
          },
        }),
      ),
    );
    expect(result).toEqual({ status: 204, body: null });
    expect(await auditCount()).toBe(before);
  });

  it('allows an email signup without any metadata', async () => {
    expect(await call(hookRequest(hookPayload()))).toEqual({ status: 204, body: null });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an invalid username', { username: '-x' }, USERNAME_MESSAGE],
    ['an invalid user_name', { user_name: 'has space' }, USERNAME_MESSAGE],
    [
      'a 201-character full_name',
      { full_name: 'n'.repeat(201) },
      'full_name must be at most 200 characters',
    ],
    [
      'a non-http avatar_url',
      { avatar_url: 'javascript:alert(1)' },
      'avatar_url must be an http(s) URL of at most 2048 characters',
    ],
  ])(
    'rejects an email signup with %s as Auth understands it: 200 with error.http_code 400',
    async (_label, userMetadata, message) => {
      const result = await call(hookRequest(hookPayload({ userMetadata })));
      expect(result).toEqual({ status: 200, body: { error: { http_code: 400, message } } });
    },
  );

  it('rejects an email signup whose username an existing profile has, case-insensitively, with http_code 409', async () => {
    await signUpAsSupabaseAuth(db(), { userMetadata: { username: 'TakenName' } });
    expect(
      await db().one(
        `select count(*)::int as n from public.user_profiles where username = 'TakenName'`,
      ),
    ).toEqual({ n: 1 });
    const result = await call(
      hookRequest(hookPayload({ userMetadata: { username: 'takenNAME' } })),
    );
    expect(result).toEqual({
      status: 200,
      body: { error: { http_code: 409, message: 'username is already taken' } },
    });
  });

  it('allows an email signup whose username is held only by a lapsed claim of a user who never confirmed, releasing it', async () => {
    const holder = await signUpAsSupabaseAuth(db(), {
      userMetadata: { username: 'LapsedName' },
      emailConfirmed: false,
      createdAt: new Date(Date.now() - 25 * 3_600_000),
    });
    expect(await call(hookRequest(hookPayload({ userMetadata: { username: 'lapsedname' } }))))
      .toEqual({ status: 204, body: null });
    expect(await db().one('select username from public.user_profiles where user_id = $1', [holder]))
      .toEqual({ username: null });
    const { rows } = await db().query(
      `select source, outcome, details from private.audit_logs where user_id = $1 and operation = 'release_username'`,
      [holder],
    );
    expect(rows).toEqual([{
      source: 'ensure',
      outcome: 'released',
      details: { username: 'LapsedName', claimed_by: null },
    }]);
  });

  it('treats "_" in a requested username literally when checking whether it is taken', async () => {
    await signUpAsSupabaseAuth(db(), { userMetadata: { username: 'grace1' } });
    expect(await call(hookRequest(hookPayload({ userMetadata: { username: 'grac_1' } })))).toEqual({
      status: 204,
      body: null,
    });
  });

  it('never rejects an OAuth signup, even with an invalid username', async () => {
    const result = await call(
      hookRequest(
        hookPayload({
          provider: 'github',
          userMetadata: githubMetadata({ user_name: '-bad-', preferred_username: '-bad-' }),
        }),
      ),
    );
    expect(result).toEqual({ status: 204, body: null });
  });

  it('answers 401 to a delivery signed with another secret', async () => {
    const other = `v1,whsec_${Buffer.from('some-other-auth-hook-secret').toString('base64')}`;
    expect(await call(hookRequest(hookPayload(), { secret: other }))).toEqual({
      status: 401,
      body: INVALID_SIGNATURE,
    });
  });

  it('answers 401 to a delivery signed ten minutes ago', async () => {
    expect(await call(hookRequest(hookPayload(), { at: new Date(Date.now() - 10 * 60_000) })))
      .toEqual({ status: 401, body: INVALID_SIGNATURE });
  });

  it('answers 401 to a delivery dated ten minutes in the future', async () => {
    expect(await call(hookRequest(hookPayload(), { at: new Date(Date.now() + 10 * 60_000) })))
      .toEqual({ status: 401, body: INVALID_SIGNATURE });
  });

  it('answers 401 to a delivery whose body was changed after signing', async () => {
    const signed = hookPayload({ userMetadata: { username: '-x' } });
    const tampered = signed.replace('"-x"', '"ok_name"');
    expect(tampered).not.toBe(signed);
    expect(await call(hookRequest(signed, { sentBody: tampered }))).toEqual({
      status: 401,
      body: INVALID_SIGNATURE,
    });
  });

  it('answers 401 hook_not_configured when AUTH_HOOK_SECRET is unset', async () => {
    const result = await call(hookRequest(hookPayload()), { AUTH_HOOK_SECRET: '' });
    expect(result).toEqual({
      status: 401,
      body: {
        error: {
          code: 'hook_not_configured',
          message: 'Auth hooks are not configured for this function',
        },
      },
    });
  });

  it('answers 400 naming the field for a correctly signed payload of another hook', async () => {
    const body = JSON.stringify({
      metadata: { uuid: randomUUID(), time: new Date().toISOString(), name: 'send-email' },
      user: {},
    });
    const result = await call(hookRequest(body));
    expect(result).toEqual({
      status: 400,
      body: {
        error: {
          code: 'validation_failed',
          message: 'The request body is invalid',
          fields: { 'metadata.name': 'Invalid input: expected "before-user-created"' },
        },
      },
    });
  });
});

describe('ensure-profile HTTP handling', () => {
  it('answers a CORS preflight with 204 and the CORS headers', async () => {
    const response = await handler()(new Request(URL_, { method: 'OPTIONS' }));
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-headers')).toContain('webhook-signature');
    expect(await response.text()).toBe('');
  });

  it('answers 405 to GET', async () => {
    const response = await handler()(
      new Request(URL_, { method: 'GET', headers: bearer(api().stack.keys.secretKey) }),
    );
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST, OPTIONS');
    expect(await response.json()).toEqual({
      error: { code: 'method_not_allowed', message: 'Use POST' },
    });
  });

  it('answers 413 to a body over MAX_BODY_BYTES', async () => {
    const result = await call(asService({ user_id: randomUUID(), padding: 'x'.repeat(2000) }), {
      MAX_BODY_BYTES: '1024',
    });
    expect(result).toEqual({
      status: 413,
      body: {
        error: {
          code: 'payload_too_large',
          message: 'The request body must be at most 1024 bytes',
        },
      },
    });
  });

  it('answers 413 to an oversized Auth Hook delivery before verifying it', async () => {
    const result = await call(
      hookRequest(hookPayload({ userMetadata: { full_name: 'x'.repeat(2000) } })),
      { MAX_BODY_BYTES: '1024' },
    );
    expect(result).toEqual({
      status: 413,
      body: {
        error: {
          code: 'payload_too_large',
          message: 'The request body must be at most 1024 bytes',
        },
      },
    });
  });

  it('answers 400 invalid_json to malformed JSON', async () => {
    const result = await call(
      post({ ...bearer(api().stack.keys.secretKey), ...JSON_TYPE }, '{"user_id": '),
    );
    expect(result).toEqual({
      status: 400,
      body: { error: { code: 'invalid_json', message: 'The request body is not valid JSON' } },
    });
  });

  it('answers 415 to a body that is not application/json', async () => {
    const result = await call(
      post(
        { ...bearer(api().stack.keys.secretKey), 'content-type': 'text/plain' },
        JSON.stringify({ user_id: randomUUID() }),
      ),
    );
    expect(result).toEqual({
      status: 415,
      body: {
        error: { code: 'unsupported_media_type', message: 'Content-Type must be application/json' },
      },
    });
  });
});

describe('ensure-profile fallback layers', () => {
  const SIGNATURE =
    'public.ensure_user_profile(uuid, text, text, integer, text, text, text, jsonb)';

  async function withoutEnsureFunction<T>(work: () => Promise<T>): Promise<T> {
    await db().query(`alter function ${SIGNATURE} rename to ensure_user_profile_gone`);
    try {
      return await work();
    } finally {
      await db().query(
        'alter function public.ensure_user_profile_gone(uuid, text, text, integer, text, text, text, jsonb) rename to ensure_user_profile',
      );
    }
  }

  it('still creates the profile by direct insert when ensure_user_profile is missing, from a stale or a reloaded schema cache', async () => {
    const rest = appClient(api().stack.apiUrl, api().stack.keys.serviceRoleKey);
    const probe = async () =>
      (await rest.rpc('ensure_user_profile', { p_user_id: randomUUID(), p_source: 'ensure' })).error
        ?.code ?? null;
    // Warm the stand-in's schema cache with the function.
    const warm = await userWithoutProfile();
    expect((await call(asService({ user_id: warm }))).status).toBe(200);

    const stale = await userWithoutProfile();
    const reloaded = await userWithoutProfile();
    const [a, b] = await withoutEnsureFunction(async () => {
      // The cache still lists the function, so the database itself answers 42883.
      expect(await probe()).toBe('42883');
      const first = await call(asService({ user_id: stale }));
      // Naming something unknown makes the stand-in reload its cache; now the function is
      // unknown to PostgREST itself (PGRST202).
      const unknown = await fetch(
        `${api().stack.apiUrl}/rest/v1/rpc/no_such_function_reloads_the_cache`,
        {
          method: 'POST',
          headers: {
            apikey: api().stack.keys.serviceRoleKey,
            authorization: `Bearer ${api().stack.keys.serviceRoleKey}`,
            'content-type': 'application/json',
          },
          body: '{}',
        },
      );
      expect(((await unknown.json()) as { code?: string }).code).toBe('PGRST202');
      expect(await probe()).toBe('PGRST202');
      const second = await call(asService({ user_id: reloaded }));
      return [first, second];
    });
    for (const [id, result] of [[stale, a], [reloaded, b]] as const) {
      const profile = await profileRow(id);
      expect(result).toEqual({
        status: 200,
        body: { user_id: id, profile, profile_status: 'created' },
      });
      expect(profile).toMatchObject({ created_via: 'ensure', email: null });
      // The database function did not run; the direct insert's own audit row says what happened.
      expect(
        (await db().query(
          `select outcome, details from private.audit_logs where user_id = $1 and source = 'ensure'`,
          [id],
        )).rows,
      ).toEqual([
        { outcome: 'created', details: { via: 'direct_insert' } },
      ]);
    }

    // Renamed back, the function is found again (a cache miss reloads) and the profile reported as existing.
    expect(await call(asService({ user_id: stale }))).toEqual({
      status: 200,
      body: { user_id: stale, profile: await profileRow(stale), profile_status: 'existed' },
    });
  });

  it('answers 202 pending and queues a repair when ensure_user_profile is missing and direct inserts are refused', async () => {
    const id = await userWithoutProfile();
    await db().query('revoke insert on public.user_profiles from service_role');
    let result: { status: number; body: unknown };
    try {
      result = await withoutEnsureFunction(() => call(asService({ user_id: id })));
    } finally {
      await db().query('grant insert on public.user_profiles to service_role');
    }
    expect(result).toEqual({
      status: 202,
      body: {
        user_id: id,
        profile: null,
        profile_status: 'pending',
        completion: 'repair_queued',
        message: PENDING_MESSAGE,
      },
    });
    expect(await profileCount(id)).toBe(0);
    const queued = await db().one(
      'select source, sqlstate, attempts, resolved_at, reason from private.repair_queue where user_id = $1',
      [id],
    );
    expect(queued).toMatchObject({ source: 'ensure', attempts: 1, resolved_at: null });
    expect(['42883', 'PGRST202']).toContain(queued.sqlstate);
    expect(queued.reason).toMatch(/^ensure_user_profile failed after 1 attempt\(s\): /);
    const { rows } = await db().query(
      `select source, outcome from private.audit_logs where user_id = $1 and source = 'ensure'`,
      [id],
    );
    expect(rows).toEqual([{ source: 'ensure', outcome: 'failed' }]);

    // Once the database is whole again, the same call finishes the job and resolves the entry.
    const healed = await call(asService({ user_id: id }));
    expect(healed).toMatchObject({ status: 200, body: { profile_status: 'created' } });
    expect(
      await db().one(
        'select resolution, resolved_at is not null as resolved from private.repair_queue where user_id = $1',
        [id],
      ),
    ).toEqual({
      resolution: 'ensure',
      resolved: true,
    });
  });

  it('answers 202 pending, with the failure in audit_logs and the repair queue, when the database rejects the profile', async () => {
    const id = await userWithoutProfile();
    await db().query(
      `alter table public.user_profiles add constraint hostile_ensure check (user_id <> '${id}') not valid`,
    );
    let result: { status: number; body: unknown };
    try {
      result = await call(asService({ user_id: id }));
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_ensure');
    }
    expect(result).toEqual({
      status: 202,
      body: {
        user_id: id,
        profile: null,
        profile_status: 'pending',
        completion: 'repair_queued',
        message: PENDING_MESSAGE,
      },
    });
    expect(await profileCount(id)).toBe(0);
    const message =
      'new row for relation "user_profiles" violates check constraint "hostile_ensure"';
    const { rows } = await db().query(
      `select source, outcome, sqlstate, message, attempt from private.audit_logs where user_id = $1 and source = 'ensure'`,
      [id],
    );
    expect(rows).toEqual([{
      source: 'ensure',
      outcome: 'failed',
      sqlstate: '23514',
      message,
      attempt: 1,
    }]);
    expect(
      await db().one(
        'select source, sqlstate, reason, attempts, resolved_at from private.repair_queue where user_id = $1',
        [id],
      ),
    ).toEqual({
      source: 'ensure',
      sqlstate: '23514',
      reason: message,
      attempts: 1,
      resolved_at: null,
    });
  });
});
