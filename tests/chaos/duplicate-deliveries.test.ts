// At-least-once delivery: Supabase retries Database Webhooks and Auth Hooks, and clients retry
// registrations with the same Idempotency-Key. Many concurrent copies of one delivery must make
// one user and one profile, and every copy must get a consistent answer.
//   CHAOS_DUPLICATES  copies of each delivery sent at once (default 25)
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { createEnsureProfileHandler } from '../../shared/ensure-profile-handler.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import type { EnsureProfileAnswer, ErrorBody, RegisterResult } from '../helpers/bodies.ts';
import { appClient, randomClientAddress } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { envCount, within } from './helpers.ts';

const COPIES = envCount('CHAOS_DUPLICATES', 25);

const db = useTestDatabase();
const api = useLocalApi(db);

const PASSWORD = 'correct-horse-battery';
const email = (label: string) => `${label}-${randomUUID()}@example.test`;

/** An answer; body is the parsed JSON (null when empty), typed B: what the test reads of it. */
interface Answer<B> {
  status: number;
  headers: Headers;
  body: B;
}

async function answerOf<B>(response: Response): Promise<Answer<B>> {
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? null : JSON.parse(text)) as B,
  };
}

/** `COPIES` concurrent deliveries of the same request, each answered within 20 s or the test fails. */
async function deliverConcurrently<B>(
  handler: (r: Request) => Promise<Response>,
  make: () => Request,
): Promise<Array<Answer<B>>> {
  return await within(
    20_000,
    `${COPIES} concurrent deliveries`,
    Promise.all(Array.from({ length: COPIES }, async () => answerOf<B>(await handler(make())))),
  );
}

const ensureHandler = () => createEnsureProfileHandler({ config: api().config() });

async function profileRows(userId: string): Promise<Array<Record<string, unknown>>> {
  const { rows } = await db().query<{ p: Record<string, unknown> }>(
    'select to_jsonb(p) as p from public.user_profiles p where user_id = $1',
    [userId],
  );
  return rows.map((r) => r.p);
}

async function auditOutcomes(userId: string, source: string): Promise<Record<string, number>> {
  const { rows } = await db().query<{ outcome: string; n: number }>(
    'select outcome, count(*)::int as n from private.audit_logs where user_id = $1 and source = $2 group by outcome order by outcome',
    [userId, source],
  );
  return Object.fromEntries(rows.map((r) => [r.outcome, r.n]));
}

async function existedRepeats(userId: string, source: string): Promise<number> {
  const { rows } = await db().query<{ n: number }>(
    'select coalesce(sum(repeats), 0)::int as n from private.existed_repeats where user_id = $1 and source = $2',
    [userId, source],
  );
  return rows[0]!.n;
}

/** Existed answers are counted per fixed hour: keep a test's deliveries inside one hour. */
async function clearOfHourEdge(): Promise<void> {
  const intoHour = (Date.now() / 1000) % 3600;
  if (intoHour > 3590) {
    await new Promise((resolve) => setTimeout(resolve, (3601 - intoHour) * 1000));
  }
}

/** A user created through the Auth stand-in while the trigger is off, so it has no profile. */
async function orphan(): Promise<{ id: string; email: string }> {
  const address = email('orphan');
  await db().query('update private.settings set trigger_enabled = false');
  try {
    const { data, error } = await appClient(api().stack.apiUrl, api().stack.keys.serviceRoleKey)
      .auth.admin.createUser({
        email: address,
        password: PASSWORD,
        email_confirm: true,
        user_metadata: { full_name: 'Orphan Annie' },
      });
    if (error) throw error;
    return { id: data.user.id, email: address };
  } finally {
    await db().query('update private.settings set trigger_enabled = true');
  }
}

describe('a Database Webhook delivered many times at once', () => {
  function webhook(user: { id: string; email: string }): () => Request {
    const body = JSON.stringify({
      type: 'INSERT',
      table: 'users',
      schema: 'auth',
      record: {
        id: user.id,
        email: user.email,
        aud: 'authenticated',
        role: '',
        raw_user_meta_data: { full_name: 'Orphan Annie' },
      },
      old_record: null,
    });
    return () =>
      new Request('http://functions.local/ensure-profile', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-webhook-secret': api().stack.functionSecrets.PROFILE_WEBHOOK_SECRET!,
        },
        body,
      });
  }

  it(
    'creates one profile for a user without one: one copy answers created, the others existed, all with the same profile',
    async () => {
      await clearOfHourEdge();
      const user = await orphan();
      const answers = await deliverConcurrently<EnsureProfileAnswer>(
        ensureHandler(),
        webhook(user),
      );
      const rows = await profileRows(user.id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        user_id: user.id,
        email: user.email,
        full_name: 'Orphan Annie',
        created_via: 'webhook',
      });
      expect(answers.map((a) => a.status)).toEqual(Array(COPIES).fill(200));
      expect(answers.filter((a) => a.body.profile_status === 'created')).toHaveLength(1);
      expect(answers.filter((a) => a.body.profile_status === 'existed')).toHaveLength(COPIES - 1);
      for (const answer of answers) {
        expect(answer.body).toEqual({
          user_id: user.id,
          profile: rows[0],
          profile_status: answer.body.profile_status,
        });
      }
      // The first existed answer of the hour is a row, the others are counted (not stored).
      expect(await auditOutcomes(user.id, 'webhook')).toEqual(
        COPIES > 1 ? { created: 1, existed: 1 } : { created: 1 },
      );
      expect(await existedRepeats(user.id, 'webhook')).toBe(Math.max(COPIES - 2, 0));
      expect(
        (await db().query('select 1 from private.repair_queue where user_id = $1', [user.id]))
          .rowCount,
      ).toBe(0);
    },
    30_000,
  );

  it(
    'changes nothing for a user the trigger already served, and every copy answers existed with that profile',
    async () => {
      await clearOfHourEdge();
      const address = email('served');
      const { data, error } = await appClient(api().stack.apiUrl, api().stack.keys.anonKey).auth
        .signUp({ email: address, password: PASSWORD });
      if (error) throw error;
      const user = { id: data.user!.id, email: address };
      const before = await profileRows(user.id);
      const answers = await deliverConcurrently(ensureHandler(), webhook(user));
      expect(await profileRows(user.id)).toEqual(before);
      expect(before[0]).toMatchObject({ created_via: 'trigger' });
      for (const answer of answers) {
        expect(answer).toMatchObject({
          status: 200,
          body: { user_id: user.id, profile: before[0], profile_status: 'existed' },
        });
      }
      expect(await auditOutcomes(user.id, 'webhook')).toEqual({ existed: 1 });
      expect(await existedRepeats(user.id, 'webhook')).toBe(COPIES - 1);
    },
    30_000,
  );
});

describe('an Auth Hook delivered many times at once', () => {
  function hook(userMetadata: Record<string, unknown>): { userId: string; make: () => Request } {
    const userId = randomUUID();
    const payload = JSON.stringify({
      metadata: {
        uuid: randomUUID(),
        time: new Date().toISOString(),
        name: 'before-user-created',
        ip_address: '127.0.0.1',
      },
      user: {
        id: userId,
        aud: 'authenticated',
        role: '',
        email: email('hooked'),
        phone: '',
        app_metadata: { provider: 'email', providers: ['email'] },
        user_metadata: userMetadata,
        identities: [],
        created_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
        is_anonymous: false,
      },
    });
    // One message, redelivered: the same webhook-id, timestamp and signature every time.
    const id = `msg_${randomUUID()}`;
    const at = new Date();
    const signature = new Webhook(api().stack.functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,/, ''))
      .sign(id, at, payload);
    const headers = {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signature,
    };
    return {
      userId,
      make: () =>
        new Request('http://functions.local/ensure-profile', {
          method: 'POST',
          headers,
          body: payload,
        }),
    };
  }

  it('allows every copy with 204 and creates no user, profile or audit row', async () => {
    const { userId, make } = hook({
      full_name: 'Mary Jackson',
      username: `mary_${randomUUID().slice(0, 8)}`,
    });
    const answers = await deliverConcurrently(ensureHandler(), make);
    for (const answer of answers) {
      expect({ status: answer.status, body: answer.body }).toEqual({ status: 204, body: null });
    }
    expect((await db().query('select 1 from auth.users where id = $1', [userId])).rowCount).toBe(0);
    expect(await profileRows(userId)).toEqual([]);
    expect(
      (await db().query('select 1 from private.audit_logs where user_id = $1', [userId])).rowCount,
    ).toBe(0);
  }, 30_000);

  it(
    'refuses every copy of a signup whose username is taken with the same 409 for Auth',
    async () => {
      const username = `taken_${randomUUID().slice(0, 8)}`;
      const { error } = await appClient(api().stack.apiUrl, api().stack.keys.anonKey).auth.signUp({
        email: email('owner'),
        password: PASSWORD,
        options: { data: { username } },
      });
      if (error) throw error;
      const { userId, make } = hook({ username: username.toUpperCase() });
      const answers = await deliverConcurrently(ensureHandler(), make);
      for (const answer of answers) {
        expect({ status: answer.status, body: answer.body }).toEqual({
          status: 200,
          body: { error: { http_code: 409, message: 'username is already taken' } },
        });
      }
      expect((await db().query('select 1 from auth.users where id = $1', [userId])).rowCount).toBe(
        0,
      );
      // Each copy is a refusal of its own: one refused row per copy, with that copy's request id.
      const { rows } = await db().query<{ request_id: string }>(
        `select request_id from private.audit_logs where user_id = $1 and source = 'hook' and outcome = 'refused' order by request_id`,
        [userId],
      );
      expect(rows.map((r) => r.request_id)).toEqual(
        answers.map((a) => a.headers.get('x-request-id')!).sort(),
      );
    },
    30_000,
  );
});

describe('a registration delivered many times at once', () => {
  // Users confirmed at once, so answers carry the profile and a taken address is told 409.
  const registerHandler = () =>
    createRegisterHandler({
      config: api().config({ REGISTER_MODE: 'admin', REGISTER_ADMIN_EMAIL_CONFIRM: 'true' }),
    });
  const request = (body: unknown, headers: Record<string, string>) => () =>
    new Request('http://functions.local/register', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': randomClientAddress(),
        ...headers,
      },
      body: JSON.stringify(body),
    });
  const usersWith = async (address: string) =>
    (await db().one<{ n: number }>(
      'select count(*)::int as n from auth.users where lower(email) = lower($1)',
      [address],
    )).n;

  it(
    'with one Idempotency-Key makes one user and profile; copies answer the same 201 or "in progress", and later copies replay it',
    async () => {
      const body = { email: email('idem'), password: PASSWORD, full_name: 'Grace Hopper' };
      const make = request(body, { 'idempotency-key': randomUUID() });
      const answers = await deliverConcurrently<RegisterResult | ErrorBody>(
        registerHandler(),
        make,
      );

      const originals = answers.filter((a) =>
        a.status === 201 && a.headers.get('idempotency-replayed') === null
      );
      expect(originals).toHaveLength(1);
      const original = originals[0]!;
      expect(original.body).toMatchObject({
        user: { email: body.email },
        profile_status: 'existed',
        profile: { full_name: 'Grace Hopper' },
      });
      for (const answer of answers) {
        if (answer === original) continue;
        if (answer.status === 409) {
          expect(answer.body).toEqual({
            error: {
              code: 'idempotency_in_progress',
              message: 'A request with this Idempotency-Key is still running; retry shortly',
            },
          });
          expect(answer.headers.get('retry-after')).toBe('1');
        } else {
          expect({
            status: answer.status,
            replayed: answer.headers.get('idempotency-replayed'),
            body: answer.body,
          }).toEqual({
            status: 201,
            replayed: 'true',
            body: original.body,
          });
        }
      }

      // Once it has finished, every copy gets the stored answer.
      const replays = await deliverConcurrently<RegisterResult | ErrorBody>(
        registerHandler(),
        make,
      );
      for (const replay of replays) {
        expect({
          status: replay.status,
          replayed: replay.headers.get('idempotency-replayed'),
          body: replay.body,
        }).toEqual({
          status: 201,
          replayed: 'true',
          body: original.body,
        });
      }
      expect(await usersWith(body.email)).toBe(1);
      expect(await profileRows((original.body as RegisterResult).user.id)).toHaveLength(1);
    },
    40_000,
  );

  it(
    'without an Idempotency-Key still makes one user: the copy that made it answers 201, every other 409 email_taken',
    async () => {
      const body = { email: email('nokey'), password: PASSWORD };
      const answers = await deliverConcurrently<RegisterResult | ErrorBody>(
        registerHandler(),
        request(body, {}),
      );
      const created = answers.filter((a) => a.status === 201);
      // Copies without a key are separate attempts: only the one whose attempt made the user may see it.
      expect(created).toHaveLength(1);
      const userId = (created[0]!.body as RegisterResult).user.id;
      for (const answer of answers) {
        if (answer.status === 201) {
          expect(answer.body).toMatchObject({
            user: { id: userId, email: body.email },
            profile: { user_id: userId },
          });
        } else {expect({ status: answer.status, code: (answer.body as ErrorBody).error.code })
            .toEqual({ status: 409, code: 'email_taken' });}
      }
      expect(await usersWith(body.email)).toBe(1);
      expect(await profileRows(userId)).toHaveLength(1);
    },
    40_000,
  );

  it(
    "gives everyone but the winner of a race for one email 409 email_taken, never the winner's account",
    async () => {
      // Different people (passwords, names) registering the same address at the same moment.
      const address = email('contested');
      const handler = registerHandler();
      const answers = await within(
        20_000,
        'contested registrations',
        Promise.all(
          Array.from({ length: COPIES }, async (_, i) =>
            answerOf<RegisterResult | ErrorBody>(
              await handler(
                request(
                  { email: address, password: `${PASSWORD}-${i}`, full_name: `Person ${i}` },
                  {},
                )(),
              ),
            )),
        ),
      );
      const created = answers.filter((a) => a.status === 201);
      expect(created).toHaveLength(1);
      expect(
        answers.filter((a) => a.status !== 201).map((a) => ({
          status: a.status,
          code: (a.body as ErrorBody).error.code,
        })),
      ).toEqual(
        Array(COPIES - 1).fill({ status: 409, code: 'email_taken' }),
      );
      const winner = created[0]!.body as RegisterResult;
      expect((await profileRows(winner.user.id))[0]).toMatchObject({
        full_name: winner.profile!.full_name,
      });
      expect(await usersWith(address)).toBe(1);
    },
    40_000,
  );
});
