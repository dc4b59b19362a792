// The two calls Supabase makes to ensure-profile on its own, through the gateway to the real Deno
// worker: Database Webhooks (shared secret header) and the before-user-created Auth Hook
// (Standard Webhooks: HMAC over id.timestamp.body, five minutes of tolerance).
//
// Replays are NOT refused, on purpose: Supabase Auth retries a hook with the same webhook-id after
// its 5 s timeout (3 attempts), and pg_net may deliver a Database Webhook twice. So a replayed hook
// gets the same answer and writes nothing (its verdict has no side effects), and a replayed
// Database Webhook is idempotent (one profile). Everything forged — a bad signature or secret, a
// stale or future timestamp, a tampered body or id — is refused with 401 and writes nothing.
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EnsureProfileAnswer, HookRefusal, Reply } from '../helpers/bodies.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { type Answer, fingerprint, http, JSON_TYPE, signedInUser } from './helpers.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const api = useLocalApi(db, { functions: true });

const ENSURE = '/functions/v1/ensure-profile';

// ============================================================================
// Database Webhooks
// ============================================================================
const webhookSecret = () => api().stack.functionSecrets.PROFILE_WEBHOOK_SECRET!;

/** An auth user with no profile, as if the trigger had missed it: what a webhook delivery repairs. */
const userWithoutProfile = () => withTriggerOff(db(), () => signUpAsSupabaseAuth(db()));

function insertEvent(userId: string): string {
  return JSON.stringify({
    type: 'INSERT',
    table: 'users',
    schema: 'auth',
    record: { id: userId, email: `user-${userId}@example.test`, raw_user_meta_data: {} },
    old_record: null,
  });
}

async function deliverWebhook(
  body: string,
  secret: string | null = webhookSecret(),
): Promise<Answer<Reply<EnsureProfileAnswer>>> {
  return await http<Reply<EnsureProfileAnswer>>(api(), ENSURE, {
    method: 'POST',
    headers: { ...JSON_TYPE, ...(secret === null ? {} : { 'x-webhook-secret': secret }) },
    body,
  });
}

async function profilesOf(userId: string): Promise<Array<{ created_via: string }>> {
  return (await db().query<{ created_via: string }>(
    'select created_via from public.user_profiles where user_id = $1',
    [userId],
  )).rows;
}

describe('Database Webhooks to ensure-profile', () => {
  it('a delivery with the right secret creates the profile (200 created), and its replay answers 200 existed: one profile', async () => {
    const userId = await userWithoutProfile();
    const body = insertEvent(userId);
    const first = await deliverWebhook(body);
    expect({ status: first.status, profile_status: first.body?.profile_status }).toEqual({
      status: 200,
      profile_status: 'created',
    });
    const replay = await deliverWebhook(body);
    expect({ status: replay.status, profile_status: replay.body?.profile_status }).toEqual({
      status: 200,
      profile_status: 'existed',
    });
    expect(replay.body!.profile).toEqual(first.body!.profile);
    expect(await profilesOf(userId)).toEqual([{ created_via: 'webhook' }]);
  });

  it('five concurrent deliveries of the same event make exactly one profile, and each answers 200', async () => {
    const userId = await userWithoutProfile();
    const body = insertEvent(userId);
    const answers = await Promise.all(Array.from({ length: 5 }, () => deliverWebhook(body)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.body!.profile_status).sort()).toEqual([
      'created',
      'existed',
      'existed',
      'existed',
      'existed',
    ]);
    expect(await profilesOf(userId)).toEqual([{ created_via: 'webhook' }]);
  });

  // Without the header the request is an ordinary caller with no bearer: 401 unauthorized.
  const REFUSED: Array<[string, () => string | null]> = [
    ['no x-webhook-secret header', () => null],
    ['an empty secret', () => ''],
    ['a wrong secret', () => 'wrong-webhook-secret-of-enough-length'],
    [
      'the secret with one character changed',
      () => `${webhookSecret().slice(0, -1)}${webhookSecret().endsWith('x') ? 'y' : 'x'}`,
    ],
    ['the secret with a suffix', () => `${webhookSecret()}-and-more`],
    ['a prefix of the secret', () => webhookSecret().slice(0, 16)],
    ['the secret upper-cased', () => webhookSecret().toUpperCase()],
    ['the hook secret instead', () => api().stack.functionSecrets.AUTH_HOOK_SECRET!],
    ['the secret key instead', () => api().stack.keys.secretKey],
  ];

  for (const [what, secret] of REFUSED) {
    const code = secret === REFUSED[0]![1] ? 'unauthorized' : 'invalid_webhook_secret';
    it(`a delivery with ${what} is refused with 401 ${code} and creates no profile`, async () => {
      const userId = await userWithoutProfile();
      const before = await fingerprint(db());
      const answer = await deliverWebhook(insertEvent(userId), secret());
      expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({
        status: 401,
        code,
      });
      expect(await profilesOf(userId)).toEqual([]);
      expect(await fingerprint(db())).toEqual(before);
    });
  }

  it('a delivery with the right secret but an event that is not an INSERT into auth.users is refused with 400 and writes nothing', async () => {
    const userId = await userWithoutProfile();
    const before = await fingerprint(db());
    const event = JSON.parse(insertEvent(userId));
    for (
      const tampered of [{ ...event, type: 'UPDATE' }, { ...event, table: 'identities' }, {
        ...event,
        schema: 'public',
      }, { ...event, old_record: {} }]
    ) {
      const answer = await deliverWebhook(JSON.stringify(tampered));
      expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({
        status: 400,
        code: 'validation_failed',
      });
    }
    expect(await profilesOf(userId)).toEqual([]);
    expect(await fingerprint(db())).toEqual(before);
  });
});

// ============================================================================
// The before-user-created Auth Hook
// ============================================================================
const hookSecret = () => api().stack.functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,/, '');
const ATTACKER_HOOK_SECRET = `whsec_${
  Buffer.from('attacker-hook-secret-not-the-projects').toString('base64')
}`;

function hookPayload(metadata: Record<string, unknown>): string {
  return JSON.stringify({
    metadata: {
      uuid: randomUUID(),
      time: new Date().toISOString(),
      name: 'before-user-created',
      ip_address: '127.0.0.1',
    },
    user: {
      id: randomUUID(),
      aud: 'authenticated',
      role: '',
      email: `hook-${randomUUID().slice(0, 8)}@example.test`,
      phone: '',
      app_metadata: { provider: 'email', providers: ['email'] },
      user_metadata: metadata,
      identities: [],
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
      is_anonymous: false,
    },
  });
}

interface Delivery {
  id: string;
  timestamp: Date;
  body: string;
  signature: string;
}

function signed(
  body: string,
  options: { id?: string; timestamp?: Date; secret?: string } = {},
): Delivery {
  const id = options.id ?? `msg_${randomUUID()}`;
  const timestamp = options.timestamp ?? new Date();
  const signature = new Webhook(options.secret ?? hookSecret()).sign(id, timestamp, body);
  return { id, timestamp, body, signature };
}

async function deliverHook(
  delivery: Delivery,
  overrides: Partial<
    Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string | null>
  > = {},
): Promise<Answer<Reply<HookRefusal>>> {
  const headers: Record<string, string> = { ...JSON_TYPE };
  const values = {
    'webhook-id': delivery.id,
    'webhook-timestamp': String(Math.floor(delivery.timestamp.getTime() / 1000)),
    'webhook-signature': delivery.signature,
    ...overrides,
  };
  for (const [name, value] of Object.entries(values)) if (value !== null) headers[name] = value;
  return await http<Reply<HookRefusal>>(api(), ENSURE, {
    method: 'POST',
    headers,
    body: delivery.body,
  });
}

const MINUTE = 60_000;
const INVALID_SIGNATURE = { status: 401, code: 'invalid_signature' };

describe('the before-user-created Auth Hook to ensure-profile', () => {
  let takenUsername: string;
  beforeAll(async () => {
    takenUsername = `taken_${randomUUID().slice(0, 8)}`;
    const holder = await signedInUser(db(), api(), { prefix: 'holder' });
    await db().query('update public.user_profiles set username = $2 where user_id = $1', [
      holder.id,
      takenUsername,
    ]);
  });

  it('a correctly signed delivery is allowed with 204, and its replay (same id, timestamp, signature, body) gets the same 204 and writes nothing', async () => {
    const before = await fingerprint(db());
    const delivery = signed(
      hookPayload({ full_name: 'Hook Person', username: `free_${randomUUID().slice(0, 8)}` }),
    );
    const first = await deliverHook(delivery);
    const replay = await deliverHook(delivery);
    const third = await deliverHook(delivery);
    expect([first, replay, third].map((a) => ({ status: a.status, body: a.body }))).toEqual([
      { status: 204, body: null },
      { status: 204, body: null },
      { status: 204, body: null },
    ]);
    expect(await fingerprint(db())).toEqual(before);
  });

  it('a correctly signed delivery for a taken username gets a 409 verdict, and its replay the identical verdict, each leaving one refused audit row and nothing else', async () => {
    const before = await fingerprint(db());
    const delivery = signed(hookPayload({ username: takenUsername.toUpperCase() }));
    const first = await deliverHook(delivery);
    const replay = await deliverHook(delivery);
    expect({ status: first.status, body: first.body }).toEqual({
      status: 200,
      body: { error: { http_code: 409, message: 'username is already taken' } },
    });
    expect({ status: replay.status, body: replay.body }).toEqual({
      status: first.status,
      body: first.body,
    });
    const counts = before.counts as Record<string, number>;
    expect(await fingerprint(db())).toEqual({
      ...before,
      counts: { ...counts, 'private.audit_logs': counts['private.audit_logs']! + 2 },
    });
    expect(
      (await db().query(`select source, outcome from private.audit_logs order by id desc limit 2`))
        .rows,
    )
      .toEqual([{ source: 'hook', outcome: 'refused' }, { source: 'hook', outcome: 'refused' }]);
  });

  it('a delivery signed four minutes ago (inside the five-minute tolerance) is still allowed with 204', async () => {
    const answer = await deliverHook(
      signed(hookPayload({}), { timestamp: new Date(Date.now() - 4 * MINUTE) }),
    );
    expect(answer.status).toBe(204);
  });

  const FORGED: Array<
    [string, () => { delivery: Delivery; overrides?: Parameters<typeof deliverHook>[1] }]
  > = [
    [
      'signed with another secret',
      () => ({ delivery: signed(hookPayload({}), { secret: ATTACKER_HOOK_SECRET }) }),
    ],
    ['with a signature of the right shape but random bytes', () => {
      const delivery = signed(hookPayload({}));
      return {
        delivery: { ...delivery, signature: `v1,${Buffer.from(randomUUID()).toString('base64')}` },
      };
    }],
    [
      'with no webhook-signature header',
      () => ({ delivery: signed(hookPayload({})), overrides: { 'webhook-signature': null } }),
    ],
    [
      'with an empty webhook-signature header',
      () => ({ delivery: signed(hookPayload({})), overrides: { 'webhook-signature': '' } }),
    ],
    [
      'with no webhook-timestamp header',
      () => ({ delivery: signed(hookPayload({})), overrides: { 'webhook-timestamp': null } }),
    ],
    [
      'with a non-numeric timestamp',
      () => ({
        delivery: signed(hookPayload({})),
        overrides: { 'webhook-timestamp': 'yesterday' },
      }),
    ],
    [
      'signed six minutes ago (stale)',
      () => ({
        delivery: signed(hookPayload({}), { timestamp: new Date(Date.now() - 6 * MINUTE) }),
      }),
    ],
    [
      'signed a day ago (stale)',
      () => ({
        delivery: signed(hookPayload({}), { timestamp: new Date(Date.now() - 24 * 60 * MINUTE) }),
      }),
    ],
    [
      'timestamped six minutes in the future',
      () => ({
        delivery: signed(hookPayload({}), { timestamp: new Date(Date.now() + 6 * MINUTE) }),
      }),
    ],
    ['whose timestamp header was moved forward after signing', () => {
      const delivery = signed(hookPayload({}), { timestamp: new Date(Date.now() - 10 * MINUTE) });
      return {
        delivery,
        overrides: { 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) },
      };
    }],
    [
      'whose id header was changed after signing',
      () => ({
        delivery: signed(hookPayload({})),
        overrides: { 'webhook-id': `msg_${randomUUID()}` },
      }),
    ],
    ['whose body was tampered with after signing (username changed)', () => {
      const body = hookPayload({ username: 'fine_name' });
      const delivery = signed(body);
      return { delivery: { ...delivery, body: body.replace('fine_name', '.bad name.') } };
    }],
    ['whose body had a field appended after signing', () => {
      const delivery = signed(hookPayload({}));
      return { delivery: { ...delivery, body: `${delivery.body.slice(0, -1)},"extra":true}` } };
    }],
    ['whose body had whitespace added after signing', () => {
      const delivery = signed(hookPayload({}));
      return { delivery: { ...delivery, body: `${delivery.body} ` } };
    }],
  ];

  for (const [what, make] of FORGED) {
    it(`a delivery ${what} is refused with 401 invalid_signature and writes nothing`, async () => {
      const before = await fingerprint(db());
      const { delivery, overrides } = make();
      const answer = await deliverHook(delivery, overrides ?? {});
      expect({ status: answer.status, code: answer.body?.error?.code }).toEqual(INVALID_SIGNATURE);
      expect(await fingerprint(db())).toEqual(before);
    });
  }

  it('a refused delivery stays refused when replayed, and a stale replay of a once-valid delivery is refused too', async () => {
    const tampered = signed(hookPayload({}), { secret: ATTACKER_HOOK_SECRET });
    for (let i = 0; i < 3; i++) {
      const answer = await deliverHook(tampered);
      expect({ status: answer.status, code: answer.body?.error?.code }).toEqual(INVALID_SIGNATURE);
    }
    // A delivery captured six minutes ago and replayed now: past the tolerance.
    const captured = signed(hookPayload({}), { timestamp: new Date(Date.now() - 6 * MINUTE) });
    const replayed = await deliverHook(captured);
    expect({ status: replayed.status, code: replayed.body?.error?.code }).toEqual(
      INVALID_SIGNATURE,
    );
  });
});
