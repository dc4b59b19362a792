// One audit row per attempt, correlated: the request id in each row the functions leave is the
// x-request-id of the answer and of the request's log line. register leaves exactly one row per
// request that reaches the profile stage; ensure-profile one per attempt that creates, fails,
// falls back or is refused (repeated existed answers counted per hour); the before-user-created
// hook one per refused signup; rejected input none.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { createEnsureProfileHandler } from '../../shared/ensure-profile-handler.ts';
import { createLogger, type Logger } from '../../shared/logger.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import type { EnsureProfileAnswer, HookRefusal, RegisterResult } from '../helpers/bodies.ts';
import { appClient, randomClientAddress } from '../helpers/clients.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

const PASSWORD = 'correct-horse-battery';
const ADMIN = { REGISTER_MODE: 'admin', REGISTER_ADMIN_EMAIL_CONFIRM: 'true' } as const;
const JSON_TYPE = { 'content-type': 'application/json' };
const ENSURE_SIGNATURE = '(uuid, text, text, integer, text, text, text, jsonb)';

/** Counted existed answers are per fixed hour: keep a test's calls inside one hour. */
async function clearOfHourEdge(): Promise<void> {
  const intoHour = (Date.now() / 1000) % 3600;
  if (intoHour > 3590) await sleep((3601 - intoHour) * 1000);
}

/** A logger whose JSON lines land in `lines`. */
function capture(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(c, _e, d) {
        raw.push(String(c));
        d();
      },
    }),
  });
  return { log, lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/**
 * An answer; body is the parsed JSON, null when empty. B is what the tests read of it: they read
 * members only of answers whose kind they know, and compare the others whole.
 */
interface Answer<B> {
  status: number;
  requestId: string;
  body: B | null;
}

async function answerOf<B>(response: Response): Promise<Answer<B>> {
  const text = await response.text();
  return {
    status: response.status,
    requestId: response.headers.get('x-request-id')!,
    body: (text === '' ? null : JSON.parse(text)) as B | null,
  };
}

function registration(body: unknown, headers: Record<string, string> = {}): Request {
  return new Request('http://functions.local/register', {
    method: 'POST',
    headers: { ...JSON_TYPE, 'x-forwarded-for': randomClientAddress(), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const register = async (
  body: unknown,
  options: { overrides?: Record<string, string>; log?: Logger; headers?: Record<string, string> } =
    {},
) =>
  await answerOf<RegisterResult>(
    await createRegisterHandler({
      config: api().config({ ...ADMIN, ...options.overrides }),
      ...(options.log ? { log: options.log } : {}),
    })(
      registration(body, options.headers),
    ),
  );

const ensureRequest = (headers: Record<string, string>, body?: string) =>
  new Request('http://functions.local/ensure-profile', {
    method: 'POST',
    headers,
    ...(body !== undefined ? { body } : {}),
  });

const ensure = async <B = EnsureProfileAnswer>(
  request: Request,
  options: { log?: Logger; overrides?: Record<string, string> } = {},
) =>
  await answerOf<B>(
    await createEnsureProfileHandler({
      config: api().config(options.overrides),
      ...(options.log ? { log: options.log } : {}),
    })(request),
  );

const asService = (userId: string) =>
  ensureRequest(
    { authorization: `Bearer ${api().stack.keys.secretKey}`, ...JSON_TYPE },
    JSON.stringify({ user_id: userId }),
  );

const email = () => `audit-${randomUUID()}@example.test`;

interface AuditRow {
  source: string;
  outcome: string;
  request_id: string | null;
  details: Record<string, unknown>;
  timed: boolean;
}

/** The rows a user's attempts left, the trigger's included, oldest first. */
async function auditRows(userId: string): Promise<AuditRow[]> {
  const { rows } = await db().query<AuditRow>(
    `select source, outcome, request_id, details, duration_ms is not null and duration_ms >= 0 as timed
       from private.audit_logs where user_id = $1 order by id`,
    [userId],
  );
  return rows;
}

async function rowsWithRequestId(
  requestId: string,
): Promise<Array<{ source: string; outcome: string }>> {
  const { rows } = await db().query<{ source: string; outcome: string }>(
    'select source, outcome from private.audit_logs where request_id = $1 order by id',
    [requestId],
  );
  return rows;
}

const auditCount = async () =>
  (await db().one<{ n: number }>('select count(*)::int as n from private.audit_logs')).n;

async function withoutEnsureFunction<T>(work: () => Promise<T>): Promise<T> {
  await db().query(
    `alter function public.ensure_user_profile${ENSURE_SIGNATURE} rename to ensure_user_profile_gone`,
  );
  try {
    return await work();
  } finally {
    await db().query(
      `alter function public.ensure_user_profile_gone${ENSURE_SIGNATURE} rename to ensure_user_profile`,
    );
  }
}

describe('register leaves exactly one audit row per request that reaches the profile stage', () => {
  it("with the trigger on: one existed row carrying the x-request-id of the answer and of the log line, beside the trigger's created row", async () => {
    const { log, lines } = capture();
    const answer = await register({ email: email(), password: PASSWORD, full_name: 'Ada' }, {
      log,
    });
    expect(answer.status).toBe(201);
    const userId = answer.body!.user.id as string;
    expect(await auditRows(userId)).toEqual([
      { source: 'trigger', outcome: 'created', request_id: null, details: {}, timed: true },
      {
        source: 'register',
        outcome: 'existed',
        request_id: answer.requestId,
        details: {},
        timed: true,
      },
    ]);
    expect(lines()).toEqual([
      expect.objectContaining({
        msg: 'request',
        request_id: answer.requestId,
        status: 201,
        user_id: userId,
        profile_status: 'existed',
      }),
    ]);
  });

  it('with the trigger off: one created row carrying the request id', async () => {
    const answer = await withTriggerOff(
      db(),
      () => register({ email: email(), password: PASSWORD }),
    );
    expect(answer.status).toBe(201);
    expect(answer.body!.profile_status).toBe('created');
    expect(await auditRows(answer.body!.user.id)).toEqual([
      {
        source: 'trigger',
        outcome: 'skipped',
        request_id: null,
        details: { reason: 'trigger_disabled' },
        timed: true,
      },
      {
        source: 'register',
        outcome: 'created',
        request_id: answer.requestId,
        details: {},
        timed: true,
      },
    ]);
  });

  it('uses the x-request-id the caller sent, and gives each of five requests its own row', async () => {
    const sent = Array.from({ length: 5 }, () => `client-${randomUUID()}`);
    const answers = await Promise.all(
      sent.map((id) =>
        register({ email: email(), password: PASSWORD }, { headers: { 'x-request-id': id } })
      ),
    );
    expect(answers.map((a) => a.requestId)).toEqual(sent);
    for (const answer of answers) {
      expect(await rowsWithRequestId(answer.requestId)).toEqual([{
        source: 'register',
        outcome: 'existed',
      }]);
    }
  });

  it('leaves its row when the answer hides the account until the email is confirmed', async () => {
    const address = email();
    const answer = await register({ email: address, password: PASSWORD }, {
      overrides: { REGISTER_ADMIN_EMAIL_CONFIRM: 'false' },
    });
    expect(answer.body).toMatchObject({ profile: null, profile_status: 'awaiting_confirmation' });
    const { id } = await db().one<{ id: string }>('select id from auth.users where email = $1', [
      address,
    ]);
    expect((await auditRows(id)).filter((r) => r.source === 'register')).toEqual([
      {
        source: 'register',
        outcome: 'existed',
        request_id: answer.requestId,
        details: {},
        timed: true,
      },
    ]);
  });

  it('writes no second row for an Idempotency-Key replay, which never reaches the profile stage', async () => {
    const body = { email: email(), password: PASSWORD };
    const key = randomUUID();
    const first = await register(body, { headers: { 'idempotency-key': key } });
    const replay = await register(body, { headers: { 'idempotency-key': key } });
    expect([first.status, replay.status]).toEqual([201, 201]);
    expect(await rowsWithRequestId(first.requestId)).toEqual([{
      source: 'register',
      outcome: 'existed',
    }]);
    expect(await rowsWithRequestId(replay.requestId)).toEqual([]);
  });

  it("leaves the direct-insert fallback's row, with the request id, when ensure_user_profile is missing", async () => {
    const [withTrigger, withoutTrigger] = await withoutEnsureFunction(async () => [
      await register({ email: email(), password: PASSWORD }),
      await withTriggerOff(db(), () => register({ email: email(), password: PASSWORD })),
    ]);
    expect([withTrigger.status, withoutTrigger.status]).toEqual([201, 201]);
    expect([withTrigger.body!.profile_status, withoutTrigger.body!.profile_status]).toEqual([
      'existed',
      'created',
    ]);
    expect((await auditRows(withTrigger.body!.user.id)).filter((r) => r.source === 'register'))
      .toEqual([
        {
          source: 'register',
          outcome: 'existed',
          request_id: withTrigger.requestId,
          details: { via: 'direct_insert' },
          timed: true,
        },
      ]);
    expect((await auditRows(withoutTrigger.body!.user.id)).filter((r) => r.source === 'register'))
      .toEqual([
        {
          source: 'register',
          outcome: 'created',
          request_id: withoutTrigger.requestId,
          details: { via: 'direct_insert' },
          timed: true,
        },
      ]);
  });

  it('leaves one failed row with the request id when the profile cannot be made, and the user queued', async () => {
    const address = email();
    await db().query(
      `alter table public.user_profiles add constraint hostile_audit check (email is distinct from '${address}') not valid`,
    );
    let answer: Answer<RegisterResult>;
    try {
      answer = await register({ email: address, password: PASSWORD });
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_audit');
    }
    expect(answer.status).toBe(202);
    const rows = await auditRows(answer.body!.user.id);
    expect(rows.map(({ source, outcome, request_id }) => ({ source, outcome, request_id })))
      .toEqual([
        { source: 'trigger', outcome: 'failed', request_id: null },
        { source: 'register', outcome: 'failed', request_id: answer.requestId },
      ]);
  });

  it.each<[string, unknown, number]>([
    ['an invalid email', { email: 'not-an-email', password: PASSWORD }, 400],
    ['an unknown field', { email: 'x@example.test', password: PASSWORD, role: 'admin' }, 400],
    ['malformed JSON', '{"email": ', 400],
    ['a short password', { email: 'x@example.test', password: 'short' }, 422],
  ])('writes nothing for %s (%i)', async (_label, body, status) => {
    const before = await auditCount();
    const answer = await register(body);
    expect(answer.status).toBe(status);
    expect(await rowsWithRequestId(answer.requestId)).toEqual([]);
    expect(await auditCount()).toBe(before);
  });
});

describe('ensure-profile leaves one correlated row per attempt that creates, fails, falls back or is refused', () => {
  const userWithoutProfile = () => withTriggerOff(db(), () => signUpAsSupabaseAuth(db()));

  it("records the service role's created attempt with the x-request-id of its answer and log line, and only counts its repeated existed answers", async () => {
    await clearOfHourEdge();
    const id = await userWithoutProfile();
    const { log, lines } = capture();
    const created = await ensure(asService(id), { log });
    const existed = [];
    for (let i = 0; i < 3; i++) existed.push(await ensure(asService(id)));
    expect(created.body!.profile_status).toBe('created');
    expect(existed.map((a) => a.body!.profile_status)).toEqual(['existed', 'existed', 'existed']);
    expect((await auditRows(id)).filter((r) => r.source === 'ensure')).toEqual([
      {
        source: 'ensure',
        outcome: 'created',
        request_id: created.requestId,
        details: {},
        timed: true,
      },
      {
        source: 'ensure',
        outcome: 'existed',
        request_id: existed[0]!.requestId,
        details: {},
        timed: true,
      },
    ]);
    expect(
      await db().one(
        `select repeats from private.existed_repeats where user_id = $1 and source = 'ensure'`,
        [id],
      ),
    ).toEqual({ repeats: 2 });
    expect(lines()).toEqual([
      expect.objectContaining({
        msg: 'request',
        request_id: created.requestId,
        user_id: id,
        profile_status: 'created',
      }),
    ]);
  });

  it('gives ten concurrent calls of a signed-in user without a profile one created row and one existed row, counting the other eight answers', async () => {
    await clearOfHourEdge();
    const address = email();
    const admin = appClient(api().stack.apiUrl, api().stack.keys.serviceRoleKey);
    const id = await withTriggerOff(db(), async () => {
      const { data, error } = await admin.auth.admin.createUser({
        email: address,
        password: PASSWORD,
        email_confirm: true,
      });
      if (error) throw error;
      return data.user.id;
    });
    const { data, error } = await appClient(api().stack.apiUrl, api().stack.keys.anonKey).auth
      .signInWithPassword({ email: address, password: PASSWORD });
    if (error) throw error;
    const answers = await Promise.all(
      Array.from(
        { length: 10 },
        () => ensure(ensureRequest({ authorization: `Bearer ${data.session.access_token}` })),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(answers.map((a) => a.body!.profile_status).sort()).toEqual([
      'created',
      ...Array(9).fill('existed'),
    ]);
    const rows = (await auditRows(id)).filter((r) => r.source === 'ensure');
    expect(rows.map((r) => r.outcome)).toEqual(['created', 'existed']);
    const creator = answers.find((a) => a.body!.profile_status === 'created')!;
    expect(rows[0]!.request_id).toBe(creator.requestId);
    expect(answers.map((a) => a.requestId)).toContain(rows[1]!.request_id);
    expect(
      await db().one(
        `select repeats from private.existed_repeats where user_id = $1 and source = 'ensure'`,
        [id],
      ),
    ).toEqual({ repeats: 8 });
  });

  it('records the direct-insert fallback with the request id when ensure_user_profile is missing', async () => {
    const id = await userWithoutProfile();
    const answer = await withoutEnsureFunction(() => ensure(asService(id)));
    expect(answer.body!.profile_status).toBe('created');
    expect((await auditRows(id)).filter((r) => r.source === 'ensure')).toEqual([
      {
        source: 'ensure',
        outcome: 'created',
        request_id: answer.requestId,
        details: { via: 'direct_insert' },
        timed: true,
      },
    ]);
  });

  it('records the failed attempt with the request id when the profile is refused by the database', async () => {
    const id = await userWithoutProfile();
    await db().query(
      `alter table public.user_profiles add constraint hostile_ensure_audit check (user_id <> '${id}') not valid`,
    );
    let answer: Answer<EnsureProfileAnswer>;
    try {
      answer = await ensure(asService(id));
    } finally {
      await db().query('alter table public.user_profiles drop constraint hostile_ensure_audit');
    }
    expect(answer.status).toBe(202);
    const rows = (await auditRows(id)).filter((r) => r.source === 'ensure');
    expect(rows.map(({ outcome, request_id }) => ({ outcome, request_id }))).toEqual([{
      outcome: 'failed',
      request_id: answer.requestId,
    }]);
  });

  it('writes nothing for a body it rejects', async () => {
    const before = await auditCount();
    const answer = await ensure(
      ensureRequest(
        { authorization: `Bearer ${api().stack.keys.secretKey}`, ...JSON_TYPE },
        JSON.stringify({ user_id: 'nope' }),
      ),
    );
    expect(answer.status).toBe(400);
    expect(await auditCount()).toBe(before);
  });
});

describe('the before-user-created hook leaves one refused row per refused signup', () => {
  function hookCall(userMetadata: Record<string, unknown>, userId: string = randomUUID()): Request {
    const now = new Date();
    const body = JSON.stringify({
      metadata: {
        uuid: randomUUID(),
        time: now.toISOString(),
        name: 'before-user-created',
        ip_address: '127.0.0.1',
      },
      user: {
        id: userId,
        aud: 'authenticated',
        role: '',
        email: 'pending@example.test',
        app_metadata: { provider: 'email', providers: ['email'] },
        user_metadata: userMetadata,
        identities: [],
        created_at: now.toISOString(),
        updated_at: now.toISOString(),
        is_anonymous: false,
      },
    });
    const id = `msg_${randomUUID()}`;
    const secret = api().stack.functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,/, '');
    const signature = new Webhook(secret).sign(id, now, body);
    return ensureRequest(
      {
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signature,
        ...JSON_TYPE,
      },
      body,
    );
  }

  const refusedRows = async (userId: string) =>
    (
      await db().query(
        `select operation, source, outcome, request_id, details, duration_ms >= 0 as timed from private.audit_logs where user_id = $1 order by id`,
        [userId],
      )
    ).rows;

  it.each<[string, Record<string, unknown>, number, string]>([
    ['an invalid username', { username: '-x' }, 400, 'username_invalid'],
    ['a 201-character full_name', { full_name: 'n'.repeat(201) }, 400, 'full_name_too_long'],
    ['a non-http avatar_url', { avatar_url: 'javascript:alert(1)' }, 400, 'avatar_url_invalid'],
  ])(
    'records refusing %s with the pending user id, the reason, the status, the request id and the duration',
    async (_label, metadata, httpCode, reason) => {
      const pending = randomUUID();
      const { log, lines } = capture();
      const answer = await ensure<HookRefusal>(hookCall(metadata, pending), { log });
      expect(answer).toMatchObject({ status: 200, body: { error: { http_code: httpCode } } });
      expect(await refusedRows(pending)).toEqual([
        {
          operation: 'before_user_created',
          source: 'hook',
          outcome: 'refused',
          request_id: answer.requestId,
          details: { reason, http_code: httpCode },
          timed: true,
        },
      ]);
      expect(lines()).toEqual([
        expect.objectContaining({
          msg: 'request',
          request_id: answer.requestId,
          hook_http_code: httpCode,
        }),
      ]);
    },
  );

  it('records refusing a taken username with http_code 409', async () => {
    await signUpAsSupabaseAuth(db(), { userMetadata: { username: 'AuditedName' } });
    const pending = randomUUID();
    const answer = await ensure<HookRefusal>(hookCall({ username: 'auditedname' }, pending));
    expect(answer.body).toEqual({
      error: { http_code: 409, message: 'username is already taken' },
    });
    expect(await refusedRows(pending)).toEqual([
      {
        operation: 'before_user_created',
        source: 'hook',
        outcome: 'refused',
        request_id: answer.requestId,
        details: { reason: 'username_taken', http_code: 409 },
        timed: true,
      },
    ]);
  });

  it('records a refusal whose pending user has no usable id with a null user id', async () => {
    const answer = await ensure<HookRefusal>(hookCall({ username: '-y' }, 'not-a-uuid'));
    expect(answer.status).toBe(200);
    const { rows } = await db().query(
      'select user_id, source, outcome from private.audit_logs where request_id = $1',
      [answer.requestId],
    );
    expect(rows).toEqual([{ user_id: null, source: 'hook', outcome: 'refused' }]);
  });

  it('still refuses the signup, as Auth understands, when the refusal cannot be recorded', async () => {
    await db().query(
      'revoke execute on function public.record_signup_refusal(uuid, text, integer, text, numeric) from service_role',
    );
    let answer: Answer<HookRefusal>;
    try {
      answer = await ensure<HookRefusal>(hookCall({ username: '-z' }));
    } finally {
      await db().query(
        'grant execute on function public.record_signup_refusal(uuid, text, integer, text, numeric) to service_role',
      );
    }
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ error: { http_code: 400 } });
    expect(await rowsWithRequestId(answer.requestId)).toEqual([]);
  });

  it('writes nothing for a signup it allows, nor for a payload that is not a before-user-created call', async () => {
    const before = await auditCount();
    expect((await ensure(hookCall({ username: 'fine_name', full_name: 'Fine' }))).status).toBe(204);
    const secret = api().stack.functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,/, '');
    const body = JSON.stringify({
      metadata: { uuid: randomUUID(), time: new Date().toISOString(), name: 'send-email' },
      user: {},
    });
    const id = `msg_${randomUUID()}`;
    const now = new Date();
    const invalid = await ensure(
      ensureRequest(
        {
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': new Webhook(secret).sign(id, now, body),
          ...JSON_TYPE,
        },
        body,
      ),
    );
    expect(invalid.status).toBe(400);
    expect(await auditCount()).toBe(before);
  });
});
