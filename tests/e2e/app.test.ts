// End to end, the way an app uses the backend: supabase-js against the local stack (Auth and
// PostgREST stand-ins, the three Edge Functions as real Deno processes behind the gateway, a
// real PostgreSQL). SQL only arranges faults and checks what the database holds.
import { decodeJwt } from 'jose';
import { Webhook } from 'standardwebhooks';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signEs256 } from '../../dev/keys.ts';
import { createProfileClient, ProfileApiError, type RegisterInput } from '../../shared/client.ts';
import type { ErrorBody, FullHealth, RegisterResult } from '../helpers/bodies.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { type LocalApi, useLocalApi } from '../helpers/local-api.ts';
import {
  type Answer,
  app,
  invoke,
  ISO_TIME,
  newPassword,
  secret,
  secrets,
  uniqueEmail,
  UUID,
  wire,
} from './helpers.ts';

const db = useTestDatabase();
// The local default: signup mode, email confirmation off. A generous rate limit, because every
// stack on this database shares the per-client counters (the rate limit has its own stack below).
const api = useLocalApi(db, {
  functions: true,
  functionEnv: { REGISTER_MODE: 'signup', REGISTER_RATE_LIMIT_MAX: '1000' },
});

const apis: Array<() => LocalApi> = [api];

const anon = (local: () => LocalApi = api) => app(local().stack.apiUrl, local().stack.keys.anonKey);
const service = (local: () => LocalApi = api) =>
  app(local().stack.apiUrl, local().stack.keys.secretKey);

async function authUsersWith(email: string): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from auth.users where lower(email) = lower($1)',
    [email],
  )).n;
}

async function profileRow(userId: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db().query(
    'select user_id, email, full_name, username, avatar_url, metadata, created_via from public.user_profiles where user_id = $1',
    [userId],
  );
  return rows[0];
}

async function setSettings(assignments: string): Promise<void> {
  await db().query(`update private.settings set ${assignments}`);
}

/** A user registered through the register function, as an app's sign-up form does. */
async function registered(input: Partial<RegisterInput> = {}, local: () => LocalApi = api) {
  const email = input.email ?? uniqueEmail('user');
  const password = input.password ?? newPassword();
  const result = await createProfileClient(anon(local)).register({ ...input, email, password });
  return { email, password, result };
}

/** A session from signing in with the password, as the app's sign-in form does. */
async function signedIn(email: string, password: string, local: () => LocalApi = api) {
  const supabase = anon(local);
  const { data, error } = await supabase.auth.signInWithPassword({ email, password });
  if (error) throw error;
  return { supabase, session: data.session };
}

function base64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString('base64url');
}

const PROFILE_TIMES = {
  created_at: expect.stringMatching(ISO_TIME),
  updated_at: expect.stringMatching(ISO_TIME),
};

describe('registration in signup mode with email confirmation off', () => {
  it('register creates the auth user and its profile and answers 201 with both', async () => {
    const email = uniqueEmail('ada');
    const password = newPassword();
    const username = `ada_${Date.now().toString(36)}`;
    const answer = await invoke<RegisterResult>(anon(), 'register', {
      body: { email, password, full_name: 'Ada Lovelace', username },
    });

    expect(answer.status).toBe(201);
    const userId = answer.body?.user?.id as string;
    expect(userId).toMatch(UUID);
    expect(answer.body).toEqual({
      user: { id: userId, email },
      profile: {
        user_id: userId,
        email,
        full_name: 'Ada Lovelace',
        username,
        avatar_url: null,
        metadata: {},
        // Layer 1, the auth.users trigger, made it inside Auth's transaction; register found it.
        created_via: 'trigger',
        ...PROFILE_TIMES,
      },
      profile_status: 'existed',
      email_confirmation_required: false,
    });
    expect(await profileRow(userId)).toEqual({
      user_id: userId,
      email,
      full_name: 'Ada Lovelace',
      username,
      avatar_url: null,
      metadata: {},
      created_via: 'trigger',
    });
    expect(await authUsersWith(email)).toBe(1);
  });

  it('registering an email that is already registered answers 409 email_taken naming the email field', async () => {
    const { email } = await registered();
    const taken = {
      status: 409,
      body: {
        error: {
          code: 'email_taken',
          message: 'An account with this email already exists',
          fields: { email: 'is already registered' },
        },
      },
    };

    const again = await invoke(anon(), 'register', { body: { email, password: newPassword() } });
    expect({ status: again.status, body: again.body }).toEqual(taken);
    // The same address in other letters is the same address.
    const shouted = await invoke(anon(), 'register', {
      body: { email: email.toUpperCase(), password: newPassword() },
    });
    expect({ status: shouted.status, body: shouted.body }).toEqual(taken);
    expect(await authUsersWith(email)).toBe(1);
  });

  it('a malformed email answers 400 validation_failed naming the email field', async () => {
    const answer = await invoke(anon(), 'register', {
      body: { email: 'not-an-email', password: newPassword() },
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 400,
      body: {
        error: {
          code: 'validation_failed',
          message: 'The request body is invalid',
          fields: { email: 'must be a valid email address' },
        },
      },
    });
    await expect(
      createProfileClient(anon()).register({ email: 'not-an-email', password: newPassword() }),
    ).rejects.toMatchObject({
      status: 400,
      code: 'validation_failed',
      fields: { email: 'must be a valid email address' },
    });
    expect(await authUsersWith('not-an-email')).toBe(0);
  });

  it('a password shorter than six characters answers 422 weak_password naming the password field', async () => {
    const email = uniqueEmail('short');
    const answer = await invoke(anon(), 'register', { body: { email, password: secret('abc12') } });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 422,
      body: {
        error: {
          code: 'weak_password',
          message: 'The password is too weak',
          fields: { password: 'must be at least 6 characters' },
        },
      },
    });
    const error: unknown = await createProfileClient(anon()).register({ email, password: 'abc12' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProfileApiError);
    expect(error).toMatchObject({
      status: 422,
      code: 'weak_password',
      fields: { password: 'must be at least 6 characters' },
    });
    expect(await authUsersWith(email)).toBe(0);
  });

  it('a body that is not JSON answers 400 invalid_json', async () => {
    const email = uniqueEmail('garbled');
    const answer = await wire(api().stack.apiUrl, 'register', {
      method: 'POST',
      headers: {
        apikey: api().stack.keys.anonKey,
        authorization: `Bearer ${api().stack.keys.anonKey}`,
        'content-type': 'application/json',
      },
      body: `{"email": "${email}", "password": "${newPassword()}"`,
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 400,
      body: { error: { code: 'invalid_json', message: 'The request body is not valid JSON' } },
    });
    expect(await authUsersWith(email)).toBe(0);
  });

  it('a body over 16384 bytes answers 413 payload_too_large', async () => {
    const email = uniqueEmail('huge');
    const body = JSON.stringify({
      email,
      password: newPassword(),
      metadata: { note: 'x'.repeat(16_384) },
    });
    expect(Buffer.byteLength(body)).toBeGreaterThan(16_384);
    const answer = await wire(api().stack.apiUrl, 'register', {
      method: 'POST',
      headers: {
        apikey: api().stack.keys.anonKey,
        authorization: `Bearer ${api().stack.keys.anonKey}`,
        'content-type': 'application/json',
      },
      body,
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 413,
      body: {
        error: {
          code: 'payload_too_large',
          message: 'The request body must be at most 16384 bytes',
        },
      },
    });
    expect(await authUsersWith(email)).toBe(0);
  });
});

describe('retried registrations with an Idempotency-Key', () => {
  it('a retry with the same Idempotency-Key gets the first answer, marked replayed, and no second user', async () => {
    const email = uniqueEmail('retry');
    const input = { email, password: newPassword(), full_name: 'Grace Hopper' };
    const idempotencyKey = crypto.randomUUID();
    const profiles = createProfileClient(anon());

    const first = await profiles.register(input, { idempotencyKey });
    const second = await profiles.register(input, { idempotencyKey });

    expect(first.replayed).toBe(false);
    expect(first.profile_status).toBe('existed');
    expect(second.replayed).toBe(true);
    expect(second).toEqual({ ...first, replayed: true });
    expect(await authUsersWith(email)).toBe(1);
  });

  it('ten concurrent registrations with one Idempotency-Key create one user and all end with the same answer', async () => {
    const email = uniqueEmail('burst');
    const body = { email, password: newPassword() };
    const headers = { 'Idempotency-Key': crypto.randomUUID() };
    const supabase = anon();

    const answers = await Promise.all(
      Array.from(
        { length: 10 },
        () => invoke<RegisterResult | ErrorBody>(supabase, 'register', { body, headers }),
      ),
    );

    const originals = answers.filter((a) =>
      a.status === 201 && a.headers.get('idempotency-replayed') !== 'true'
    );
    expect(originals).toHaveLength(1);
    const original = originals[0]!;
    expect(original.body).toMatchObject({
      user: { email },
      profile_status: 'existed',
      email_confirmation_required: false,
    });
    for (const answer of answers) {
      if (answer === original) continue;
      if (answer.status === 409) {
        // Still running when this one arrived: the documented "retry shortly".
        expect(answer.body).toEqual({
          error: {
            code: 'idempotency_in_progress',
            message: 'A request with this Idempotency-Key is still running; retry shortly',
          },
        });
        expect(answer.headers.get('retry-after')).toBe('1');
      } else {
        expect(answer.status).toBe(201);
        expect(answer.headers.get('idempotency-replayed')).toBe('true');
        expect(answer.body).toEqual(original.body);
      }
    }
    // Every caller that was told to retry gets the one answer when it does.
    const retries = await Promise.all(
      answers.filter((a) => a.status === 409).map(() =>
        invoke(supabase, 'register', { body, headers })
      ),
    );
    for (const retry of retries) {
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotency-replayed')).toBe('true');
      expect(retry.body).toEqual(original.body);
    }
    expect(await authUsersWith(email)).toBe(1);
    const { user } = original.body as RegisterResult;
    expect(await profileRow(user.id)).toMatchObject({ user_id: user.id, email });
  });

  it('the same Idempotency-Key with a different body answers 422 idempotency_key_reused', async () => {
    const idempotencyKey = crypto.randomUUID();
    const profiles = createProfileClient(anon());
    await profiles.register({ email: uniqueEmail('first'), password: newPassword() }, {
      idempotencyKey,
    });
    const other = uniqueEmail('other');

    const answer = await invoke(anon(), 'register', {
      body: { email: other, password: newPassword() },
      headers: { 'Idempotency-Key': idempotencyKey },
    });

    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 422,
      body: {
        error: {
          code: 'idempotency_key_reused',
          message: 'This Idempotency-Key was used for a different request',
          fields: { 'Idempotency-Key': 'was used for a different request body' },
        },
      },
    });
    expect(await authUsersWith(other)).toBe(0);
  });
});

describe('ensure-profile for signed-in users', () => {
  it('a user who signs in with the password is told by ensure-profile that the same profile existed', async () => {
    const { email, password, result } = await registered({ full_name: 'Katherine Johnson' });
    const { supabase, session } = await signedIn(email, password);
    expect(session.user.id).toBe(result.user.id);

    const ensured = await createProfileClient(supabase).ensureProfile();

    expect(ensured).toEqual({
      user_id: result.user.id,
      profile: result.profile,
      profile_status: 'existed',
    });
    expect(ensured.profile).toMatchObject({
      user_id: result.user.id,
      email,
      full_name: 'Katherine Johnson',
    });
  });

  it('an access token whose payload was tampered with is refused with 401 invalid_token', async () => {
    const { email, password } = await registered();
    const { session } = await signedIn(email, password);
    const [header, payload, signature] = session.access_token.split('.') as [
      string,
      string,
      string,
    ];
    const claims = decodeJwt(session.access_token);
    expect(payload).toBe(base64url(claims));
    const forged = secret(
      `${header}.${base64url({ ...claims, sub: crypto.randomUUID() })}.${signature}`,
    );

    const answer = await invoke(anon(), 'ensure-profile', {
      body: {},
      headers: { Authorization: `Bearer ${forged}` },
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 401,
      body: { error: { code: 'invalid_token', message: 'The access token is invalid or expired' } },
    });
    // The same token in an app's client: a typed 401, not retried.
    const withForged = app(api().stack.apiUrl, api().stack.keys.anonKey, {
      accessToken: async () => forged,
    });
    await expect(createProfileClient(withForged).ensureProfile()).rejects.toMatchObject({
      status: 401,
      code: 'invalid_token',
    });
  });

  it('an expired access token signed with the real key is refused with 401 invalid_token', async () => {
    const { email, result } = await registered();
    const now = Math.floor(Date.now() / 1000);
    const expired = secret(
      await signEs256(
        {
          iss: `${api().stack.apiUrl}/auth/v1`,
          sub: result.user.id,
          aud: 'authenticated',
          role: 'authenticated',
          email,
          iat: now - 7200,
          exp: now - 3600,
          session_id: crypto.randomUUID(),
        },
        api().stack.keys.signingKey,
      ),
    );

    const answer = await invoke(anon(), 'ensure-profile', {
      body: {},
      headers: { Authorization: `Bearer ${expired}` },
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 401,
      body: { error: { code: 'invalid_token', message: 'The access token is invalid or expired' } },
    });
  });
});

describe('calls Supabase makes to ensure-profile', () => {
  let orphan: { id: string; email: string };

  beforeAll(async () => {
    // A user whose profile went missing: created through Auth while the trigger is switched off.
    await setSettings('trigger_enabled = false');
    try {
      const email = uniqueEmail('orphan');
      const { data, error } = await anon().auth.signUp({ email, password: newPassword() });
      if (error) throw error;
      orphan = { id: data.user!.id, email };
    } finally {
      await setSettings('trigger_enabled = true');
    }
    expect(await profileRow(orphan.id)).toBeUndefined();
  });

  const webhookBody = () => ({
    type: 'INSERT',
    table: 'users',
    schema: 'auth',
    record: {
      id: orphan.id,
      email: orphan.email,
      aud: 'authenticated',
      role: '',
      raw_user_meta_data: {},
    },
    old_record: null,
  });

  it('a Database Webhook with a wrong secret is refused with 401 and creates nothing', async () => {
    const answer = await invoke(anon(), 'ensure-profile', {
      body: webhookBody(),
      headers: { 'x-webhook-secret': secret('a-wrong-webhook-secret-of-some-length') },
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 401,
      body: {
        error: { code: 'invalid_webhook_secret', message: 'The webhook secret does not match' },
      },
    });
    expect(await profileRow(orphan.id)).toBeUndefined();
  });

  it('a Database Webhook with the right secret creates the missing profile and answers 200', async () => {
    const answer = await invoke(anon(), 'ensure-profile', {
      body: webhookBody(),
      headers: { 'x-webhook-secret': secret(api().stack.functionSecrets.PROFILE_WEBHOOK_SECRET!) },
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 200,
      body: {
        user_id: orphan.id,
        profile: {
          user_id: orphan.id,
          email: orphan.email,
          full_name: null,
          username: null,
          avatar_url: null,
          metadata: {},
          created_via: 'webhook',
          ...PROFILE_TIMES,
        },
        profile_status: 'created',
      },
    });
    expect(await profileRow(orphan.id)).toMatchObject({
      user_id: orphan.id,
      email: orphan.email,
      created_via: 'webhook',
    });
  });

  function hookPayload(userMetadata: Record<string, unknown>): string {
    return JSON.stringify({
      metadata: {
        uuid: crypto.randomUUID(),
        time: new Date().toISOString(),
        name: 'before-user-created',
        ip_address: '127.0.0.1',
      },
      user: {
        id: crypto.randomUUID(),
        aud: 'authenticated',
        role: '',
        email: uniqueEmail('hooked'),
        phone: '',
        app_metadata: { provider: 'email', providers: ['email'] },
        user_metadata: userMetadata,
        identities: [],
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
        is_anonymous: false,
      },
    });
  }

  function signed(payload: string, hookSecret: string): Record<string, string> {
    const id = `msg_${crypto.randomUUID()}`;
    const at = new Date();
    // Supabase shows the secret as "v1,whsec_…"; standardwebhooks takes "whsec_…".
    const signature = new Webhook(hookSecret.replace(/^v1,/, '')).sign(id, at, payload);
    secrets.add(signature);
    return {
      'Content-Type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signature,
    };
  }

  it('an Auth Hook with a valid Standard Webhooks signature is allowed with 204', async () => {
    const hookSecret = secret(api().stack.functionSecrets.AUTH_HOOK_SECRET!);
    const payload = hookPayload({
      full_name: 'Mary Jackson',
      username: `mary_${Date.now().toString(36)}`,
    });
    const answer = await invoke(anon(), 'ensure-profile', {
      body: payload,
      headers: signed(payload, hookSecret),
    });
    expect({ status: answer.status, body: answer.body }).toEqual({ status: 204, body: null });
  });

  it('an Auth Hook for a signup whose username is taken answers 200 with a 409 error for Auth', async () => {
    const username = `dorothy_${Date.now().toString(36)}`;
    await registered({ username });
    const hookSecret = secret(api().stack.functionSecrets.AUTH_HOOK_SECRET!);
    const payload = hookPayload({ username: username.toUpperCase() });
    const answer = await invoke(anon(), 'ensure-profile', {
      body: payload,
      headers: signed(payload, hookSecret),
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 200,
      body: { error: { http_code: 409, message: 'username is already taken' } },
    });
  });

  it('an Auth Hook with a bad signature is refused with 401', async () => {
    const payload = hookPayload({ full_name: 'Mallory' });
    const forgedSecret = `v1,whsec_${Buffer.from('not-the-auth-hook-secret').toString('base64')}`;
    const answer = await invoke(anon(), 'ensure-profile', {
      body: payload,
      headers: signed(payload, forgedSecret),
    });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 401,
      body: {
        error: {
          code: 'invalid_signature',
          message: 'The webhook signature or timestamp is invalid',
        },
      },
    });
    // A body changed after signing fails the same way.
    const hookSecret = secret(api().stack.functionSecrets.AUTH_HOOK_SECRET!);
    const headers = signed(payload, hookSecret);
    const tampered = await invoke(anon(), 'ensure-profile', {
      body: payload.replace('Mallory', 'Mallory2'),
      headers,
    });
    expect({ status: tampered.status, body: tampered.body }).toEqual({
      status: 401,
      body: {
        error: {
          code: 'invalid_signature',
          message: 'The webhook signature or timestamp is invalid',
        },
      },
    });
  });
});

describe('profile-health', () => {
  const healthToken = () => secret(api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!);
  /** An uptime monitor: a plain GET or HEAD with no credentials at all. */
  const monitor = (method: 'GET' | 'HEAD') =>
    wire(api().stack.apiUrl, 'profile-health', { method });

  it('profile-health answers an uptime monitor 200 with status ok while every user has a profile', async () => {
    const answer = await monitor('GET');
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 200,
      body: { status: 'ok', checked_at: expect.stringMatching(ISO_TIME) },
    });
  });

  it('profile-health answers an app calling it through supabase-js 200 with status ok', async () => {
    // supabase-js always sends its key as the bearer token; that is no health credential.
    const answer = await invoke(anon(), 'profile-health', { method: 'GET' });
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 200,
      body: { status: 'ok', checked_at: expect.stringMatching(ISO_TIME) },
    });
    // The documented x-health-token header from the same client gets the full verdict.
    const full = await invoke(anon(), 'profile-health', {
      method: 'GET',
      headers: { 'x-health-token': healthToken() },
    });
    expect(full.status).toBe(200);
    expect(full.body).toMatchObject({
      status: 'ok',
      checks: { missing_profiles: { ok: true, value: 0 } },
      stats: { missing_profiles: 0 },
    });
  });

  it('profile-health answers a HEAD request with the status and no body', async () => {
    const answer = await monitor('HEAD');
    expect({ status: answer.status, body: answer.body }).toEqual({ status: 200, body: null });
  });

  it('profile-health answers 503 down as soon as a user has signed up without a profile, and the health token shows the count', async () => {
    let userId: string | undefined;
    try {
      await setSettings('trigger_enabled = false');
      const email = uniqueEmail('missing');
      const { data, error } = await anon().auth.signUp({ email, password: newPassword() });
      if (error) throw error;
      userId = data.user!.id;

      // No grace period and no cached count: the very next call counts the user.
      const full = await invoke<FullHealth>(anon(), 'profile-health', {
        method: 'GET',
        headers: { Authorization: `Bearer ${healthToken()}` },
      });
      expect(full.status).toBe(503);
      expect(full.body).toMatchObject({
        status: 'down',
        checked_at: expect.stringMatching(ISO_TIME),
        checks: {
          trigger_installed: { ok: true, value: true },
          trigger_enabled: { ok: false, value: false },
          missing_profiles: {
            ok: false,
            value: 1,
            threshold: 0,
            queued: 0,
            counted_at: full.body.checked_at,
            last_full_scan_at: null,
          },
        },
        stats: { missing_profiles: 1 },
      });

      const publicAnswer = await monitor('GET');
      expect({ status: publicAnswer.status, body: publicAnswer.body }).toEqual({
        status: 503,
        body: { status: 'down', checked_at: expect.stringMatching(ISO_TIME) },
      });
      const head = await monitor('HEAD');
      expect({ status: head.status, body: head.body }).toEqual({ status: 503, body: null });

      const wrongToken = await invoke(anon(), 'profile-health', {
        method: 'GET',
        headers: { 'x-health-token': secret('not-the-health-token-at-all') },
      });
      expect({ status: wrongToken.status, body: wrongToken.body }).toEqual({
        status: 401,
        body: {
          error: { code: 'unauthorized', message: 'The health token or service key is not valid' },
        },
      });
    } finally {
      await setSettings('trigger_enabled = true');
    }

    // The repair an operator makes: ensure-profile with the secret key; health is ok again.
    const repaired = await invoke(service(), 'ensure-profile', { body: { user_id: userId } });
    expect(repaired.status).toBe(200);
    expect(repaired.body).toMatchObject({
      user_id: userId,
      profile_status: 'created',
      profile: { user_id: userId, created_via: 'ensure' },
    });
    const healthy = await invoke(anon(), 'profile-health', {
      method: 'GET',
      headers: { Authorization: `Bearer ${healthToken()}` },
    });
    expect(healthy.status).toBe(200);
    expect(healthy.body).toMatchObject({
      status: 'ok',
      checks: {
        missing_profiles: { ok: true, value: 0, queued: 0 },
        trigger_enabled: { ok: true, value: true },
      },
      stats: { missing_profiles: 0 },
    });
  });
});

describe('browsers', () => {
  it("a browser's CORS preflight for register is answered 204 with the CORS headers", async () => {
    const answer = await wire(api().stack.apiUrl, 'register', {
      method: 'OPTIONS',
      headers: {
        origin: 'http://127.0.0.1:3000',
        'access-control-request-method': 'POST',
        'access-control-request-headers':
          'authorization, apikey, content-type, idempotency-key, x-client-info',
      },
    });
    expect({ status: answer.status, body: answer.body }).toEqual({ status: 204, body: null });
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-allow-headers')).toContain('idempotency-key');
  });
});

describe('signup mode with email confirmation on', () => {
  const confirming = useLocalApi(db, {
    functions: true,
    autoconfirm: false,
    functionEnv: { REGISTER_MODE: 'signup', REGISTER_RATE_LIMIT_MAX: '1000' },
  });
  apis.push(confirming);

  let registration: { email: string; password: string; userId: string };

  const awaitingConfirmation = (email: string) => ({
    user: { id: expect.stringMatching(UUID), email },
    profile: null,
    profile_status: 'awaiting_confirmation',
    email_confirmation_required: true,
    message: 'Check your email for a confirmation link to finish signing up.',
  });

  it('registration answers 201 "check your email" without the profile, sends the confirmation and makes the profile', async () => {
    const email = uniqueEmail('confirm');
    const password = newPassword();
    const answer = await invoke<RegisterResult>(anon(confirming), 'register', {
      body: { email, password, full_name: 'Annie Easley' },
    });

    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 201,
      body: awaitingConfirmation(email),
    });
    const userId = answer.body?.user?.id as string;
    const mails = confirming().emails.filter((mail) => mail.to === email);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({
      to: email,
      token: expect.stringMatching(/^\d{6}$/),
      link: expect.stringContaining('/auth/v1/verify?token='),
    });
    expect(await profileRow(userId)).toMatchObject({
      user_id: userId,
      email,
      full_name: 'Annie Easley',
    });
    registration = { email, password, userId };
  });

  it('registering the same email again before it is confirmed gets the same answer and nothing of the pending account', async () => {
    const { email, userId } = registration;
    const answer = await invoke<RegisterResult>(anon(confirming), 'register', {
      body: { email, password: newPassword(), full_name: 'Someone Else' },
    });

    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 201,
      body: awaitingConfirmation(email),
    });
    expect(answer.body.user.id).not.toBe(userId);
    expect(await authUsersWith(email)).toBe(1);
    expect(await profileRow(userId)).toMatchObject({ full_name: 'Annie Easley' });
  });

  it('once confirmed, the same email registered again still gets the answer a new address gets', async () => {
    const { email, userId } = registration;
    // The newest mail: a repeated signup may have sent a fresh code that replaced the first.
    const mail = confirming().emails.filter((m) => m.to === email).at(-1)!;
    secrets.add(mail.token);
    const { data, error } = await anon(confirming).auth.verifyOtp({
      email,
      token: mail.token,
      type: 'signup',
    });
    expect(error).toBeNull();
    expect(data.user?.id).toBe(userId);

    const answer = await invoke<RegisterResult>(anon(confirming), 'register', {
      body: { email, password: newPassword() },
    });

    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 201,
      body: awaitingConfirmation(email),
    });
    expect(answer.body.user.id).not.toBe(userId);
    expect(await authUsersWith(email)).toBe(1);
    const profiles = await db().one<{ n: number }>(
      'select count(*)::int as n from public.user_profiles where lower(email) = lower($1)',
      [email],
    );
    expect(profiles.n).toBe(1);
  });
});

describe('admin mode with a rate limit of two registrations', () => {
  const admin = useLocalApi(db, {
    functions: true,
    functionEnv: {
      REGISTER_MODE: 'admin',
      REGISTER_ADMIN_EMAIL_CONFIRM: 'true',
      REGISTER_RATE_LIMIT_MAX: '2',
      // A day-long window, so the count cannot roll over in the middle of a test.
      REGISTER_RATE_LIMIT_WINDOW_SECONDS: '86400',
    },
  });
  apis.push(admin);

  // Every stack on this database counts registrations from 127.0.0.1 in the same table: start
  // each test from an empty count.
  beforeEach(async () => {
    await db().query('delete from private.rate_limits');
  });

  it('registration in admin mode with REGISTER_ADMIN_EMAIL_CONFIRM answers 201 with email_confirmation_required false', async () => {
    const { email, password, result } = await registered({ full_name: 'Dorothy Vaughan' }, admin);

    expect(result).toEqual({
      user: { id: expect.stringMatching(UUID), email },
      profile: {
        user_id: result.user.id,
        email,
        full_name: 'Dorothy Vaughan',
        username: null,
        avatar_url: null,
        metadata: {},
        created_via: 'trigger',
        ...PROFILE_TIMES,
      },
      profile_status: 'existed',
      email_confirmation_required: false,
      replayed: false,
    });
    expect(admin().emails.filter((mail) => mail.to === email)).toEqual([]);
    // Confirmed by the admin API: the user can sign in at once.
    const { session } = await signedIn(email, password, admin);
    expect(session.user.id).toBe(result.user.id);
  });

  it('the third registration from the same client answers 429 rate_limited with a Retry-After header', async () => {
    await registered({}, admin);
    await registered({}, admin);
    const email = uniqueEmail('third');

    const answer = await invoke(anon(admin), 'register', {
      body: { email, password: newPassword() },
    });

    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 429,
      body: {
        error: {
          code: 'rate_limited',
          message: 'Too many registrations from this client; try again later',
        },
      },
    });
    const retryAfter = Number(answer.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(await authUsersWith(email)).toBe(0);
    // The typed client reports it without retrying.
    await expect(createProfileClient(anon(admin)).register({ email, password: newPassword() }))
      .rejects.toMatchObject({
        status: 429,
        code: 'rate_limited',
        retryAfterSeconds: expect.any(Number),
      });
  });

  it('with register_enabled off registration answers 503 registration_disabled', async () => {
    const email = uniqueEmail('switched-off');
    let answer: Answer;
    try {
      await setSettings('register_enabled = false');
      answer = await invoke(anon(admin), 'register', { body: { email, password: newPassword() } });
    } finally {
      await setSettings('register_enabled = true');
    }
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 503,
      body: {
        error: {
          code: 'registration_disabled',
          message: 'Registration is switched off for now; try again later',
        },
      },
    });
    expect(answer.headers.get('retry-after')).toBe('60');
    expect(await authUsersWith(email)).toBe(0);
    // Switched back on, the same registration goes through.
    const again = await invoke(anon(admin), 'register', {
      body: { email, password: newPassword() },
    });
    expect(again.status).toBe(201);
  });
});

it('the logs of the whole file contain no password, access token, service key or Authorization header value', () => {
  const logs = apis.flatMap((local) => local().logs);
  // Not vacuous: the workers' request lines are in there, from every function of the main stack
  // and from register on every stack.
  const logged = (local: () => LocalApi, name: string) =>
    local().logs.some((line) => line.startsWith(`[${name}] `) && line.includes('"msg":"request"'));
  for (const name of ['register', 'ensure-profile', 'profile-health']) {
    expect(logged(api, name)).toBe(true);
  }
  for (const local of apis) expect(logged(local, 'register')).toBe(true);
  const { keys, functionSecrets } = api().stack;
  const forbidden = new Set<string>([
    ...secrets,
    keys.serviceRoleKey,
    keys.secretKey,
    keys.jwtSecret,
    keys.signingKey.d!,
    functionSecrets.PROFILE_WEBHOOK_SECRET!,
    functionSecrets.AUTH_HOOK_SECRET!,
    functionSecrets.PROFILE_HEALTH_TOKEN!,
  ]);
  expect(forbidden.size).toBeGreaterThan(20);
  const leaks = [...forbidden].flatMap((value) =>
    logs.filter((line) => line.includes(value)).map((line) => ({
      secret: `${value.slice(0, 12)}…`,
      line: line.slice(0, 300),
    }))
  );
  expect(leaks).toEqual([]);
});
