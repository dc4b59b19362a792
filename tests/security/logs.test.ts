// Nothing secret reaches a log line. A representative flow through every endpoint of the local
// stack (the three functions as real Deno workers at LOG_LEVEL=debug, Auth, PostgREST) — including
// failures, forged credentials and webhook/hook deliveries — while every line is captured: the
// stack's log, the workers' stdout and stderr (both via api().logs), and this process's console
// (where the Auth stand-in reports its 5xx). Then no password, access or refresh token,
// JWT-shaped string, sb_secret_ key, webhook/hook/health secret or authorization header value
// may appear, and the capture itself is shown to be real: JSON lines with request ids from every
// function, naming the users and requests of the flow.
import { randomUUID } from 'node:crypto';
import type { Session } from '@supabase/supabase-js';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signEs256, signHs256 } from '../../dev/keys.ts';
import type { RegisterResult } from '../helpers/bodies.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { type Answer, attackerKey, b64url, http, JSON_TYPE } from './helpers.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();
const api = useLocalApi(db, {
  functions: true,
  functionEnv: { LOG_LEVEL: 'debug', REGISTER_RATE_LIMIT_MAX: '1000' },
});

/** Every value that must never be logged. */
const secrets = new Set<string>();
const secret = <T extends string>(value: T): T => {
  secrets.add(value);
  return value;
};
/** Every request id the functions answered with: each must be findable in the logs. */
const requestIds = new Map<string, string>();
const consoleLines: string[] = [];
const facts: { userId?: string; email?: string } = {};

/** A request through the stack, remembering the credentials it carries as secrets; B is what the test reads of the body. */
async function call<B = unknown>(
  path: string,
  init: RequestInit & { headers?: Record<string, string> } = {},
): Promise<Answer<B>> {
  const headers = init.headers ?? {};
  for (const [name, value] of Object.entries(headers)) {
    if (
      ['authorization', 'apikey', 'x-webhook-secret', 'x-health-token', 'webhook-signature']
        .includes(name.toLowerCase())
    ) {
      // The publishable key is public by design; everything else sent as a credential is secret.
      if (value !== api().stack.keys.publishableKey) secret(value);
      const token = /^Bearer\s+(\S+)$/i.exec(value)?.[1];
      if (token && token !== api().stack.keys.publishableKey) secret(token);
    }
  }
  const answer = await http<B>(api(), path, init);
  const requestId = answer.headers.get('x-request-id');
  if (path.startsWith('/functions/v1/') && requestId) {
    requestIds.set(requestId, `${init.method ?? 'GET'} ${path} → ${answer.status}`);
  }
  // Sessions carry tokens in their JSON.
  const body: unknown = answer.body;
  if (body && typeof body === 'object') {
    const fields = body as Record<string, unknown>;
    for (const key of ['access_token', 'refresh_token', 'provider_token']) {
      const value = fields[key];
      if (typeof value === 'string') secret(value);
    }
  }
  return answer;
}

const anonHeaders = () => ({
  apikey: api().stack.keys.publishableKey,
  authorization: `Bearer ${api().stack.keys.publishableKey}`,
});
const keyHeaders = (key: string) => ({ apikey: key, authorization: `Bearer ${key}` });

beforeAll(async () => {
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const original = console[method].bind(console);
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      consoleLines.push(
        args.map((
          a,
        ) => (a instanceof Error
          ? `${a.message}\n${a.stack}`
          : typeof a === 'string'
          ? a
          : JSON.stringify(a))
        ).join(' '),
      );
      original(...args);
    });
  }
  const { keys, functionSecrets } = api().stack;
  secret(keys.secretKey);
  secret(keys.serviceRoleKey);
  secret(keys.anonKey);
  secret(keys.jwtSecret);
  secret(keys.signingKey.d!);
  secret(functionSecrets.PROFILE_WEBHOOK_SECRET!);
  secret(functionSecrets.AUTH_HOOK_SECRET!);
  secret(functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,/, ''));
  secret(functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,whsec_/, ''));
  secret(functionSecrets.PROFILE_HEALTH_TOKEN!);
});

afterAll(() => {
  vi.restoreAllMocks();
});

describe('a representative flow through every endpoint', () => {
  it('runs: register, sign-in, refresh, ensure-profile, REST, webhook, hook, health and forged credentials', async () => {
    const email = `logged-${randomUUID().slice(0, 8)}@example.test`;
    const password = secret(`Pw-${randomUUID()}-!`);

    // register: success, then every way to fail (each carrying a password).
    const created = await call<RegisterResult>('/functions/v1/register', {
      method: 'POST',
      headers: { ...anonHeaders(), ...JSON_TYPE },
      body: JSON.stringify({
        email,
        password,
        full_name: 'Logged Person',
        username: `logged_${randomUUID().slice(0, 6)}`,
      }),
    });
    expect(created.status).toBe(201);
    facts.userId = created.body.user.id;
    facts.email = email;
    const failures: Array<[number, Record<string, unknown> | string]> = [
      [409, { email, password: secret(`Other-${randomUUID()}`) }],
      [422, { email: `weak-${randomUUID().slice(0, 6)}@example.test`, password: secret('abc12') }],
      [400, { email: 'not-an-email', password: secret(`Bad-${randomUUID()}`) }],
      [400, {
        email: `extra-${randomUUID().slice(0, 6)}@example.test`,
        password: secret(`Extra-${randomUUID()}`),
        is_admin: true,
      }],
      [400, `{"email": "broken@example.test", "password": "${secret(`Broken-${randomUUID()}`)}"`],
    ];
    for (const [status, body] of failures) {
      const answer = await call('/functions/v1/register', {
        method: 'POST',
        headers: { ...anonHeaders(), ...JSON_TYPE },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      expect(answer.status).toBe(status);
    }
    // An input Auth cannot store (today a 5xx inside Auth that the stand-in reports on the console;
    // a 400 once register refuses it up front).
    await call('/functions/v1/register', {
      method: 'POST',
      headers: { ...anonHeaders(), ...JSON_TYPE },
      body: JSON.stringify({
        email: `nul-${randomUUID().slice(0, 6)}@example.test`,
        password: secret(`Nul-${randomUUID()}`),
        full_name: 'a\u0000b',
      }),
    });

    // Sign-in (good and wrong password) and a refresh.
    const session = await call<Session>('/auth/v1/token?grant_type=password', {
      method: 'POST',
      headers: { ...anonHeaders(), ...JSON_TYPE },
      body: JSON.stringify({ email, password }),
    });
    expect(session.status).toBe(200);
    const wrong = await call('/auth/v1/token?grant_type=password', {
      method: 'POST',
      headers: { ...anonHeaders(), ...JSON_TYPE },
      body: JSON.stringify({ email, password: secret(`Wrong-${randomUUID()}`) }),
    });
    expect(wrong.status).toBe(400);
    // A refresh: the old refresh token swapped for a new session (whose tokens are secrets as well).
    const refreshed = await call<Session>('/auth/v1/token?grant_type=refresh_token', {
      method: 'POST',
      headers: { ...anonHeaders(), ...JSON_TYPE },
      body: JSON.stringify({ refresh_token: session.body.refresh_token }),
    });
    expect(refreshed.status).toBe(200);
    const accessToken: string = session.body.access_token;

    // ensure-profile: with the token, as the service role, naming someone else.
    const userHeaders = {
      apikey: api().stack.keys.publishableKey,
      authorization: `Bearer ${accessToken}`,
    };
    expect(
      (await call('/functions/v1/ensure-profile', { method: 'POST', headers: userHeaders })).status,
    ).toBe(200);
    expect(
      (await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: { ...userHeaders, ...JSON_TYPE },
        body: JSON.stringify({ user_id: randomUUID() }),
      })).status,
    ).toBe(403);
    expect(
      (await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: { ...keyHeaders(api().stack.keys.secretKey), ...JSON_TYPE },
        body: JSON.stringify({ user_id: facts.userId }),
      })).status,
    ).toBe(200);
    expect(
      (await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: { ...keyHeaders(api().stack.keys.serviceRoleKey), ...JSON_TYPE },
        body: JSON.stringify({ user_id: randomUUID() }),
      })).status,
    ).toBe(404);

    // PostgREST with the token and with the secret key.
    expect(
      (await call(`/rest/v1/user_profiles?select=user_id&user_id=eq.${facts.userId}`, {
        headers: userHeaders,
      })).status,
    ).toBe(200);
    expect(
      (await call('/rest/v1/rpc/profile_system_health', {
        method: 'POST',
        headers: { ...keyHeaders(api().stack.keys.secretKey), ...JSON_TYPE },
        body: '{}',
      })).status,
    ).toBe(200);

    // Database Webhook: the right secret (a profile to repair), a wrong one.
    const orphan = await withTriggerOff(db(), () => signUpAsSupabaseAuth(db()));
    const event = JSON.stringify({
      type: 'INSERT',
      table: 'users',
      schema: 'auth',
      record: { id: orphan, email: `user-${orphan}@example.test` },
      old_record: null,
    });
    expect(
      (await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: {
          ...JSON_TYPE,
          'x-webhook-secret': api().stack.functionSecrets.PROFILE_WEBHOOK_SECRET!,
        },
        body: event,
      })).status,
    ).toBe(200);
    expect(
      (await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: {
          ...JSON_TYPE,
          'x-webhook-secret': secret(`wrong-webhook-secret-${randomUUID()}`),
        },
        body: event,
      })).status,
    ).toBe(401);

    // Auth Hook: signed (allowed and rejected verdicts), and a bad signature.
    const webhook = new Webhook(api().stack.functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,/, ''));
    for (
      const [metadata, status] of [[{ username: 'fine_hook_name' }, 204], [{
        username: '.bad name.',
      }, 200]] as const
    ) {
      const body = JSON.stringify({
        metadata: {
          uuid: randomUUID(),
          time: new Date().toISOString(),
          name: 'before-user-created',
          ip_address: '127.0.0.1',
        },
        user: {
          id: randomUUID(),
          email: `hook-${randomUUID().slice(0, 6)}@example.test`,
          app_metadata: { provider: 'email' },
          user_metadata: metadata,
        },
      });
      const id = `msg_${randomUUID()}`;
      const now = new Date();
      const answer = await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: {
          ...JSON_TYPE,
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': webhook.sign(id, now, body),
        },
        body,
      });
      expect(answer.status).toBe(status);
      const forged = await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: {
          ...JSON_TYPE,
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': `v1,${Buffer.from(randomUUID()).toString('base64')}`,
        },
        body,
      });
      expect(forged.status).toBe(401);
    }

    // Health: public, with the health token (header and bearer), the secret key, metrics, a wrong token.
    expect((await call('/functions/v1/profile-health', { headers: anonHeaders() })).status).toBe(
      200,
    );
    expect(
      (await call('/functions/v1/profile-health?include=operations', {
        headers: { 'x-health-token': api().stack.functionSecrets.PROFILE_HEALTH_TOKEN! },
      })).status,
    ).toBe(200);
    expect(
      (await call('/functions/v1/profile-health', {
        headers: { authorization: `Bearer ${api().stack.functionSecrets.PROFILE_HEALTH_TOKEN!}` },
      })).status,
    ).toBe(200);
    expect(
      (await call('/functions/v1/profile-health?format=prometheus', {
        headers: keyHeaders(api().stack.keys.secretKey),
      })).status,
    ).toBe(200);
    expect(
      (await call('/functions/v1/profile-health', {
        headers: { 'x-health-token': secret(`wrong-health-token-${randomUUID()}`) },
      })).status,
    ).toBe(401);

    // Forged tokens at the function and at PostgREST.
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      sub: facts.userId,
      aud: 'authenticated',
      role: 'authenticated',
      exp: now + 3600,
      iat: now,
    };
    const forgedTokens = [
      secret(
        `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...claims, role: 'service_role' })}.`,
      ),
      secret(
        await signEs256(
          { ...claims, role: 'service_role' },
          await attackerKey(api().stack.keys.signingKey.kid!),
        ),
      ),
      secret(await signEs256({ ...claims, exp: now - 60 }, api().stack.keys.signingKey)),
      secret(await signHs256(claims, 'attacker-secret-that-is-at-least-32-characters')),
      secret(`sb_secret_forged_${randomUUID()}`),
    ];
    for (const token of forgedTokens) {
      const ensured = await call('/functions/v1/ensure-profile', {
        method: 'POST',
        headers: { apikey: api().stack.keys.publishableKey, authorization: `Bearer ${token}` },
      });
      expect(ensured.status).toBe(401);
      const rest = await call(`/rest/v1/user_profiles?select=user_id`, {
        headers: { apikey: api().stack.keys.publishableKey, authorization: `Bearer ${token}` },
      });
      expect(rest.status).toBe(401);
    }
    // Give the workers' pipes a moment to deliver their last lines.
    await new Promise((resolve) => setTimeout(resolve, 300));
  });
});

describe('the captured logs', () => {
  const lines = () => [...api().logs, ...consoleLines];
  /** Worker lines: "[function] <json>". */
  const workerRecords = () =>
    api()
      .logs.map((line) => /^\[(register|ensure-profile|profile-health)\] (\{.*)$/.exec(line))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => ({
        fn: match[1]!,
        record: JSON.parse(match[2]!) as Record<string, unknown>,
      }));

  it('are real: JSON lines with request ids from all three functions, naming the flow’s user and every request', () => {
    expect(api().logs.length).toBeGreaterThan(20);
    // Every line a worker writes that looks like JSON is JSON (workerRecords would throw otherwise).
    const records = workerRecords();
    expect(new Set(records.map((r) => r.fn))).toEqual(
      new Set(['register', 'ensure-profile', 'profile-health']),
    );
    const withIds = records.filter((r) => typeof r.record.request_id === 'string');
    expect(withIds.length).toBeGreaterThan(30);
    const logged = new Set(withIds.map((r) => r.record.request_id));
    for (const [id, request] of requestIds) {
      expect(logged.has(id), `request id of ${request}`).toBe(true);
    }
    expect(requestIds.size).toBeGreaterThan(25);
    expect(lines().some((line) => line.includes(facts.userId!))).toBe(true);
    // Refusals were logged too, with their status.
    for (const status of [200, 201, 204, 400, 401, 403, 404, 409, 422]) {
      expect(records.some((r) => r.record.status === status), `a logged request answered ${status}`)
        .toBe(true);
    }
  });

  it('contain none of the passwords, tokens, keys, secrets or authorization header values the flow used', () => {
    expect(secrets.size).toBeGreaterThan(30);
    expect(leaksIn(lines())).toEqual([]);
  });

  it('contain no JWT-shaped string, no sb_secret_ key, no whsec_ secret and no bearer credential', () => {
    expect(lines().filter(looksSecret)).toEqual([]);
  });

  it('contain no authorization, apikey, cookie, password or token field with a value', () => {
    expect(workerRecords().filter(({ record }) => hasSecretField(record))).toEqual([]);
  });

  it('the detectors above do flag a leak (so their silence means something)', () => {
    const password = [...secrets].find((value) => value.startsWith('Pw-'))!;
    expect(leaksIn([`{"msg":"oops","pw":"${password}"}`])).toHaveLength(1);
    const token = [...secrets].find((value) => value.startsWith('eyJ'))!;
    for (
      const line of [
        `token ${token}`,
        `key=${api().stack.keys.secretKey}`,
        `secret v1,whsec_abc`,
        'authorization: Bearer abc.def',
      ]
    ) {
      expect(looksSecret(line), line.slice(0, 40)).toBe(true);
    }
    expect(looksSecret('WWW-Authenticate: Bearer error="invalid_token"')).toBe(false);
    expect(hasSecretField({ req: { headers: { authorization: 'x' } } })).toBe(true);
    expect(hasSecretField({ password: '[Redacted]', msg: 'fine' })).toBe(false);
  });
});

function leaksIn(lines: string[]): string[] {
  const leaks: string[] = [];
  for (const line of lines) {
    for (const value of secrets) {
      if (value.length >= 5 && line.includes(value)) {
        leaks.push(`${value.slice(0, 12)}… in: ${line.slice(0, 200)}`);
      }
    }
  }
  return leaks;
}

function looksSecret(line: string): boolean {
  return /eyJ[\w-]{5,}\.[\w-]*\.?[\w-]*/.test(line) || /sb_secret_/i.test(line) ||
    /whsec_/i.test(line) || /Bearer\s+(?!error=)[^\s"',]+/i.test(line);
}

function hasSecretField(record: Record<string, unknown>): boolean {
  return JSON.stringify(
    record,
    (key, value) =>
      /^(authorization|apikey|cookie|password|access_token|refresh_token|x-webhook-secret|x-health-token|webhook-signature)$/i
          .test(key) && value !== '[Redacted]'
        ? `LEAK:${key}`
        : value,
  ).includes('LEAK:');
}
