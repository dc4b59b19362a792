// Supabase Auth down or slow, injected in the Auth stand-in (Stack.setAuthFault): register must
// retry within its budget, answer 503 with Retry-After once the budget is spent, and leave
// nothing behind that the reconciler cannot finish.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import { createSupabaseClient } from '../../shared/supabase-client.ts';
import type { ErrorBody, RanBatch, RegisterResult } from '../helpers/bodies.ts';
import { randomClientAddress } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { openRepairs, sleep, usersWithoutProfile, within } from './helpers.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

const PASSWORD = 'correct-horse-battery';
const ADMIN_USERS = /^\/auth\/v1\/admin\/users$/;
const SIGNUP = /^\/auth\/v1\/signup$/;
/** The per-call ceiling of the service client under test (production: SUPABASE_CALL_TIMEOUT_MS, 5 s). */
const CALL_TIMEOUT_MS = 500;
/** How long the slow Auth takes: well past CALL_TIMEOUT_MS. */
const SLOW_MS = 1500;

const email = (label: string) => `${label}-${randomUUID()}@example.test`;

function request(body: unknown, headers: Record<string, string> = {}): Request {
  return new Request('http://functions.local/register', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-forwarded-for': randomClientAddress(),
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

/** register with a three-attempt budget and a short per-call timeout, answering within 10 s or failing the test. */
async function register(
  body: unknown,
  options: { mode?: 'admin' | 'signup'; headers?: Record<string, string> } = {},
) {
  // Admin users confirmed at once, so the answer carries the profile (see register.test.ts).
  const config = api().config({
    REGISTER_MODE: options.mode ?? 'admin',
    REGISTER_ADMIN_EMAIL_CONFIRM: 'true',
    PROFILE_RETRY_MAX_ATTEMPTS: '3',
  });
  const supabase = createSupabaseClient(config.supabaseUrl, config.serviceRoleKey, {
    timeoutMs: CALL_TIMEOUT_MS,
  });
  const handler = createRegisterHandler({
    config,
    supabase,
    newAuthClient: () =>
      createSupabaseClient(config.supabaseUrl, config.anonKey!, { timeoutMs: CALL_TIMEOUT_MS }),
  });
  const started = performance.now();
  const response = await within(10_000, 'register', handler(request(body, options.headers)));
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: (await response.json()) as RegisterResult | ErrorBody,
    ms: performance.now() - started,
  };
}

const usersWith = async (address: string) =>
  (await db().one<{ n: number }>(
    'select count(*)::int as n from auth.users where lower(email) = lower($1)',
    [address],
  )).n;

async function profileOf(address: string): Promise<{ created_via: string } | undefined> {
  const { rows } = await db().query<{ created_via: string }>(
    'select p.created_via from public.user_profiles p join auth.users u on u.id = p.user_id where lower(u.email) = lower($1)',
    [address],
  );
  return rows[0];
}

/** Waits (bounded) until Auth has finished the requests it was still sleeping on. */
async function untilUserExists(address: string, ms = SLOW_MS * 4): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await usersWith(address)) === 0) {
    if (Date.now() > deadline) throw new Error(`Auth never created ${address}`);
    await sleep(50);
  }
}

/** Reconcile batches until nothing more is due, as the scheduled tick does; the summed counts. */
async function reconcile(): Promise<RanBatch> {
  let last: RanBatch;
  const sweep = { missing: 0, created: 0, failed: 0 };
  do {
    last = (await db().one<{ s: RanBatch }>('select public.reconcile_profiles(10000) as s')).s;
    for (const key of Object.keys(sweep) as Array<keyof typeof sweep>) {
      sweep[key] += last.sweep[key];
    }
  } while (last.more);
  return { ...last, sweep };
}

afterEach(() => {
  api().stack.setAuthFault(null);
});

describe('register while Auth answers 503', () => {
  it(
    'retries two 503s from the admin API within its budget and answers 201 with the profile',
    async () => {
      api().stack.setAuthFault({ status: 503, paths: ADMIN_USERS, remaining: 2 });
      const address = email('flaky-admin');
      const answer = await register({ email: address, password: PASSWORD });
      expect(answer.status).toBe(201);
      expect(answer.body).toMatchObject({
        user: { email: address },
        profile_status: 'existed',
        profile: { created_via: 'trigger' },
      });
      expect(api().stack.authFault()?.remaining).toBe(0);
      expect(await usersWith(address)).toBe(1);
    },
    20_000,
  );

  it('retries a 503 from signup within its budget and answers 201 in signup mode', async () => {
    api().stack.setAuthFault({ status: 503, paths: SIGNUP, remaining: 1 });
    const address = email('flaky-signup');
    const answer = await register({ email: address, password: PASSWORD }, { mode: 'signup' });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({
      user: { email: address },
      profile_status: 'existed',
      email_confirmation_required: false,
    });
    expect(api().stack.authFault()?.remaining).toBe(0);
    expect(await usersWith(address)).toBe(1);
  }, 20_000);

  it(
    'answers 503 service_unavailable with Retry-After after three attempts, creates nothing, and frees the Idempotency-Key',
    async () => {
      api().stack.setAuthFault({ status: 503, paths: ADMIN_USERS, remaining: 100 });
      const body = { email: email('down'), password: PASSWORD };
      const key = randomUUID();
      const answer = await register(body, { headers: { 'idempotency-key': key } });
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toBe('5');
      expect(answer.body).toEqual({
        error: {
          code: 'service_unavailable',
          message: 'Supabase Auth is unavailable; try again shortly',
        },
      });
      expect(100 - api().stack.authFault()!.remaining!).toBe(3);
      expect(await usersWith(body.email)).toBe(0);
      expect(await openRepairs(db().admin)).toEqual([]);

      // Auth is back: the client's retry with the same key does the work once.
      api().stack.setAuthFault(null);
      const retried = await register(body, { headers: { 'idempotency-key': key } });
      expect(retried.status).toBe(201);
      expect(await usersWith(body.email)).toBe(1);
    },
    20_000,
  );
});

describe('register while Auth is slower than the call timeout', () => {
  it(
    'retries an attempt that timed out and answers 201 with one user, even after the slow attempt lands',
    async () => {
      api().stack.setAuthFault({ delayMs: SLOW_MS, paths: ADMIN_USERS, remaining: 1 });
      const address = email('slow-once');
      const answer = await register({ email: address, password: PASSWORD });
      expect(answer.status).toBe(201);
      expect(answer.body).toMatchObject({ user: { email: address }, profile_status: 'existed' });
      // The timed-out attempt reaches Auth late; it must not make a second user.
      await sleep(SLOW_MS + 300);
      expect(await usersWith(address)).toBe(1);
      expect(await profileOf(address)).toEqual({ created_via: 'trigger' });
    },
    20_000,
  );

  it(
    'answers 503 with Retry-After within its budget when every attempt times out, and the user Auth creates afterwards has its profile from the trigger',
    async () => {
      api().stack.setAuthFault({ delayMs: SLOW_MS, paths: ADMIN_USERS });
      const address = email('slow');
      const key = randomUUID();
      const answer = await register({ email: address, password: PASSWORD }, {
        headers: { 'idempotency-key': key },
      });
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toBe('5');
      expect((answer.body as ErrorBody).error.code).toBe('service_unavailable');
      // Three attempts of at most CALL_TIMEOUT_MS each plus short backoffs: never Auth's full delay per attempt.
      expect(answer.ms).toBeLessThan(3 * CALL_TIMEOUT_MS + 1000);

      await untilUserExists(address);
      await sleep(SLOW_MS); // the later attempts land too, and are refused as duplicates
      expect(await usersWith(address)).toBe(1);
      expect(await profileOf(address)).toEqual({ created_via: 'trigger' });
      expect(await usersWithoutProfile(db().admin)).toEqual([]);

      // The client's retry with the same key recognises the account its own timed-out attempt
      // made (by the attempt id the key derives), rather than being told the address is taken.
      api().stack.setAuthFault(null);
      const retried = await register({ email: address, password: PASSWORD }, {
        headers: { 'idempotency-key': key },
      });
      expect(retried.status).toBe(201);
      expect(retried.body).toMatchObject({
        user: { email: address },
        profile: { created_via: 'trigger' },
      });
      expect(await usersWith(address)).toBe(1);
      // Without the key it is someone else's registration of a taken address.
      const stranger = await register({ email: address, password: PASSWORD });
      expect(stranger.status).toBe(409);
      expect((stranger.body as ErrorBody).error.code).toBe('email_taken');
    },
    30_000,
  );

  it(
    'leaves a late-created user without a profile only until the reconcile, which creates it',
    async () => {
      api().stack.setAuthFault({ delayMs: SLOW_MS, paths: ADMIN_USERS });
      const address = email('slow-no-trigger');
      // The first layer is off as well, so nothing but the reconciler can make this profile.
      await db().query('update private.settings set trigger_enabled = false');
      try {
        const answer = await register({ email: address, password: PASSWORD });
        expect(answer.status).toBe(503);
        expect(answer.retryAfter).toBe('5');
        await untilUserExists(address);
        await sleep(SLOW_MS);
      } finally {
        await db().query('update private.settings set trigger_enabled = true');
      }
      expect(await usersWith(address)).toBe(1);
      expect(await profileOf(address)).toBeUndefined();

      const summary = await reconcile();
      expect(summary).toMatchObject({ ran: true, sweep: { missing: 1, created: 1, failed: 0 } });
      expect(await profileOf(address)).toEqual({ created_via: 'backfill' });
      expect(await usersWithoutProfile(db().admin)).toEqual([]);
      expect(await openRepairs(db().admin)).toEqual([]);
    },
    30_000,
  );
});

describe('a failure between Auth committing the user and answering', () => {
  // Auth made the user, then its answer was lost (a 500, or the connection dropped): the retry
  // is told the address exists, and the attempt id in the user's metadata shows it is ours.
  it.each([
    ['a 500', { status: 500 }],
    ['a dropped connection', {}],
  ])(
    "ends as that user's success after %s in signup mode, never 409 or 5xx",
    async (_label, fault) => {
      api().stack.setAuthFault({ ...fault, afterCommit: true, paths: SIGNUP, remaining: 1 });
      const address = email('lost-answer');
      const answer = await register({
        email: address,
        password: PASSWORD,
        full_name: 'Lost Answer',
      }, { mode: 'signup' });
      expect(api().stack.authFault()?.remaining).toBe(0);
      expect(answer.status).toBe(201);
      const { id } = await db().one<{ id: string }>('select id from auth.users where email = $1', [
        address,
      ]);
      expect(answer.body).toMatchObject({
        user: { id, email: address },
        profile_status: 'existed',
        profile: { user_id: id, full_name: 'Lost Answer' },
      });
      expect(await usersWith(address)).toBe(1);
    },
    20_000,
  );

  it("ends as that user's success after a 500 in admin mode", async () => {
    api().stack.setAuthFault({ status: 500, afterCommit: true, paths: ADMIN_USERS, remaining: 1 });
    const address = email('lost-admin');
    const answer = await register({ email: address, password: PASSWORD });
    expect(answer.status).toBe(201);
    const { id } = await db().one<{ id: string }>('select id from auth.users where email = $1', [
      address,
    ]);
    expect(answer.body).toMatchObject({ user: { id }, profile: { user_id: id } });
  }, 20_000);
});

describe('a failure between Auth committing the user and answering, with email confirmation on', () => {
  // Auth's mail interval as hosted (60 s): the retry of the signup is answered 429
  // over_email_send_rate_limit, which must not be mistaken for a refusal.
  const confirming = useLocalApi(db, { autoconfirm: false, mailIntervalSeconds: 60 });

  it(
    'ends as "check your email" with the user\'s own id after the retry meets over_email_send_rate_limit',
    async () => {
      confirming().stack.setAuthFault({
        status: 500,
        afterCommit: true,
        paths: SIGNUP,
        remaining: 1,
      });
      const address = email('lost-confirm');
      const handler = createRegisterHandler({
        config: confirming().config({ REGISTER_MODE: 'signup' }),
      });
      const key = randomUUID();
      const response = await handler(
        request({ email: address, password: PASSWORD }, { 'idempotency-key': key }),
      );
      const { id } = await db().one<{ id: string }>('select id from auth.users where email = $1', [
        address,
      ]);
      expect({ status: response.status, body: await response.json() }).toEqual({
        status: 201,
        body: {
          user: { id, email: address },
          profile: null,
          profile_status: 'awaiting_confirmation',
          email_confirmation_required: true,
          message: 'Check your email for a confirmation link to finish signing up.',
        },
      });
      // Auth did send one mail, for the attempt whose answer was lost; the retry sent none.
      expect(confirming().emails.filter((mail) => mail.to === address)).toHaveLength(1);
      confirming().stack.setAuthFault(null);
    },
    20_000,
  );
});

describe('the Auth stand-in fault switch', () => {
  it('affects only matching paths, counts down, and is gone once cleared', async () => {
    const { apiUrl, keys } = api().stack;
    const settings = () =>
      fetch(`${apiUrl}/auth/v1/.well-known/jwks.json`, { headers: { apikey: keys.anonKey } });
    api().stack.setAuthFault({ status: 503, paths: /jwks/, remaining: 1 });
    expect((await settings()).status).toBe(503);
    expect((await settings()).status).toBe(200);
    api().stack.setAuthFault({ status: 503 });
    const down = await settings();
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({
      error_code: 'service_unavailable',
      msg: 'Injected fault: Auth is unavailable',
    });
    api().stack.setAuthFault(null);
    expect((await settings()).status).toBe(200);
  }, 10_000);
});
