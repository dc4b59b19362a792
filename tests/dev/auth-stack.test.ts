// The Auth stand-in behind the local stack: per-address signup limits and Sb-Forwarded-For as the
// hosted gateway and GoTrue handle them, the CLI's mail interval, and faults after the commit.
import { describe, expect, it } from 'vitest';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { type LocalApi, useLocalApi } from '../helpers/local-api.ts';

const db = useTestDatabase();
const VERSION = { 'X-Supabase-Api-Version': '2024-01-01' };
const RATE_LIMITED = { code: 'over_request_rate_limit', message: 'Request rate limit reached' };

type Key = 'secret' | 'publishable' | 'anon' | 'service_role';

function keyOf(api: LocalApi, key: Key): string {
  const keys = api.stack.keys;
  return {
    secret: keys.secretKey,
    publishable: keys.publishableKey,
    anon: keys.anonKey,
    service_role: keys.serviceRoleKey,
  }[key];
}

/** POST /auth/v1/signup as supabase-js sends it with that key, plus extra headers. */
async function signUp(
  api: LocalApi,
  key: Key,
  email: string,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${api.stack.apiUrl}/auth/v1/signup`, {
    method: 'POST',
    headers: {
      apikey: keyOf(api, key),
      Authorization: `Bearer ${keyOf(api, key)}`,
      'Content-Type': 'application/json',
      ...VERSION,
      ...headers,
    },
    body: JSON.stringify({ email, password: 'secret-123' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function usersLike(pattern: string): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from auth.users where email like $1',
    [pattern],
  )).n;
}

const statuses = (answers: Array<{ status: number }>) => answers.map((answer) => answer.status);

describe('with the client address limited, as hosted, and IP address forwarding on', () => {
  const api = useLocalApi(db, {
    rateLimitByClientAddress: true,
    sbForwardedForEnabled: true,
    autoconfirm: false,
    mailIntervalSeconds: 120,
  });

  it('counts signups made with the secret key under their Sb-Forwarded-For address: 40 addresses pass, one address stops after 30', async () => {
    const spread = [];
    for (let n = 1; n <= 40; n++) {
      spread.push(
        await signUp(api(), 'secret', `spread-${n}@example.test`, {
          'Sb-Forwarded-For': `203.0.113.${n}`,
        }),
      );
    }
    expect(statuses(spread)).toEqual(Array(40).fill(200));

    const one = [];
    for (let n = 1; n <= 40; n++) {
      one.push(
        await signUp(api(), 'secret', `one-${n}@example.test`, {
          'Sb-Forwarded-For': '198.51.100.7, 10.0.0.1',
        }),
      );
    }
    expect(statuses(one)).toEqual([...Array(30).fill(200), ...Array(10).fill(429)]);
    expect(one[39]!.body).toEqual(RATE_LIMITED);
    expect(await usersLike('one-%')).toBe(30);
  });

  it('ignores Sb-Forwarded-For from the publishable, anon and legacy service_role keys and an invalid one: all count against the peer', async () => {
    const answers = [];
    const keys: Key[] = ['publishable', 'anon', 'service_role'];
    for (const [index, key] of keys.entries()) {
      for (let n = 1; n <= 10; n++) {
        const address = `192.0.2.${index * 10 + n}`;
        // Neither a forwarded address nor the stack's own client-address header can be forged.
        answers.push(
          await signUp(api(), key, `peer-${key}-${n}@example.test`, {
            'Sb-Forwarded-For': address,
            'x-stack-client-address': address,
          }),
        );
      }
    }
    for (let n = 1; n <= 10; n++) {
      answers.push(
        await signUp(api(), 'secret', `peer-invalid-${n}@example.test`, {
          'Sb-Forwarded-For': 'not-an-ip',
        }),
      );
    }
    expect(statuses(answers)).toEqual([...Array(30).fill(200), ...Array(10).fill(429)]);
    expect(answers[30]!.body).toEqual(RATE_LIMITED);
    expect(await usersLike('peer-invalid-%')).toBe(0);
  });

  it('passes mailIntervalSeconds to Auth', async () => {
    const forwarded = { 'Sb-Forwarded-For': '100.64.0.9' };
    expect((await signUp(api(), 'secret', 'interval@example.test', forwarded)).status).toBe(200);
    await db().query(
      `update auth.users set confirmation_sent_at = now() - interval '15.5 seconds' where email = 'interval@example.test'`,
    );
    expect(await signUp(api(), 'secret', 'interval@example.test', forwarded)).toEqual({
      status: 429,
      body: {
        code: 'over_email_send_rate_limit',
        message: 'For security purposes, you can only request this after 104 seconds.',
      },
    });
  });
});

describe('with the client address limited and IP address forwarding off', () => {
  const api = useLocalApi(db, {
    rateLimitByClientAddress: true,
    signupRateLimit: { max: 5, windowSeconds: 300 },
  });

  it('counts even secret-key signups against the peer, under the configured limit', async () => {
    const answers = [];
    for (let n = 1; n <= 40; n++) {
      answers.push(
        await signUp(api(), 'secret', `off-${n}@example.test`, {
          'Sb-Forwarded-For': `203.0.113.${n}`,
        }),
      );
    }
    expect(statuses(answers)).toEqual([...Array(5).fill(200), ...Array(35).fill(429)]);
    expect(answers[5]!.body).toEqual(RATE_LIMITED);
    expect(await usersLike('off-%')).toBe(5);
  });
});

describe('the local default, and faults after the commit', () => {
  const api = useLocalApi(db, { autoconfirm: false });

  it('limits no address, as the local CLI sets no rate-limit header', async () => {
    const answers = [];
    for (let n = 1; n <= 40; n++) {
      answers.push(await signUp(api(), 'anon', `local-${n}@example.test`));
    }
    expect(statuses(answers)).toEqual(Array(40).fill(200));
  });

  it("keeps the CLI's one-second mail interval", async () => {
    expect((await signUp(api(), 'anon', 'cli-interval@example.test')).status).toBe(200);
    await db().query(
      `update auth.users set confirmation_sent_at = now() - interval '0.5 seconds' where email = 'cli-interval@example.test'`,
    );
    expect(await signUp(api(), 'anon', 'cli-interval@example.test')).toEqual({
      status: 429,
      body: {
        code: 'over_email_send_rate_limit',
        message: 'For security purposes, you can only request this after 0 seconds.',
      },
    });
    await db().query(
      `update auth.users set confirmation_sent_at = now() - interval '1 second' where email = 'cli-interval@example.test'`,
    );
    expect((await signUp(api(), 'anon', 'cli-interval@example.test')).status).toBe(200);
  });

  it('answers 500 after committing the signup: supabase-js sees a retryable 500 although the user exists', async () => {
    api().stack.setAuthFault({ afterCommit: true, status: 500, paths: /\/signup$/, remaining: 1 });
    const { data, error } = await appClient(api().stack.apiUrl, api().stack.keys.anonKey).auth
      .signUp({ email: 'committed-500@example.test', password: 'secret-123' });
    expect(data).toEqual({ user: null, session: null });
    expect(error).toMatchObject({ name: 'AuthRetryableFetchError', status: 500 });
    expect(api().stack.authFault()).toMatchObject({ remaining: 0 });
    api().stack.setAuthFault(null);
    expect(await usersLike('committed-500@example.test')).toBe(1);
    const { rows } = await db().query(
      `select count(*)::int as n from public.user_profiles where email = 'committed-500@example.test'`,
    );
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('drops the connection after committing the signup: supabase-js sees a network error although the user exists', async () => {
    api().stack.setAuthFault({ afterCommit: true, paths: /\/signup$/, remaining: 1 });
    const { data, error } = await appClient(api().stack.apiUrl, api().stack.keys.anonKey).auth
      .signUp({ email: 'committed-dropped@example.test', password: 'secret-123' });
    api().stack.setAuthFault(null);
    expect(data).toEqual({ user: null, session: null });
    expect(error).toMatchObject({
      name: 'AuthRetryableFetchError',
      status: 0,
      message: 'fetch failed',
    });
    expect(await usersLike('committed-dropped@example.test')).toBe(1);
  });

  it("replaces the handled answer whole: status, GoTrue's error body, and none of its headers", async () => {
    expect((await signUp(api(), 'anon', 'replaced@example.test')).status).toBe(200);
    await db().query(
      `update auth.users set confirmation_sent_at = now() where email = 'replaced@example.test'`,
    );
    api().stack.setAuthFault({ afterCommit: true, status: 503, paths: /\/signup$/, remaining: 1 });
    const response = await fetch(`${api().stack.apiUrl}/auth/v1/signup`, {
      method: 'POST',
      headers: {
        apikey: api().stack.keys.anonKey,
        Authorization: `Bearer ${api().stack.keys.anonKey}`,
        'Content-Type': 'application/json',
        ...VERSION,
      },
      // Handled, this is a 429 with x-sb-error-code over_email_send_rate_limit: the mail just went out.
      body: JSON.stringify({ email: 'replaced@example.test', password: 'secret-123' }),
    });
    api().stack.setAuthFault(null);
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 503,
      body: { code: 'service_unavailable', message: 'Injected fault: Auth is unavailable' },
    });
    expect(response.headers.get('x-sb-error-code')).toBe('service_unavailable');
    expect(response.headers.get('x-supabase-api-version')).toBe('2024-01-01');
  });
});
