// Property-based input fuzzing (fast-check) of every body-taking endpoint, with the real handlers
// called IN-PROCESS (no Deno worker hop, so thousands of bodies stay fast) in front of the real
// Auth and PostgREST stand-ins and PostgreSQL:
//   register (admin mode), ensure-profile as the service role, ensure-profile as a Database
//   Webhook, and ensure-profile as the before-user-created Auth Hook (correctly signed).
// Bodies: arbitrary JSON, the right keys with wrong types, huge strings (up to 100 KB, past the
// 16 KB body limit), unicode (astral, zero-width, RTL, combining, NUL, lone surrogates), SQL and
// HTML payloads, missing and extra fields, deep nesting, and text that is not JSON at all.
// Every answer must be 2xx or 4xx, never 5xx; a 4xx writes no auth user, profile, audit or
// repair row; an accepted registration stores exactly what was sent (email lower-cased and
// trimmed, full_name trimmed; everything else verbatim).
//
// Counts: FUZZ_RUNS generated bodies per endpoint. The default, 1000, is what `npm test` (and CI)
// runs; the full run is 10000:
//     FUZZ_RUNS=10000 npx vitest run tests/security/fuzz.test.ts
// FUZZ_SEED=<n> replays a run (fast-check prints the seed of a failure); with CI set the seed is fixed.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { createEnsureProfileHandler } from '../../shared/ensure-profile-handler.ts';
import { USERNAME_PATTERN } from '../../shared/profile-contract.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import type {
  EnsureProfileAnswer,
  ErrorBody,
  HookRefusal,
  RegisterResult,
  Reply,
} from '../helpers/bodies.ts';
import { useTestDatabase, withTriggerOff } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { signedInUser, writeCounts } from './helpers.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 1000);
// CI (CI=true) uses a fixed seed so a landing is never decided by a new draw; local runs explore
// fresh inputs every time, and a failure prints the seed to replay.
const FUZZ_SEED = process.env.FUZZ_SEED !== undefined
  ? Number(process.env.FUZZ_SEED)
  : process.env.CI
  ? 20261121
  : undefined;
// A failing body is shrunk, but not for ever: each run is an HTTP round trip or more.
const PARAMETERS = {
  numRuns: FUZZ_RUNS,
  ...(FUZZ_SEED === undefined ? {} : { seed: FUZZ_SEED }),
  interruptAfterTimeLimit: 10 * 60_000,
  markInterruptAsFailure: true,
};
// The timeout grows with the run count: the default run takes well under a minute.
const TIMEOUT = 60_000 + FUZZ_RUNS * 200;

const db = useTestDatabase();
const api = useLocalApi(db);

const URL_BASE = 'http://127.0.0.1/functions/v1';

// ============================================================================
// Generators
// ============================================================================
const SQL_PAYLOADS = [
  "'; drop table public.user_profiles; --",
  "' or '1'='1",
  "admin'--",
  '"; delete from auth.users; --',
  '$$; truncate private.audit_logs; $$',
  '1); update private.settings set trigger_enabled = false; --',
  "robert'); drop table students;--",
  "%' and pg_sleep(5) is null --",
  '\\x27; select 1; --',
  "E'\\\\'",
];
const HTML_PAYLOADS = [
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(document.cookie)>',
  '"><svg/onload=alert(1)>',
  "javascript:alert('x')",
  '&lt;b&gt;&amp;&#x27;&quot;',
  '{{constructor.constructor("alert(1)")()}}',
  '${7*7}',
  '<!--',
  ']]><![CDATA[',
];
const ODD_CHARACTERS = [
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u200b',
  '\u200c',
  '\u200d',
  '\u2060',
  '\ufeff',
  '\u202e',
  '\u202d',
  '\u2066',
  '\u2067',
  '\u061c',
  '\u0301',
  '\u0336',
  '\u00a0',
  '\u2028',
  '\u2029',
  '\ud83d\ude00',
  '\ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67',
  '\ud835\udd73',
  '\ud800',
  '\udfff',
  'ß',
  'İ',
  'ﬁ',
  'Ω',
  '𒀀',
  '"',
  '\\',
  "'",
  '`',
  '%',
  '_',
  '<',
  '>',
  '&',
  '\n',
  '\t',
  '\r',
  ' ',
];

/** Short strings of every hostile kind. */
const nastyString = fc.oneof(
  fc.constantFrom(...SQL_PAYLOADS, ...HTML_PAYLOADS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.array(fc.constantFrom(...ODD_CHARACTERS), { minLength: 1, maxLength: 20 }).map((parts) =>
    parts.join('')
  ),
  fc.tuple(
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.constantFrom(...SQL_PAYLOADS, ...HTML_PAYLOADS, ...ODD_CHARACTERS),
    fc.string({ maxLength: 10 }),
  )
    .map((parts) => parts.join('')),
);

/** 1 KB to 100 KB of one repeated unit: most blow the 16 KB body limit, some fit. */
const hugeString = fc
  .tuple(
    fc.integer({ min: 1_000, max: 100_000 }),
    fc.constantFrom('x', 'é', '\u200b', '😀', "'", '<b>', '\u0000', '\\'),
  )
  .map(([bytes, unit]) => unit.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(unit)))));

/**
 * Nesting 10 to 8000 levels deep (arrays or objects). Kept as a placeholder string while
 * fast-check holds it (its cloning and printing recurse) and expanded into the body text.
 */
const deepValue = fc
  .tuple(fc.integer({ min: 10, max: 8_000 }), fc.constantFrom('a', 'o'))
  .map(([depth, kind]) => `@deep:${kind === 'a' ? depth : Math.min(depth, 3_000)}:${kind}`);

function expandDeep(text: string): string {
  return text.replace(/"@deep:(\d+):([ao])"/g, (_match, depth: string, kind: string) => {
    const n = Number(depth);
    return kind === 'a'
      ? `${'['.repeat(n)}1${']'.repeat(n)}`
      : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
  });
}

/** Any JSON value, with hostile strings at the leaves. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 4 },
  { arbitrary: nastyString, weight: 4 },
  {
    arbitrary: fc.constantFrom(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, '', ' ', [], {}),
    weight: 2,
  },
  {
    arbitrary: fc.dictionary(nastyString, fc.oneof(nastyString, fc.jsonValue({ maxDepth: 2 })), {
      maxKeys: 5,
    }),
    weight: 2,
  },
  { arbitrary: hugeString, weight: 1 },
  { arbitrary: deepValue, weight: 1 },
);

/** Text that is a body but not (or not only) a JSON value. */
const notJson = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constantFrom(
    '',
    ' ',
    '{',
    '{"email":',
    '[1,2',
    'null null',
    '{"a":1}{"b":2}',
    '\ufeff{}',
    "{'email': 'x'}",
    'NaN',
    'undefined',
    '{"a":\u0000}',
  ),
  hugeString,
);

interface Generated {
  /** What the generator meant to send (undefined for raw text). */
  value?: unknown;
  /** The exact body text sent. */
  text: string;
  kind: string;
}

/** A generated body; fast-check prints it through toStringMethod, shortened (some are 100 KB). */
function generated(kind: string, text: string, value?: unknown): Generated {
  return {
    kind,
    text,
    ...(value === undefined ? {} : { value }),
    [fc.toStringMethod]: () =>
      `${kind} body (${text.length} chars): ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`,
  } as Generated;
}

const asJson = (kind: string) => (value: unknown): Generated =>
  generated(kind, expandDeep(JSON.stringify(value) ?? 'null'), value);
const asText = (text: string): Generated => generated('not JSON', text);

// ---------------------------------------------------------------------------- register
const REGISTER_FIELDS = [
  'email',
  'password',
  'full_name',
  'username',
  'avatar_url',
  'metadata',
  'captcha_token',
];

/** Placeholder the run replaces with a fresh address, so accepted bodies do not collide. */
const FRESH_EMAIL = '\u{1F4E7}fresh';

const password = fc
  .oneof(
    fc.string({ minLength: 6, maxLength: 40 }),
    fc.string({ unit: 'grapheme', minLength: 6, maxLength: 20 }),
    fc.constantFrom(...SQL_PAYLOADS),
  )
  .filter((p) => [...p].length >= 6 && Buffer.byteLength(p) <= 72);

const fullName = fc
  .oneof(
    nastyString,
    fc.constantFrom(...SQL_PAYLOADS, ...HTML_PAYLOADS),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }),
  )
  .filter((n) => n.trim() !== '' && [...n.trim()].length <= 200);

const metadataValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  nastyString,
  fc.constantFrom(...SQL_PAYLOADS, ...HTML_PAYLOADS),
  fc.integer({ min: 10, max: 200 }).map((depth) =>
    JSON.parse(`${'['.repeat(depth)}"deep"${']'.repeat(depth)}`)
  ),
);

/** Bodies meant to be accepted: every optional field in every hostile-but-valid shape. */
const validRegister = fc
  .record(
    {
      email: fc.tuple(fc.constantFrom('', ' ', '\t', '  '), fc.boolean()),
      password,
      full_name: fullName,
      username: fc.stringMatching(USERNAME_PATTERN),
      avatar_url: fc.oneof(
        fc.webUrl(),
        fc.constantFrom(
          'https://example.test/<script>alert(1)</script>',
          'https://example.test/a\'b"c',
          'http://x/😀',
        ),
      ),
      metadata: fc.dictionary(
        fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...SQL_PAYLOADS, ...HTML_PAYLOADS)),
        metadataValue,
        { maxKeys: 8 },
      ),
      captcha_token: fc.string({ maxLength: 50 }),
    },
    { requiredKeys: ['email', 'password'] },
  )
  .map(({ email: [pad, upper], ...rest }) =>
    asJson('valid')({
      email: `${pad}${upper ? FRESH_EMAIL.toUpperCase() : FRESH_EMAIL}${pad}`,
      ...rest,
    })
  );

const registerBody: fc.Arbitrary<Generated> = fc.oneof(
  { arbitrary: validRegister, weight: 3 },
  // The right keys, any of them missing, with wrong types and hostile values.
  {
    arbitrary: fc.record(Object.fromEntries(REGISTER_FIELDS.map((k) => [k, junk])), {
      requiredKeys: [],
    }).map(asJson('wrong types')),
    weight: 4,
  },
  // A valid body plus fields nobody asked for.
  {
    arbitrary: fc.tuple(
      validRegister,
      fc.dictionary(nastyString.filter((k) => !REGISTER_FIELDS.includes(k)), junk, {
        minKeys: 1,
        maxKeys: 3,
      }),
    )
      .map(([body, extra]) => asJson('extra fields')({ ...extra, ...(body.value as object) })),
    weight: 2,
  },
  // A valid body with one field removed or replaced by junk.
  {
    arbitrary: fc.tuple(
      validRegister,
      fc.constantFrom(...REGISTER_FIELDS),
      fc.option(junk, { nil: undefined }),
    )
      .map(([body, field, value]) => {
        const copy: Record<string, unknown> = { ...(body.value as object) };
        if (value === undefined) delete copy[field];
        else copy[field] = value;
        return asJson('one field broken')(copy);
      }),
    weight: 3,
  },
  { arbitrary: junk.map(asJson('any JSON')), weight: 2 },
  { arbitrary: notJson.map(asText), weight: 1 },
);

// ---------------------------------------------------------------------------- ensure-profile
/** Filled in beforeAll: users that exist (with profiles), for bodies that name them. */
const existingUsers: string[] = [];

const uuidLike = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.constantFrom(
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    "00000000-0000-0000-0000-000000000000' or 1=1 --",
  ),
  fc.nat(9).map((i) => `@existing${i}`),
);
/** Resolves the @existing placeholders at run time. */
function resolve(value: unknown): unknown {
  if (typeof value === 'string' && /^@existing\d$/.test(value)) {
    return existingUsers[Number(value.slice(9)) % existingUsers.length];
  }
  if (Array.isArray(value)) return value.map(resolve);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  }
  return value;
}

const ensureBody: fc.Arbitrary<Generated> = fc.oneof(
  { arbitrary: uuidLike.map((user_id) => asJson('valid')({ user_id })), weight: 3 },
  { arbitrary: junk.map((user_id) => asJson('wrong type')({ user_id })), weight: 3 },
  {
    arbitrary: fc.tuple(
      uuidLike,
      fc.dictionary(nastyString.filter((k) => k !== 'user_id'), junk, { minKeys: 1, maxKeys: 3 }),
    ).map(([user_id, extra]) => asJson('extra fields')({ ...extra, user_id })),
    weight: 2,
  },
  { arbitrary: junk.map(asJson('any JSON')), weight: 2 },
  { arbitrary: notJson.map(asText), weight: 1 },
);

const webhookEvent = fc.record(
  {
    type: fc.oneof(fc.constant('INSERT'), fc.constantFrom('UPDATE', 'DELETE', 'insert'), junk),
    table: fc.oneof(fc.constant('users'), fc.constantFrom('identities', 'USERS'), junk),
    schema: fc.oneof(fc.constant('auth'), fc.constantFrom('public', 'private'), junk),
    record: fc.oneof(
      fc.record({ id: uuidLike, email: fc.oneof(nastyString, junk), raw_user_meta_data: junk }, {
        requiredKeys: ['id'],
      }),
      junk,
    ),
    old_record: fc.oneof(fc.constant(null), junk),
  },
  { requiredKeys: [] },
);

/** An INSERT event as pg_net sends it, with hostile values where they may be anything. */
const insertEvent = fc.record({
  type: fc.constant('INSERT'),
  table: fc.constant('users'),
  schema: fc.constant('auth'),
  record: fc.record({
    id: uuidLike,
    email: fc.oneof(nastyString, junk),
    raw_user_meta_data: junk,
    extra: junk,
  }, { requiredKeys: ['id'] }),
  old_record: fc.constant(null),
});

const webhookBody: fc.Arbitrary<Generated> = fc.oneof(
  { arbitrary: insertEvent.map(asJson('INSERT event')), weight: 3 },
  { arbitrary: webhookEvent.map(asJson('event')), weight: 4 },
  {
    arbitrary: fc.tuple(webhookEvent, fc.dictionary(nastyString, junk, { minKeys: 1, maxKeys: 3 }))
      .map(([event, extra]) => asJson('extra fields')({ ...extra, ...event })),
    weight: 2,
  },
  { arbitrary: junk.map(asJson('any JSON')), weight: 2 },
  { arbitrary: notJson.map(asText), weight: 1 },
);

// ---------------------------------------------------------------------------- Auth Hook
const hookMetadata = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      'username',
      'user_name',
      'preferred_username',
      'full_name',
      'name',
      'avatar_url',
      'picture',
      'metadata',
    ),
    nastyString,
  ),
  fc.oneof(nastyString, fc.stringMatching(USERNAME_PATTERN), fc.webUrl(), junk),
  { maxKeys: 6 },
);

const hookPayload = fc.record(
  {
    metadata: fc.oneof(
      fc.record({
        uuid: fc.uuid(),
        time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        name: fc.constant('before-user-created'),
        ip_address: fc.ipV4(),
      }),
      junk,
    ),
    user: fc.oneof(
      fc.record(
        {
          id: fc.oneof(fc.uuid(), junk),
          email: fc.oneof(fc.emailAddress(), nastyString, junk),
          app_metadata: fc.oneof(
            fc.record({ provider: fc.oneof(fc.constantFrom('email', 'github', 'google'), junk) }),
            junk,
          ),
          user_metadata: fc.oneof(hookMetadata, junk),
          raw_user_meta_data: fc.oneof(hookMetadata, junk),
        },
        { requiredKeys: [] },
      ),
      junk,
    ),
  },
  { requiredKeys: [] },
);

const hookBody: fc.Arbitrary<Generated> = fc.oneof(
  { arbitrary: hookPayload.map(asJson('payload')), weight: 6 },
  {
    arbitrary: fc.tuple(hookPayload, fc.dictionary(nastyString, junk, { minKeys: 1, maxKeys: 3 }))
      .map(([payload, extra]) => asJson('extra fields')({ ...extra, ...payload })),
    weight: 2,
  },
  { arbitrary: junk.map(asJson('any JSON')), weight: 2 },
  { arbitrary: notJson.map(asText), weight: 1 },
);

// ============================================================================
// Running
// ============================================================================
type Handler = (request: Request) => Promise<Response>;

/** The status and the parsed body (the raw text when it is not JSON, null when empty), typed B: what the test reads of it. */
async function send<B = unknown>(
  handler: Handler,
  path: string,
  text: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: B }> {
  const response = await handler(
    new Request(`${URL_BASE}/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: text,
    }),
  );
  const raw = await response.text();
  let body: unknown = null;
  try {
    body = raw === '' ? null : JSON.parse(raw);
  } catch {
    body = raw;
  }
  return { status: response.status, body: body as B };
}

function expectNot5xx(status: number, generated: Generated, body: unknown): void {
  if (status >= 500 || status < 200 || (status >= 300 && status < 400)) {
    throw new Error(
      `${generated.kind} body answered ${status}: ${
        JSON.stringify(body)?.slice(0, 500)
      }\nbody sent: ${generated.text.slice(0, 500)}`,
    );
  }
}

let emails = 0;

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    existingUsers.push((await signedInUser(db(), api(), { prefix: 'existing' })).id);
  }
  // Users with no profile: a body naming one may create it (that is an accepted write).
  for (let i = 0; i < 2; i++) {
    existingUsers.push(await withTriggerOff(db(), () => signUpAsSupabaseAuth(db())));
  }
});

describe('fuzzing register (admin mode) with generated bodies', () => {
  let handler: Handler;
  beforeAll(() => {
    handler = createRegisterHandler({
      config: api().config({
        REGISTER_MODE: 'admin',
        REGISTER_RATE_LIMIT_MAX: '1000000',
        REGISTER_UNATTRIBUTED_RATE_LIMIT_MAX: '1000000',
        REGISTER_ADMIN_EMAIL_CONFIRM: 'true',
      }),
    });
  });

  it(
    `answers ${FUZZ_RUNS} generated bodies with 2xx or 4xx only, writes nothing for a 4xx and stores accepted values verbatim`,
    async () => {
      let generated = 0;
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(registerBody, async (body) => {
          generated += 1;
          let text = body.text;
          const value = body.value as Record<string, unknown> | undefined;
          if (
            body.kind !== 'not JSON' && value !== null && typeof value === 'object' &&
            typeof value.email === 'string' &&
            value.email.toUpperCase().includes(FRESH_EMAIL.toUpperCase())
          ) {
            emails += 1;
            const fresh = `fuzz.${emails}.${randomUUID().slice(0, 8)}@example.test`;
            text = expandDeep(
              JSON.stringify({
                ...value,
                email: value.email.replace(FRESH_EMAIL, fresh).replace(
                  FRESH_EMAIL.toUpperCase(),
                  fresh.toUpperCase(),
                ),
              }),
            );
          }
          const before = await writeCounts(db());
          const answer = await send<RegisterResult | ErrorBody>(handler, 'register', text, {});
          expectNot5xx(answer.status, body, answer.body);
          if (answer.status >= 400) {
            expect(await writeCounts(db())).toEqual(before);
            return;
          }
          // Accepted: created, with the profile complete, holding exactly what was sent.
          accepted += 1;
          expect(answer.status).toBe(201);
          // What was sent is what the wire carried: the body text, parsed.
          const input = JSON.parse(text) as Record<string, unknown>;
          const { rows } = await db().query(
            'select email, full_name, username, avatar_url, metadata from public.user_profiles where user_id = $1',
            [(answer.body as RegisterResult).user.id],
          );
          expect(rows).toEqual([
            {
              email: (input.email as string).trim().toLowerCase(),
              full_name: input.full_name === undefined ? null : (input.full_name as string).trim(),
              username: input.username ?? null,
              avatar_url: input.avatar_url ?? null,
              metadata: input.metadata ?? {},
            },
          ]);
          expect((answer.body as RegisterResult).user.email).toBe(
            (input.email as string).trim().toLowerCase(),
          );
        }),
        PARAMETERS,
      );
      expect(generated).toBeGreaterThanOrEqual(FUZZ_RUNS);
      // The generators are not all rejection: a good share of bodies go all the way through.
      expect(accepted).toBeGreaterThanOrEqual(Math.floor(FUZZ_RUNS / 20));
    },
    TIMEOUT,
  );
});

describe('fuzzing ensure-profile with generated bodies', () => {
  let handler: Handler;
  beforeAll(() => {
    handler = createEnsureProfileHandler({ config: api().config() });
  });

  it(
    `answers ${FUZZ_RUNS} generated bodies from the service role with 2xx or 4xx only, writing nothing for a 4xx`,
    async () => {
      let generated = 0;
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(ensureBody, async (body) => {
          generated += 1;
          const text = body.kind === 'not JSON'
            ? body.text
            : expandDeep(JSON.stringify(resolve(body.value)) ?? 'null');
          const before = await writeCounts(db());
          const answer = await send<EnsureProfileAnswer | ErrorBody>(
            handler,
            'ensure-profile',
            text,
            { authorization: `Bearer ${api().stack.keys.secretKey}` },
          );
          expectNot5xx(answer.status, { ...body, text }, answer.body);
          if (answer.status >= 400) {
            expect(await writeCounts(db())).toEqual(before);
            return;
          }
          accepted += 1;
          expect(answer.status).toBe(200);
          expect(existingUsers).toContain((answer.body as EnsureProfileAnswer).user_id);
          expect((answer.body as EnsureProfileAnswer).profile!.user_id).toBe(
            (answer.body as EnsureProfileAnswer).user_id,
          );
        }),
        PARAMETERS,
      );
      expect(generated).toBeGreaterThanOrEqual(FUZZ_RUNS);
      expect(accepted).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  it(
    `answers ${FUZZ_RUNS} generated Database Webhook bodies (right secret) with 2xx or 4xx only, writing nothing for a 4xx`,
    async () => {
      let generated = 0;
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(webhookBody, async (body) => {
          generated += 1;
          const text = body.kind === 'not JSON'
            ? body.text
            : expandDeep(JSON.stringify(resolve(body.value)) ?? 'null');
          const before = await writeCounts(db());
          const answer = await send<EnsureProfileAnswer | ErrorBody>(
            handler,
            'ensure-profile',
            text,
            { 'x-webhook-secret': api().stack.functionSecrets.PROFILE_WEBHOOK_SECRET! },
          );
          expectNot5xx(answer.status, { ...body, text }, answer.body);
          if (answer.status >= 400) {
            expect(await writeCounts(db())).toEqual(before);
            return;
          }
          accepted += 1;
          expect(answer.status).toBe(200);
          expect(existingUsers).toContain((answer.body as EnsureProfileAnswer).user_id);
        }),
        PARAMETERS,
      );
      expect(generated).toBeGreaterThanOrEqual(FUZZ_RUNS);
      expect(accepted).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  it(
    `answers ${FUZZ_RUNS} generated, correctly signed Auth Hook payloads with 2xx or 4xx only; a refusal writes its one audit row, and nothing else writes anything`,
    async () => {
      const webhook = new Webhook(
        api().stack.functionSecrets.AUTH_HOOK_SECRET!.replace(/^v1,/, ''),
      );
      let generated = 0;
      let verdicts = 0;
      await fc.assert(
        fc.asyncProperty(hookBody, async (body) => {
          generated += 1;
          const id = `msg_${randomUUID()}`;
          const now = new Date();
          const before = await writeCounts(db());
          const answer = await send<HookRefusal | ErrorBody | null>(
            handler,
            'ensure-profile',
            body.text,
            {
              'webhook-id': id,
              'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
              'webhook-signature': webhook.sign(id, now, body.text),
            },
          );
          expectNot5xx(answer.status, body, answer.body);
          // The signature held, so a JSON body is judged on its content; text that is not JSON
          // fails inside the Standard Webhooks verifier (it parses the payload) and is a 401.
          if (body.kind === 'not JSON') expect([400, 401, 413]).toContain(answer.status);
          else expect(answer.status).not.toBe(401);
          let refusals = 0;
          if (answer.status === 200) {
            verdicts += 1;
            refusals = 1;
            expect((answer.body as HookRefusal).error.http_code).toBeGreaterThanOrEqual(400);
            expect((answer.body as HookRefusal).error.http_code).toBeLessThan(500);
            // The refusal is in the audit trail under the delivery's request id, as `refused` from the hook.
            const row = await db().one<{ source: string; outcome: string }>(
              'select source, outcome from private.audit_logs order by id desc limit 1',
            );
            expect(row).toEqual({ source: 'hook', outcome: 'refused' });
          }
          expect(await writeCounts(db())).toEqual({ ...before, audit: before.audit + refusals });
        }),
        PARAMETERS,
      );
      expect(generated).toBeGreaterThanOrEqual(FUZZ_RUNS);
      expect(verdicts).toBeGreaterThan(0);
    },
    TIMEOUT,
  );
});

// ============================================================================
// Inputs the fuzzer found, pinned (each stays red until its fix lands; see the report)
// ============================================================================
describe('register inputs the database cannot store as given', () => {
  let handler: Handler;
  beforeAll(() => {
    handler = createRegisterHandler({
      config: api().config({
        REGISTER_MODE: 'admin',
        REGISTER_RATE_LIMIT_MAX: '1000000',
        REGISTER_UNATTRIBUTED_RATE_LIMIT_MAX: '1000000',
      }),
    });
  });

  const fresh = () => `pinned.${randomUUID().slice(0, 8)}@example.test`;
  const CASES: Array<[string, () => Record<string, unknown>, string]> = [
    [
      'a full_name containing U+0000',
      () => ({ email: fresh(), password: 'secret-123', full_name: 'Ada\u0000Lovelace' }),
      'full_name',
    ],
    [
      'a full_name containing a lone surrogate',
      () => ({ email: fresh(), password: 'secret-123', full_name: 'Ada \ud800' }),
      'full_name',
    ],
    [
      'an avatar_url containing U+0000',
      () => ({
        email: fresh(),
        password: 'secret-123',
        avatar_url: 'https://example.test/\u0000.png',
      }),
      'avatar_url',
    ],
    [
      'a metadata string containing U+0000',
      () => ({ email: fresh(), password: 'secret-123', metadata: { note: 'a\u0000b' } }),
      'metadata',
    ],
    [
      'a metadata key containing U+0000',
      () => ({ email: fresh(), password: 'secret-123', metadata: { 'k\u0000': 1 } }),
      'metadata',
    ],
    [
      'a metadata string containing a lone surrogate',
      () => ({ email: fresh(), password: 'secret-123', metadata: { note: '\udc00' } }),
      'metadata',
    ],
    // 11 KB as JSON.stringify counts it, over 16 KB as PostgreSQL prints jsonb ("0, 0, …").
    [
      'metadata within 16384 bytes of JSON but over 16384 bytes as PostgreSQL prints it',
      () => ({ email: fresh(), password: 'secret-123', metadata: { list: Array(5_500).fill(0) } }),
      'metadata',
    ],
    [
      'a metadata key "__proto__", which JavaScript would silently drop',
      () => ({
        email: fresh(),
        password: 'secret-123',
        metadata: JSON.parse('{"__proto__": {"polluted": true}, "kept": 1}'),
      }),
      'metadata',
    ],
  ];

  for (const [what, make, field] of CASES) {
    it(`${what} is refused with 400 validation_failed naming ${field}, and no user is created`, async () => {
      const before = await writeCounts(db());
      const body = make();
      const answer = await send<Reply<RegisterResult>>(
        handler,
        'register',
        JSON.stringify(body),
        {},
      );
      expect({
        status: answer.status,
        code: answer.body?.error?.code,
        field: Object.keys(answer.body?.error?.fields ?? {}),
      }).toEqual({
        status: 400,
        code: 'validation_failed',
        field: [field],
      });
      expect(await writeCounts(db())).toEqual(before);
    });
  }

  it('the same hostile values without the unstorable parts are stored verbatim (SQL, HTML, RTL, zero-width, astral)', async () => {
    const body = {
      email: `  Pinned.${randomUUID().slice(0, 8)}@Example.TEST `,
      password: "'; drop table auth.users; --",
      full_name: "  \u202eRobert'); DROP TABLE students;-- <script>alert(1)</script> \u200b𝕳👩‍👩‍👧  ",
      username: 'bobby_tables',
      avatar_url: 'https://example.test/<img/src=x/onerror=alert(1)>',
      metadata: {
        "'; drop table x; --": '<b>bold</b>',
        nested: { rtl: '\u202e\u2067', zw: '\u200b\u200d\ufeff', astral: '𒀀😀' },
        n: [1.5, -0.25, 1e21, true, null],
      },
    };
    const answer = await send<Reply<RegisterResult>>(handler, 'register', JSON.stringify(body), {});
    expect({ status: answer.status, error: answer.body?.error }).toEqual({
      status: 201,
      error: undefined,
    });
    const row = await db().one(
      'select email, full_name, username, avatar_url, metadata from public.user_profiles where user_id = $1',
      [(answer.body as RegisterResult).user.id],
    );
    expect(row).toEqual({
      email: body.email.trim().toLowerCase(),
      full_name: body.full_name.trim(),
      username: body.username,
      avatar_url: body.avatar_url,
      metadata: body.metadata,
    });
  });
});
