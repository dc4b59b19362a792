import { describe, expect, it } from 'vitest';
import { createProfileClient, ProfileApiError } from '../../shared/client.ts';
import { appClient } from '../helpers/clients.ts';

/** A supabase client whose function calls are answered by `answer`, recording each request. */
function fakeBackend(answer: (n: number) => Response | Error) {
  const seen: Array<{ url: string; key: string | null; body: unknown }> = [];
  const supabase = appClient('http://functions.test', 'anon-key', {
    global: {
      fetch: async (input, init) => {
        const headers = new Headers(init?.headers);
        seen.push({
          url: String(input),
          key: headers.get('idempotency-key'),
          body: init?.body ? JSON.parse(String(init.body)) : null,
        });
        const reply = answer(seen.length);
        if (reply instanceof Error) throw reply;
        return reply;
      },
    },
  });
  return { supabase, seen };
}

const created = {
  user: { id: 'u1', email: 'a@example.test' },
  profile: null,
  profile_status: 'pending',
  email_confirmation_required: false,
};
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
const noSleep = async () => {};

describe('createProfileClient().register', () => {
  it('retries a lost answer with the same Idempotency-Key and reports the replay', async () => {
    const { supabase, seen } = fakeBackend((n) =>
      n === 1
        ? new TypeError('fetch failed')
        : n === 2
        ? json(503, { error: { code: 'service_unavailable', message: 'x' } }, {
          'retry-after': '5',
        })
        : json(201, created, { 'idempotency-replayed': 'true' })
    );
    const result = await createProfileClient(supabase, { sleep: noSleep }).register({
      email: 'a@example.test',
      password: 'secret-password',
    });
    expect(result).toEqual({ ...created, replayed: true });
    expect(seen).toHaveLength(3);
    expect(seen[0]!.url).toBe('http://functions.test/functions/v1/register');
    expect(new Set(seen.map((s) => s.key)).size).toBe(1);
    expect(seen[0]!.key).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('uses a caller-given key and a fresh key per registration otherwise', async () => {
    const { supabase, seen } = fakeBackend(() => json(201, created));
    const client = createProfileClient(supabase, { sleep: noSleep });
    await client.register({ email: 'a@example.test', password: 'secret-password' }, {
      idempotencyKey: 'signup-form-42',
    });
    await client.register({ email: 'b@example.test', password: 'secret-password' });
    await client.register({ email: 'c@example.test', password: 'secret-password' });
    expect(seen[0]!.key).toBe('signup-form-42');
    expect(seen[1]!.key).not.toBe(seen[2]!.key);
  });

  it('does not retry a final answer and throws it as a typed error with the fields', async () => {
    const { supabase, seen } = fakeBackend(() =>
      json(409, {
        error: {
          code: 'email_taken',
          message: 'An account with this email already exists',
          fields: { email: 'is already registered' },
        },
      })
    );
    const failure = createProfileClient(supabase, { sleep: noSleep }).register({
      email: 'a@example.test',
      password: 'secret-password',
    });
    await expect(failure).rejects.toBeInstanceOf(ProfileApiError);
    await expect(failure).rejects.toMatchObject({
      status: 409,
      code: 'email_taken',
      fields: { email: 'is already registered' },
      transient: false,
    });
    expect(seen).toHaveLength(1);
  });

  it('gives up after its attempts and reports the last failure with Retry-After', async () => {
    const { supabase, seen } = fakeBackend(() =>
      json(503, { error: { code: 'service_unavailable', message: 'Auth is down' } }, {
        'retry-after': '5',
      })
    );
    await expect(
      createProfileClient(supabase, {
        sleep: noSleep,
        retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1, deadlineMs: 1000 },
      })
        .register({ email: 'a@example.test', password: 'secret-password' }),
    ).rejects.toMatchObject({
      status: 503,
      code: 'service_unavailable',
      retryAfterSeconds: 5,
      transient: true,
    });
    expect(seen).toHaveLength(3);
  });

  it("does not retry 503 registration_disabled, the operator's switch, and reports it as not transient", async () => {
    const { supabase, seen } = fakeBackend(() =>
      json(503, {
        error: {
          code: 'registration_disabled',
          message: 'Registration is switched off for now; try again later',
        },
      }, { 'retry-after': '60' })
    );
    await expect(
      createProfileClient(supabase, { sleep: noSleep }).register({
        email: 'a@example.test',
        password: 'secret-password',
      }),
    ).rejects.toMatchObject({
      status: 503,
      code: 'registration_disabled',
      retryAfterSeconds: 60,
      transient: false,
    });
    expect(seen).toHaveLength(1);
  });
});
