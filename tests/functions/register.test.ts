import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRegisterHandler, type RegisterDeps } from '../../shared/register-handler.ts';
import { createSupabaseClient } from '../../shared/supabase-client.ts';
import type { ErrorBody, RegisterResult } from '../helpers/bodies.ts';
import { randomClientAddress } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

const PASSWORD = 'correct-horse-battery';

/** A registration as the gateway delivers it; each call from its own client address by default. */
function request(body: unknown, headers: Record<string, string> = {}): Request {
  return new Request('http://functions.local/register', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-forwarded-for': randomClientAddress(),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The answer with its parsed body, typed B: what the test reads of it. */
async function call<B = unknown>(handler: (r: Request) => Promise<Response>, req: Request) {
  const response = await handler(req);
  return { status: response.status, headers: response.headers, body: (await response.json()) as B };
}

const email = () => `user-${randomUUID()}@example.test`;
const usersWith = async (address: string) =>
  (await db().one<{ n: number }>('select count(*)::int as n from auth.users where email = $1', [
    address,
  ])).n;

function registerWith(overrides: Record<string, string> = {}, deps: Partial<RegisterDeps> = {}) {
  return createRegisterHandler({ config: api().config(overrides), ...deps });
}

/** A service client whose calls to Auth misbehave as `fault` decides (n counts Auth calls). */
function faultyClient(config: Config, fault: (n: number) => Response | Error | null) {
  let n = 0;
  const calls: string[] = [];
  const client = createSupabaseClient(config.supabaseUrl, config.serviceRoleKey, {
    fetch: async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.includes('/auth/v1/')) {
        calls.push(new URL(url).pathname);
        const injected = fault(++n);
        if (injected instanceof Error) throw injected;
        if (injected) return injected;
      }
      return fetch(input, init);
    },
  });
  return { client, calls };
}

// Admin mode with the email confirmed at once: the user may sign in right away, so the answer
// carries the profile (and a taken address is told 409, as Auth's signup does without
// confirmation). Admin mode with confirmation required answers like signup mode with
// confirmation on (see the concealment tests).
const ADMIN = { REGISTER_MODE: 'admin', REGISTER_ADMIN_EMAIL_CONFIRM: 'true' } as const;

describe('register in admin mode', () => {
  it('creates the user through the Auth admin API and answers 201 with the profile', async () => {
    const address = email();
    const username = `ada_${randomUUID().slice(0, 8)}`;
    const { status, body } = await call<RegisterResult>(
      registerWith(ADMIN),
      request({
        email: address.toUpperCase(),
        password: PASSWORD,
        full_name: 'Ada Lovelace',
        username,
        metadata: { plan: 'pro' },
      }),
    );
    expect(status).toBe(201);
    expect(body.user).toEqual({ id: expect.any(String), email: address });
    // The trigger made the profile inside Auth's transaction, so register finds it.
    expect(body.profile_status).toBe('existed');
    expect(body.email_confirmation_required).toBe(false);
    expect(body.profile).toMatchObject({
      user_id: body.user.id,
      email: address,
      full_name: 'Ada Lovelace',
      username,
      metadata: { plan: 'pro' },
      created_via: 'trigger',
    });
    expect(await usersWith(address)).toBe(1);
  });

  it("answers the profile the trigger made through one ensure_user_profile call, which leaves the request's existed row beside the trigger's created row", async () => {
    const lines: string[] = [];
    const log = createLogger({
      destination: new Writable({
        write(c, _e, d) {
          lines.push(String(c));
          d();
        },
      }),
    });
    const response = await registerWith(ADMIN, { log })(
      request({ email: email(), password: PASSWORD, full_name: 'Ada' }),
    );
    const body = (await response.json()) as RegisterResult;
    expect(response.status).toBe(201);
    expect(body.profile_status).toBe('existed');
    const { j: stored } = await db().one(
      'select to_jsonb(p) as j from public.user_profiles p where user_id = $1',
      [body.user.id],
    );
    expect(body.profile).toEqual(stored);
    const requestId = response.headers.get('x-request-id');
    const { rows } = await db().query(
      'select source, outcome, request_id from private.audit_logs where user_id = $1 order by id',
      [body.user.id],
    );
    expect(rows).toEqual([
      { source: 'trigger', outcome: 'created', request_id: null },
      { source: 'register', outcome: 'existed', request_id: requestId },
    ]);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({
        msg: 'request',
        request_id: requestId,
        status: 201,
        user_id: body.user.id,
        profile_status: 'existed',
        attempts: 1,
        via: 'rpc',
      }),
    ]);
  });

  it('confirms the email when REGISTER_ADMIN_EMAIL_CONFIRM is on', async () => {
    const { status, body } = await call<RegisterResult>(
      registerWith(ADMIN),
      request({ email: email(), password: PASSWORD }),
    );
    expect(status).toBe(201);
    expect(body.email_confirmation_required).toBe(false);
    expect(
      await db().one(
        'select email_confirmed_at is not null as confirmed from auth.users where id = $1',
        [body.user.id],
      ),
    ).toEqual({
      confirmed: true,
    });
  });

  it('with REGISTER_ADMIN_EMAIL_CONFIRM off answers "check your email" without the profile, to a new and a taken address alike', async () => {
    const handler = registerWith({ REGISTER_MODE: 'admin' });
    const address = email();
    const first = await call<RegisterResult>(
      handler,
      request({ email: address, password: PASSWORD, full_name: 'Ada' }),
    );
    const again = await call<RegisterResult>(
      handler,
      request({ email: address, password: 'another-password', full_name: 'Eve' }),
    );
    const expected = {
      user: { id: expect.any(String), email: address },
      profile: null,
      profile_status: 'awaiting_confirmation',
      email_confirmation_required: true,
      message: 'Check your email for a confirmation link to finish signing up.',
    };
    expect([first.status, again.status]).toEqual([201, 201]);
    expect([first.body, again.body]).toEqual([expected, expected]);
    const { id } = await db().one<{ id: string }>('select id from auth.users where email = $1', [
      address,
    ]);
    expect(first.body.user.id).toBe(id);
    expect(again.body.user.id).not.toBe(id);
    expect(await db().one('select full_name from public.user_profiles where user_id = $1', [id]))
      .toEqual({ full_name: 'Ada' });
  });

  it('creates the profile itself, as created, when the trigger is switched off', async () => {
    await db().query('update private.settings set trigger_enabled = false');
    try {
      const { status, body } = await call<RegisterResult>(
        registerWith(ADMIN),
        request({ email: email(), password: PASSWORD, full_name: 'Grace' }),
      );
      expect(status).toBe(201);
      expect(body.profile_status).toBe('created');
      expect(body.profile).toMatchObject({ full_name: 'Grace', created_via: 'register' });
    } finally {
      await db().query('update private.settings set trigger_enabled = true');
    }
  });

  it('answers 409 email_taken for an email that is already registered, creating nothing', async () => {
    const handler = registerWith(ADMIN);
    const address = email();
    expect((await call(handler, request({ email: address, password: PASSWORD }))).status).toBe(201);
    expect(await call(handler, request({ email: address, password: 'another-password' })))
      .toMatchObject({
        status: 409,
        body: {
          error: {
            code: 'email_taken',
            message: 'An account with this email already exists',
            fields: { email: 'is already registered' },
          },
        },
      });
    expect(await usersWith(address)).toBe(1);
  });
});

describe('register in signup mode', () => {
  it('goes through Auth signup, needs no confirmation when Auth autoconfirms, and answers 409 the second time', async () => {
    const address = email();
    const handler = registerWith({ REGISTER_MODE: 'signup' });
    const { status, body } = await call<RegisterResult>(
      handler,
      request({ email: address, password: PASSWORD }),
    );
    expect(status).toBe(201);
    expect(body.email_confirmation_required).toBe(false);
    expect(await call(handler, request({ email: address, password: PASSWORD }))).toMatchObject({
      status: 409,
      body: { error: { code: 'email_taken' } },
    });
    expect(await usersWith(address)).toBe(1);
  });
});

describe('register in signup mode with email confirmation on', () => {
  const confirming = useLocalApi(db, { autoconfirm: false, captchaToken: 'captcha-ok' });
  const handler = () =>
    createRegisterHandler({
      config: confirming().config({
        REGISTER_MODE: 'signup',
        REGISTER_EMAIL_REDIRECT_TO: 'http://127.0.0.1:3000/welcome',
      }),
    });

  it('lets Auth send the confirmation, says confirmation is required, and passes the CAPTCHA token through', async () => {
    const address = email();
    const { status, body } = await call<RegisterResult>(
      handler(),
      request({ email: address, password: PASSWORD, captcha_token: 'captcha-ok' }),
    );
    expect(status).toBe(201);
    expect(body.email_confirmation_required).toBe(true);
    expect(confirming().emails.map((m) => m.to)).toContain(address);
  });

  it('answers 400 captcha_failed naming captcha_token when Auth refuses the CAPTCHA', async () => {
    expect(
      await call(
        handler(),
        request({ email: email(), password: PASSWORD, captcha_token: 'wrong' }),
      ),
    ).toMatchObject({
      status: 400,
      body: { error: { code: 'captcha_failed', fields: { captcha_token: 'was not accepted' } } },
    });
  });

  it('answers a confirmed address exactly as a new one, without its account or profile, unless REGISTER_REVEAL_TAKEN_EMAIL is on', async () => {
    const address = email();
    const created = await call<RegisterResult>(
      handler(),
      request({ email: address, password: PASSWORD, captcha_token: 'captcha-ok' }),
    );
    expect(created.status).toBe(201);
    await db().query('update auth.users set email_confirmed_at = now() where email = $1', [
      address,
    ]);
    const again = await call<RegisterResult>(
      handler(),
      request({ email: address, password: 'someone-else', captcha_token: 'captcha-ok' }),
    );
    expect(again.status).toBe(201);
    expect(Object.keys(again.body).sort()).toEqual(Object.keys(created.body).sort());
    expect(again.body).toEqual({
      ...created.body,
      user: { id: expect.any(String), email: address },
    });
    expect(again.body.user.id).not.toBe(created.body.user.id);
    const revealing = createRegisterHandler({
      config: confirming().config({ REGISTER_MODE: 'signup', REGISTER_REVEAL_TAKEN_EMAIL: 'true' }),
    });
    expect(
      await call(
        revealing,
        request({ email: address, password: 'someone-else', captcha_token: 'captcha-ok' }),
      ),
    ).toMatchObject({
      status: 409,
      body: { error: { code: 'email_taken' } },
    });
    expect(await usersWith(address)).toBe(1);
  });
});

describe('register in signup mode behind a before-user-created hook that refuses', () => {
  // The project's own hook (any HTTP endpoint): it refuses addresses outside one domain.
  let hookUrl = '';
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const { user } = JSON.parse(body) as { user: { email: string } };
      res.setHeader('content-type', 'application/json');
      if (user.email.endsWith('@example.test')) {
        res.end(
          JSON.stringify({
            error: { http_code: 403, message: 'Sign-ups are open to work addresses only' },
          }),
        );
      } else {
        res.statusCode = 204;
        res.end();
      }
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const hooked = useLocalApi(db, {
    beforeUserCreatedHook: {
      get url() {
        return hookUrl;
      },
      secrets: `v1,whsec_${btoa('a-hook-secret-for-tests')}`,
    },
  });

  it("answers the hook's status and message as 403 signup_rejected, creating nothing", async () => {
    const address = email();
    const handler = createRegisterHandler({ config: hooked().config({ REGISTER_MODE: 'signup' }) });
    expect(await call(handler, request({ email: address, password: PASSWORD }))).toMatchObject({
      status: 403,
      body: {
        error: { code: 'signup_rejected', message: 'Sign-ups are open to work addresses only' },
      },
    });
    expect(await usersWith(address)).toBe(0);
    const allowed = `user-${randomUUID()}@work.test`;
    expect((await call(handler, request({ email: allowed, password: PASSWORD }))).status).toBe(201);
  });
});

describe('register input', () => {
  it.each([
    ['a malformed email', { email: 'nope', password: PASSWORD }, {
      email: 'must be a valid email address',
    }],
    ['a missing password', { email: 'a@example.test' }, { password: 'is required' }],
    ['a non-string name', { email: 'a@example.test', password: PASSWORD, full_name: 7 }, {
      full_name: 'must be a string',
    }],
    ['an unknown field', { email: 'a@example.test', password: PASSWORD, role: 'admin' }, {
      role: 'is not a known field',
    }],
    ['an array body', [], { body: 'must be a JSON object' }],
  ])(
    'rejects %s with 400 validation_failed naming the field, creating nothing',
    async (_label, body, fields) => {
      const before = (await db().one<{ n: number }>('select count(*)::int as n from auth.users')).n;
      const answer = await call(registerWith(), request(body));
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({
        error: { code: 'validation_failed', message: 'The request body is invalid', fields },
      });
      expect((await db().one<{ n: number }>('select count(*)::int as n from auth.users')).n).toBe(
        before,
      );
    },
  );

  it('rejects a short password with 422 weak_password', async () => {
    const answer = await call(registerWith(), request({ email: email(), password: '12345' }));
    expect(answer.status).toBe(422);
    expect(answer.body).toEqual({
      error: {
        code: 'weak_password',
        message: 'The password is too weak',
        fields: { password: 'must be at least 6 characters' },
      },
    });
  });

  it('rejects malformed JSON with 400 and a body over MAX_BODY_BYTES with 413', async () => {
    expect((await call<ErrorBody>(registerWith(), request('{"email":'))).body.error.code).toBe(
      'invalid_json',
    );
    const big = { email: email(), password: PASSWORD, metadata: { blob: 'x'.repeat(2000) } };
    const answer = await call<ErrorBody>(registerWith({ MAX_BODY_BYTES: '1024' }), request(big));
    expect(answer.status).toBe(413);
    expect(answer.body.error.code).toBe('payload_too_large');
  });

  it('answers 409 username_taken, case-insensitively, before creating any auth user', async () => {
    const name = `taken_${randomUUID().slice(0, 8)}`;
    const handler = registerWith(ADMIN);
    expect(
      (await call(handler, request({ email: email(), password: PASSWORD, username: name }))).status,
    ).toBe(201);
    const second = email();
    expect(
      await call(
        handler,
        request({ email: second, password: PASSWORD, username: name.toUpperCase() }),
      ),
    ).toMatchObject({
      status: 409,
      body: { error: { code: 'username_taken', fields: { username: 'is already taken' } } },
    });
    expect(await usersWith(second)).toBe(0);
  });
});

describe('register with an Idempotency-Key', () => {
  it('replays the first answer to a retry and creates one user', async () => {
    const handler = registerWith(ADMIN);
    const body = { email: email(), password: PASSWORD };
    const key = randomUUID();
    const first = await call(handler, request(body, { 'idempotency-key': key }));
    const retried = await call(handler, request(body, { 'idempotency-key': key }));
    expect(first.status).toBe(201);
    expect(retried.status).toBe(201);
    expect(retried.body).toEqual(first.body);
    expect(first.headers.get('idempotency-replayed')).toBeNull();
    expect(retried.headers.get('idempotency-replayed')).toBe('true');
    expect(await usersWith(body.email)).toBe(1);
  });

  it('gives one user to ten concurrent deliveries of the same registration', async () => {
    const handler = registerWith(ADMIN);
    const body = { email: email(), password: PASSWORD };
    const key = randomUUID();
    const answers = await Promise.all(
      Array.from(
        { length: 10 },
        () => call<RegisterResult | ErrorBody>(handler, request(body, { 'idempotency-key': key })),
      ),
    );
    expect(answers.filter((a) => a.status === 201).length).toBeGreaterThanOrEqual(1);
    for (const answer of answers) {
      if (answer.status !== 201) {
        expect(answer).toMatchObject({
          status: 409,
          body: { error: { code: 'idempotency_in_progress' } },
        });
      }
    }
    expect(
      new Set(
        answers.filter((a) => a.status === 201).map((a) => (a.body as RegisterResult).user.id),
      ).size,
    ).toBe(1);
    expect(await usersWith(body.email)).toBe(1);
  });

  it('replays a stored 409, and refuses the key for a different body with 422', async () => {
    const handler = registerWith(ADMIN);
    const address = email();
    await call(handler, request({ email: address, password: PASSWORD }));
    const key = randomUUID();
    const duplicate = await call(
      handler,
      request({ email: address, password: PASSWORD }, { 'idempotency-key': key }),
    );
    expect(duplicate.status).toBe(409);
    const replay = await call(
      handler,
      request({ email: address, password: PASSWORD }, { 'idempotency-key': key }),
    );
    expect(replay).toMatchObject({ status: 409, body: duplicate.body });
    expect(replay.headers.get('idempotency-replayed')).toBe('true');
    expect(
      await call(
        handler,
        request({ email: email(), password: PASSWORD }, { 'idempotency-key': key }),
      ),
    ).toMatchObject({
      status: 422,
      body: {
        error: {
          code: 'idempotency_key_reused',
          fields: { 'Idempotency-Key': 'was used for a different request body' },
        },
      },
    });
  });

  it('rejects a malformed key with 400 naming the header', async () => {
    const answer = await call<ErrorBody>(
      registerWith(),
      request({ email: email(), password: PASSWORD }, { 'idempotency-key': 'has space' }),
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error.fields).toEqual({
      'Idempotency-Key': 'must be 1-255 printable ASCII characters',
    });
  });
});

describe('register guards', () => {
  it('limits a client to REGISTER_RATE_LIMIT_MAX attempts per window with 429 and Retry-After', async () => {
    const handler = registerWith({
      ...ADMIN,
      REGISTER_RATE_LIMIT_MAX: '2',
      REGISTER_RATE_LIMIT_WINDOW_SECONDS: '3600',
    });
    const client = randomClientAddress();
    const from = (spoof: string) => ({ 'x-forwarded-for': `${spoof}, ${client}` });
    expect(
      (await call(handler, request({ email: email(), password: PASSWORD }, from('198.51.100.1'))))
        .status,
    ).toBe(201);
    expect(
      (await call(handler, request({ email: email(), password: PASSWORD }, from('198.51.100.2'))))
        .status,
    ).toBe(201);
    // A client cannot escape by inventing its own first hop: the gateway's last one counts.
    const limited = await call<ErrorBody>(
      handler,
      request({ email: email(), password: PASSWORD }, from('198.51.100.3')),
    );
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await call(handler, request({ email: email(), password: PASSWORD }))).status).toBe(201);
  });

  it('counts requests without a trustworthy client address against REGISTER_UNATTRIBUTED_RATE_LIMIT_MAX, apart from every client', async () => {
    await db().query(`delete from private.rate_limits where bucket = 'register:unattributed'`);
    const handler = registerWith({
      ...ADMIN,
      REGISTER_RATE_LIMIT_MAX: '1',
      REGISTER_UNATTRIBUTED_RATE_LIMIT_MAX: '3',
      REGISTER_RATE_LIMIT_WINDOW_SECONDS: '3600',
    });
    const unattributed = (xff?: string) =>
      call<RegisterResult | ErrorBody>(
        handler,
        request(
          { email: email(), password: PASSWORD },
          xff === undefined ? { 'x-forwarded-for': '' } : { 'x-forwarded-for': xff },
        ),
      );
    // No header, a hop that is no address: neither is anyone's address, and neither gets one person's budget of 1.
    expect([
      (await unattributed()).status,
      (await unattributed('unknown')).status,
      (await unattributed()).status,
    ]).toEqual([201, 201, 201]);
    const limited = await unattributed();
    expect(limited.status).toBe(429);
    expect((limited.body as ErrorBody).error.code).toBe('rate_limited');
    // A client with an address of its own is not held by the unattributed ceiling.
    expect((await call(handler, request({ email: email(), password: PASSWORD }))).status).toBe(201);
  });

  it('answers 503 registration_disabled with Retry-After while register_enabled is off', async () => {
    await db().query('update private.settings set register_enabled = false');
    try {
      const answer = await call<ErrorBody>(
        registerWith(),
        request({ email: email(), password: PASSWORD }),
      );
      expect(answer.status).toBe(503);
      expect(answer.body.error.code).toBe('registration_disabled');
      expect(answer.headers.get('retry-after')).toBe('60');
    } finally {
      await db().query('update private.settings set register_enabled = true');
    }
  });
});

describe('register when dependencies fail', () => {
  it('retries Auth while it answers 503 and succeeds within the budget', async () => {
    const config = api().config({ ...ADMIN, PROFILE_RETRY_MAX_ATTEMPTS: '4' });
    const { client, calls } = faultyClient(
      config,
      (n) => (n <= 2 ? new Response('{"message":"down"}', { status: 503 }) : null),
    );
    const { status } = await call(
      createRegisterHandler({ config, supabase: client }),
      request({ email: email(), password: PASSWORD }),
    );
    expect(status).toBe(201);
    expect(calls).toEqual(['/auth/v1/admin/users', '/auth/v1/admin/users', '/auth/v1/admin/users']);
  });

  it('answers 503 with Retry-After when Auth stays unreachable, leaving no user and a free Idempotency-Key', async () => {
    const config = api().config({ ...ADMIN, PROFILE_RETRY_MAX_ATTEMPTS: '3' });
    const { client, calls } = faultyClient(config, () => new TypeError('fetch failed'));
    const body = { email: email(), password: PASSWORD };
    const key = randomUUID();
    const answer = await call<ErrorBody>(
      createRegisterHandler({ config, supabase: client }),
      request(body, { 'idempotency-key': key }),
    );
    expect(answer.status).toBe(503);
    expect(answer.body.error.code).toBe('service_unavailable');
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(calls).toHaveLength(3);
    expect(await usersWith(body.email)).toBe(0);
    // The key was released, so the client's retry does the work once Auth is back.
    expect((await call(registerWith(ADMIN), request(body, { 'idempotency-key': key }))).status)
      .toBe(201);
  });

  it('recognises the user an attempt created before its answer was lost, instead of answering 409', async () => {
    const config = api().config(ADMIN);
    let lost = false;
    const client = createSupabaseClient(config.supabaseUrl, config.serviceRoleKey, {
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        if (
          !lost &&
          String(input instanceof Request ? input.url : input).includes('/auth/v1/admin/users')
        ) {
          lost = true;
          throw new TypeError('fetch failed'); // Auth created the user; the answer never arrived
        }
        return response;
      },
    });
    const body = { email: email(), password: PASSWORD };
    const answer = await call(createRegisterHandler({ config, supabase: client }), request(body));
    expect(lost).toBe(true);
    expect(answer.status).toBe(201);
    expect(await usersWith(body.email)).toBe(1);
  });

  it('creates the profile itself and resolves the queued repair when the trigger failed to make it', async () => {
    const address = email();
    await db().query(
      `alter table public.user_profiles add constraint hostile_trigger check (created_via <> 'trigger' or email is distinct from '${address}') not valid`,
    );
    try {
      const { status, body } = await call<RegisterResult>(
        registerWith(ADMIN),
        request({ email: address, password: PASSWORD, full_name: 'Grace' }),
      );
      expect(status).toBe(201);
      expect(body.profile_status).toBe('created');
      expect(body.profile).toMatchObject({
        user_id: body.user.id,
        full_name: 'Grace',
        created_via: 'register',
      });
      const { rows } = await db().query(
        'select source, outcome, sqlstate from private.audit_logs where user_id = $1 order by id',
        [body.user.id],
      );
      expect(rows).toEqual([{ source: 'trigger', outcome: 'failed', sqlstate: '23514' }, {
        source: 'register',
        outcome: 'created',
        sqlstate: null,
      }]);
      expect(
        await db().one('select resolution from private.repair_queue where user_id = $1', [
          body.user.id,
        ]),
      ).toEqual({ resolution: 'register' });
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_trigger');
    }
  });

  it('reads the profile the trigger made in one round trip, ensure_user_profile, and never reads user_profiles itself', async () => {
    const config = api().config(ADMIN);
    const seen: string[] = [];
    const client = createSupabaseClient(config.supabaseUrl, config.serviceRoleKey, {
      fetch: async (input, init) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        if (
          url.pathname.startsWith('/rest/v1/') && url.pathname !== '/rest/v1/rpc/register_preflight'
        ) seen.push(`${init?.method ?? 'GET'} ${url.pathname}`);
        return await fetch(input, init);
      },
    });
    const { status, body } = await call<RegisterResult>(
      createRegisterHandler({ config, supabase: client }),
      request({ email: email(), password: PASSWORD }),
    );
    expect(seen).toEqual(['POST /rest/v1/rpc/ensure_user_profile']);
    expect(status).toBe(201);
    expect(body.profile_status).toBe('existed');
    expect(body.profile).toMatchObject({ user_id: body.user.id, created_via: 'trigger' });
    const { rows } = await db().query(
      'select source, outcome from private.audit_logs where user_id = $1 order by id',
      [body.user.id],
    );
    expect(rows).toEqual([{ source: 'trigger', outcome: 'created' }, {
      source: 'register',
      outcome: 'existed',
    }]);
  });

  it('answers 201 with the profile, not 202, when every write failed but the trigger had made it: a 202 means truly absent', async () => {
    const config = api().config({ ...ADMIN, PROFILE_RETRY_MAX_ATTEMPTS: '2' });
    const seen: string[] = [];
    let reads = 0;
    const client = createSupabaseClient(config.supabaseUrl, config.serviceRoleKey, {
      fetch: async (input, init) => {
        const url = new URL(input instanceof Request ? input.url : String(input));
        const method = init?.method ?? 'GET';
        if (
          url.pathname === '/rest/v1/user_profiles' ||
          url.pathname === '/rest/v1/rpc/ensure_user_profile'
        ) {
          seen.push(`${method} ${url.pathname}`);
          // The database answers nothing about the profile but the very last read.
          if (!(method === 'GET' && url.pathname === '/rest/v1/user_profiles' && ++reads === 1)) {
            throw new TypeError('fetch failed');
          }
        }
        return await fetch(input, init);
      },
    });
    const { status, body } = await call<RegisterResult>(
      createRegisterHandler({ config, supabase: client }),
      request({ email: email(), password: PASSWORD }),
    );
    expect(seen).toEqual([
      'POST /rest/v1/rpc/ensure_user_profile',
      'POST /rest/v1/rpc/ensure_user_profile',
      'POST /rest/v1/user_profiles',
      'GET /rest/v1/user_profiles',
    ]);
    expect(status).toBe(201);
    expect(body).toMatchObject({
      profile_status: 'existed',
      profile: { user_id: body.user.id, created_via: 'trigger' },
    });
  });

  it('answers 202 pending when the profile cannot be made now, with the user queued for repair', async () => {
    const address = email();
    await db().query(
      `alter table public.user_profiles add constraint hostile_register check (email is distinct from '${address}') not valid`,
    );
    try {
      const { status, body } = await call<RegisterResult>(
        registerWith(ADMIN),
        request({ email: address, password: PASSWORD }),
      );
      expect(status).toBe(202);
      expect(body).toEqual({
        user: { id: expect.any(String), email: address },
        profile: null,
        profile_status: 'pending',
        completion: 'repair_queued',
        message:
          'The account was created. Its profile could not be completed right now and will be finished automatically within minutes; no action is needed.',
        email_confirmation_required: false,
      });
      expect(
        (await db().query(
          'select sqlstate, resolved_at from private.repair_queue where user_id = $1',
          [body.user.id],
        )).rows,
      ).toEqual([
        { sqlstate: '23514', resolved_at: null },
      ]);
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_register');
    }
  });
});
