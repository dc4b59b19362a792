// Hostile and broken credentials against ensure-profile (a real Deno worker behind the gateway)
// and /rest/v1 (the PostgREST stand-in): each is refused with 401 or 403 and writes nothing.
//
// What this suite cannot refuse, by design: a token signed with the project's own ES256 signing
// key is, to PostgREST, a valid token, whatever role it names. A token minted with that key and
// "role": "service_role" gets the service role at /rest/v1, exactly as the secret key does, so
// the signing key must be guarded like the secret key (it never leaves Supabase Auth). Such a
// token is still refused by ensure-profile (a user token must say role "authenticated"), and a
// token with role service_role signed by any OTHER key is refused everywhere — both tested below.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { signEs256, signHs256 } from '../../dev/keys.ts';
import type { EnsureProfileAnswer, PublicHealth, Reply, RestError } from '../helpers/bodies.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import {
  type Answer,
  attackerKey,
  b64url,
  fingerprint,
  http,
  JSON_TYPE,
  type SignedInUser,
  signedInUser,
} from './helpers.ts';

const db = useTestDatabase();
const api = useLocalApi(db, { functions: true });

/** The victim of every REST attempt (a forged token names it as sub); it has a profile. */
let victim: SignedInUser;
/** An auth user without a profile: what an accepted ensure-profile call would create. */
let orphan: SignedInUser;

beforeAll(async () => {
  victim = await signedInUser(db(), api(), { prefix: 'victim' });
  orphan = await signedInUser(db(), api(), { withoutProfile: true, prefix: 'orphan' });
});

/** Claims as the Auth stand-in puts them in an access token, with overrides. */
function claims(sub: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: `${api().stack.apiUrl}/auth/v1`,
    sub,
    aud: 'authenticated',
    exp: now + 3600,
    iat: now,
    email: 'forged@example.test',
    role: 'authenticated',
    aal: 'aal1',
    session_id: randomUUID(),
    is_anonymous: false,
    ...overrides,
  };
}

const signingKey = () => api().stack.keys.signingKey;
const now = () => Math.floor(Date.now() / 1000);

interface TokenCase {
  name: string;
  /** A token naming `sub`. */
  make: (sub: string) => Promise<string>;
  /** What ensure-profile answers (a bodiless POST, i.e. "ensure my profile"). */
  ensure: { status: number; code: string };
  /** What /rest/v1 answers, or null where PostgREST does not judge this (see the comments). */
  rest: { status: number; code: string } | null;
}

const INVALID_TOKEN = { status: 401, code: 'invalid_token' };
const JWT_REJECTED = { status: 401, code: 'PGRST301' };

const TOKEN_CASES: TokenCase[] = [
  {
    name: 'an unsigned token (alg "none")',
    make: async (sub) => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims(sub))}.`,
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name: 'an unsigned token (alg "none") claiming role service_role',
    make: async (sub) =>
      `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims(sub, { role: 'service_role' }))}.`,
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name: 'a token signed by another ES256 key under the project key id',
    make: async (sub) => await signEs256(claims(sub), await attackerKey(signingKey().kid!)),
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name: 'a token signed by another ES256 key under an unknown key id',
    make: async (sub) => await signEs256(claims(sub), await attackerKey('attacker-key')),
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name: 'an HS256 token signed with a wrong secret',
    make: async (sub) =>
      await signHs256(claims(sub), 'not-the-project-jwt-secret-but-at-least-32-chars'),
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name:
      "a token with role service_role signed by an attacker's ES256 key under the project key id",
    make: async (sub) =>
      await signEs256(claims(sub, { role: 'service_role' }), await attackerKey(signingKey().kid!)),
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name: "a token with role service_role signed by an attacker's HS256 secret",
    make: async () =>
      await signHs256(
        { iss: 'supabase-demo', role: 'service_role', exp: now() + 3600 },
        'attacker-secret-that-is-at-least-32-characters',
      ),
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name: 'an expired token signed with the project key',
    make: async (sub) =>
      await signEs256(claims(sub, { iat: now() - 7200, exp: now() - 3600 }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    name: 'a token signed with the project key that is not valid for another hour (nbf)',
    make: async (sub) => await signEs256(claims(sub, { nbf: now() + 3600 }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
  {
    // PostgREST checks aud only when jwt-aud is configured, which Supabase does not do: only the
    // function judges the audience.
    name: 'a token signed with the project key for another audience',
    make: async (sub) => await signEs256(claims(sub, { aud: 'some-other-service' }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: null,
  },
  {
    // See the comment at the top: PostgREST would grant this token the service role.
    name: 'a token signed with the project key whose role claim is forged to service_role',
    make: async (sub) => await signEs256(claims(sub, { role: 'service_role' }), signingKey()),
    ensure: { status: 403, code: 'forbidden' },
    rest: null,
  },
  // RFC 7519: exp, nbf and iat are NumericDates. A string passes supabase-js getClaims (it
  // compares exp with <=) and skipped the function's own nbf check; PostgREST's judgement of
  // such tokens is not what this suite checks.
  {
    name: 'a token signed with the project key whose nbf is a string',
    make: async (sub) => await signEs256(claims(sub, { nbf: String(now() - 60) }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: null,
  },
  {
    name: 'a token signed with the project key whose nbf is a far-future string',
    make: async (sub) => await signEs256(claims(sub, { nbf: String(now() + 86400) }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: null,
  },
  {
    name: 'a token signed with the project key whose exp is a string',
    make: async (sub) => await signEs256(claims(sub, { exp: String(now() + 3600) }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: null,
  },
  {
    name: 'a token signed with the project key whose iat is a string',
    make: async (sub) => await signEs256(claims(sub, { iat: String(now()) }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: null,
  },
  {
    name: 'a token signed with the project key whose nbf is null',
    make: async (sub) => await signEs256(claims(sub, { nbf: null }), signingKey()),
    ensure: INVALID_TOKEN,
    rest: null,
  },
  {
    name: 'a token with a garbage payload',
    make: async () =>
      `${b64url({ alg: 'ES256', typ: 'JWT', kid: signingKey().kid })}.bm90IGpzb24.c2lnbmF0dXJl`,
    ensure: INVALID_TOKEN,
    rest: JWT_REJECTED,
  },
];

/** PostgREST's answer as read here: the members of its error, which rows lack (read with `?.`). */
type RestReply = Partial<RestError> | null;

async function ensureAs(
  token: string,
  body?: unknown,
): Promise<Answer<Reply<EnsureProfileAnswer>>> {
  return await http<Reply<EnsureProfileAnswer>>(api(), '/functions/v1/ensure-profile', {
    method: 'POST',
    headers: {
      apikey: api().stack.keys.publishableKey,
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : JSON_TYPE),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** What a victim's session could do: rename its profile. A forged token tries it. */
async function renameVictimAs(token: string): Promise<Answer<RestReply>> {
  return await http<RestReply>(api(), `/rest/v1/user_profiles?user_id=eq.${victim.id}`, {
    method: 'PATCH',
    headers: {
      apikey: api().stack.keys.publishableKey,
      authorization: `Bearer ${token}`,
      ...JSON_TYPE,
      prefer: 'return=representation',
    },
    body: JSON.stringify({ full_name: 'Owned by a forged token' }),
  });
}

/** What only the service role could do: insert a profile for the orphan. */
async function insertOrphanProfileAs(token: string): Promise<Answer<RestReply>> {
  return await http<RestReply>(api(), '/rest/v1/user_profiles', {
    method: 'POST',
    headers: {
      apikey: api().stack.keys.publishableKey,
      authorization: `Bearer ${token}`,
      ...JSON_TYPE,
      prefer: 'return=representation',
    },
    body: JSON.stringify({ user_id: orphan.id, email: orphan.email, created_via: 'ensure' }),
  });
}

async function orphanProfiles(): Promise<number> {
  return (await db().one<{ n: number }>(
    'select count(*)::int as n from public.user_profiles where user_id = $1',
    [orphan.id],
  )).n;
}

describe('the harness itself', () => {
  it('a real access token renames its own profile at /rest/v1 (200, one row) and ensure-profile answers 200 existed', async () => {
    const rest = await renameVictimAs(victim.accessToken);
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual([
      expect.objectContaining({ user_id: victim.id, full_name: 'Owned by a forged token' }),
    ]);
    await db().query('update public.user_profiles set full_name = null where user_id = $1', [
      victim.id,
    ]);
    const ensured = await ensureAs(victim.accessToken);
    expect({ status: ensured.status, profile_status: ensured.body?.profile_status }).toEqual({
      status: 200,
      profile_status: 'existed',
    });
  });

  it('a token signed with the project key for the orphan would create its profile, so the orphan is a real tripwire', async () => {
    // Proven on a second orphan: the first must stay profile-less for the cases below.
    const spare = await signedInUser(db(), api(), { withoutProfile: true, prefix: 'spare' });
    const token = await signEs256(claims(spare.id), signingKey());
    const answer = await ensureAs(token);
    expect({ status: answer.status, profile_status: answer.body?.profile_status }).toEqual({
      status: 200,
      profile_status: 'created',
    });
  });
});

describe('ensure-profile (Deno worker) refuses forged and broken tokens', () => {
  for (const tokenCase of TOKEN_CASES) {
    it(`${tokenCase.name} gets ${tokenCase.ensure.status} ${tokenCase.ensure.code} and creates no profile`, async () => {
      const before = await fingerprint(db());
      const token = await tokenCase.make(orphan.id);
      const answer = await ensureAs(token);
      expect({ status: answer.status, code: answer.body?.error?.code }).toEqual(tokenCase.ensure);
      // Naming the orphan explicitly changes nothing either.
      const named = await ensureAs(token, { user_id: orphan.id });
      expect({ status: named.status, code: named.body?.error?.code }).toEqual(tokenCase.ensure);
      expect(await orphanProfiles()).toBe(0);
      expect(await fingerprint(db())).toEqual(before);
    });
  }
});

describe('/rest/v1 refuses forged and broken tokens', () => {
  for (const tokenCase of TOKEN_CASES.filter((c) => c.rest !== null)) {
    it(`${tokenCase.name} gets ${tokenCase.rest!.status} ${tokenCase.rest!.code} for an update and an insert, and writes nothing`, async () => {
      const before = await fingerprint(db());
      const token = await tokenCase.make(victim.id);
      const rename = await renameVictimAs(token);
      expect({ status: rename.status, code: rename.body?.code }).toEqual(tokenCase.rest);
      const insert = await insertOrphanProfileAs(token);
      expect({ status: insert.status, code: insert.body?.code }).toEqual(tokenCase.rest);
      const read = await http<RestReply>(
        api(),
        `/rest/v1/user_profiles?select=user_id&user_id=eq.${victim.id}`,
        {
          headers: { apikey: api().stack.keys.publishableKey, authorization: `Bearer ${token}` },
        },
      );
      expect({ status: read.status, code: read.body?.code }).toEqual(tokenCase.rest);
      expect(await fingerprint(db())).toEqual(before);
    });
  }
});

describe('a publishable (or anon) key where a secret key is needed', () => {
  it('ensure-profile with the publishable key as bearer naming a user gets 401 invalid_token and creates no profile', async () => {
    const before = await fingerprint(db());
    const answer = await ensureAs(api().stack.keys.publishableKey, { user_id: orphan.id });
    expect({ status: answer.status, code: answer.body?.error?.code }).toEqual(INVALID_TOKEN);
    expect(await fingerprint(db())).toEqual(before);
  });

  it('ensure-profile with the legacy anon key as bearer naming a user gets 401 invalid_token and creates no profile', async () => {
    const before = await fingerprint(db());
    const answer = await ensureAs(api().stack.keys.anonKey, { user_id: orphan.id });
    expect({ status: answer.status, code: answer.body?.error?.code }).toEqual(INVALID_TOKEN);
    expect(await fingerprint(db())).toEqual(before);
  });

  it('ensure-profile with a user token naming another user gets 403 forbidden and creates no profile', async () => {
    const before = await fingerprint(db());
    const answer = await ensureAs(victim.accessToken, { user_id: orphan.id });
    expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({
      status: 403,
      code: 'forbidden',
    });
    expect(await fingerprint(db())).toEqual(before);
  });

  it('profile-health with the publishable key as x-health-token gets 401 unauthorized, and as bearer only the public body', async () => {
    const before = await fingerprint(db());
    const asToken = await http<Reply<PublicHealth>>(api(), '/functions/v1/profile-health', {
      headers: { 'x-health-token': api().stack.keys.publishableKey },
    });
    expect({ status: asToken.status, code: asToken.body?.error?.code }).toEqual({
      status: 401,
      code: 'unauthorized',
    });
    const asBearer = await http<PublicHealth>(api(), '/functions/v1/profile-health', {
      headers: {
        apikey: api().stack.keys.publishableKey,
        authorization: `Bearer ${api().stack.keys.publishableKey}`,
      },
    });
    // The public verdict: down (503), because this file's orphan has no profile and counts at once.
    expect(asBearer.status).toBe(503);
    expect(Object.keys(asBearer.body).sort()).toEqual(['checked_at', 'status']);
    expect(asBearer.body.status).toBe('down');
    expect(await fingerprint(db())).toEqual(before);
  });

  it('profile-health metrics (?format=prometheus) with the publishable key as bearer get 401 unauthorized', async () => {
    const answer = await http<Reply<PublicHealth>>(
      api(),
      '/functions/v1/profile-health?format=prometheus',
      {
        headers: {
          apikey: api().stack.keys.publishableKey,
          authorization: `Bearer ${api().stack.keys.publishableKey}`,
        },
      },
    );
    expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({
      status: 401,
      code: 'unauthorized',
    });
  });

  it('profile-health with the health token of a wrong value gets 401 unauthorized', async () => {
    const answer = await http<Reply<PublicHealth>>(api(), '/functions/v1/profile-health', {
      headers: { 'x-health-token': 'wrong-health-token-of-enough-length' },
    });
    expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({
      status: 401,
      code: 'unauthorized',
    });
  });

  it('the service-only RPC ensure_user_profile with the publishable key gets 401 42501 and creates no profile', async () => {
    const before = await fingerprint(db());
    const answer = await http<RestReply>(api(), '/rest/v1/rpc/ensure_user_profile', {
      method: 'POST',
      headers: { apikey: api().stack.keys.publishableKey, ...JSON_TYPE },
      body: JSON.stringify({ p_user_id: orphan.id }),
    });
    expect({ status: answer.status, code: answer.body?.code }).toEqual({
      status: 401,
      code: '42501',
    });
    expect(await fingerprint(db())).toEqual(before);
  });

  it("Auth's admin API (create user) with the publishable key gets 403 not_admin and creates no user", async () => {
    const before = await fingerprint(db());
    const email = `admin-${randomUUID().slice(0, 8)}@example.test`;
    const answer = await http(api(), '/auth/v1/admin/users', {
      method: 'POST',
      headers: {
        apikey: api().stack.keys.publishableKey,
        authorization: `Bearer ${api().stack.keys.publishableKey}`,
        ...JSON_TYPE,
      },
      body: JSON.stringify({ email, password: `pw-${randomUUID()}`, email_confirm: true }),
    });
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ error_code: 'not_admin' });
    expect(await fingerprint(db())).toEqual(before);
  });

  it('an unknown sb_secret_ key is refused by the gateway with 401 and writes nothing', async () => {
    const before = await fingerprint(db());
    const answer = await insertOrphanProfileAs('sb_secret_not_this_projects_key');
    expect({ status: answer.status, message: answer.body?.message }).toEqual({
      status: 401,
      message: 'Invalid API key',
    });
    const ensured = await ensureAs('sb_secret_not_this_projects_key', { user_id: orphan.id });
    expect({ status: ensured.status, code: ensured.body?.error?.code }).toEqual(INVALID_TOKEN);
    expect(await fingerprint(db())).toEqual(before);
  });
});
