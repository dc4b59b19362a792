// The access matrix through the local stack's real HTTP paths: /rest/v1 (PostgREST stand-in
// behind the gateway's key mapping) and /functions/v1 (the three functions as real Deno
// workers), for every kind of credential an app or an attacker can send. Each cell has its
// expected status in the tables below; a cell expected to be refused must also leave every table
// exactly as it was. tests/db/access.test.ts covers the same grants at the SQL level.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import {
  type Answer,
  fingerprint,
  http,
  JSON_TYPE,
  type SignedInUser,
  signedInUser,
} from './helpers.ts';

// Created at collection time so the callable surface can be read from pg_proc and a new function
// gets its rows in the matrix without anyone touching this file.
const database = await createTestDatabase();
afterAll(async () => {
  await database.close();
});
const db = () => database;
const api = useLocalApi(db, { functions: true, functionEnv: { REGISTER_RATE_LIMIT_MAX: '1000' } });

interface PublicFunction {
  name: string;
  signature: string;
  argNames: string[];
  argTypes: string[];
  required: number;
  returns: string;
}

const PUBLIC_FUNCTIONS: PublicFunction[] = (
  await database.query<PublicFunction>(
    `select p.proname as name,
            p.oid::regprocedure::text as signature,
            coalesce(p.proargnames[1:p.pronargs], '{}') as "argNames",
            coalesce((select array_agg(format_type(t, null) order by i)
                        from unnest(p.proargtypes::oid[]) with ordinality as a(t, i)), '{}') as "argTypes",
            p.pronargs - p.pronargdefaults as required,
            format_type(p.prorettype, null) as returns
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and pg_get_userbyid(p.proowner) = 'postgres' and p.prokind = 'f'
      order by p.proname, p.oid::regprocedure::text`,
  )
).rows;

// ============================================================================
// Who calls
// ============================================================================
type Actor = 'anon' | 'publishable' | 'own' | 'other' | 'secret' | 'service_role';
const ACTOR_LABEL: Record<Actor, string> = {
  anon: 'the legacy anon key',
  publishable: 'the publishable key',
  own: "a user's access token on its own row",
  other: "a user's access token on another user's row",
  secret: 'the secret key',
  service_role: 'the legacy service_role key',
};

interface Users {
  me: SignedInUser;
  other: SignedInUser;
  /** No profile: the target of every refused INSERT and ensure-profile, and its own inserter. */
  orphan: SignedInUser;
  /** No profile: what the secret key and the service_role key insert and ensure. */
  orphanForSecret: SignedInUser;
  orphanForService: SignedInUser;
  orphanForEnsure: SignedInUser;
  /** Profiles the secret key and the service_role key delete. */
  victimForSecret: SignedInUser;
  victimForService: SignedInUser;
}
let users: Users;

/** The headers an app (or an attacker) sends with each credential, as supabase-js would. */
function headersOf(actor: Actor, user: SignedInUser = users.me): Record<string, string> {
  const { keys } = api().stack;
  switch (actor) {
    case 'anon':
      return { apikey: keys.anonKey, authorization: `Bearer ${keys.anonKey}` };
    case 'publishable':
      return { apikey: keys.publishableKey, authorization: `Bearer ${keys.publishableKey}` };
    case 'own':
    case 'other':
      return { apikey: keys.publishableKey, authorization: `Bearer ${user.accessToken}` };
    case 'secret':
      return { apikey: keys.secretKey, authorization: `Bearer ${keys.secretKey}` };
    case 'service_role':
      return { apikey: keys.serviceRoleKey, authorization: `Bearer ${keys.serviceRoleKey}` };
  }
}

// ============================================================================
// The cells
// ============================================================================
interface Expected {
  status: number;
  /** How many rows a PostgREST answer carries. */
  rows?: number;
  /** Checks on the answer beyond the status. */
  check?: (answer: Answer) => void;
}

interface Cell {
  sentence: string;
  /** Refused (or a no-op): every table must be unchanged afterwards. */
  denied: boolean;
  expected: Expected;
  run: () => Promise<Answer>;
}

const rows = (status: number, count: number): Expected => ({ status, rows: count });
const status = (code: number, check?: (answer: Answer) => void): Expected => ({
  status: code,
  ...(check ? { check } : {}),
});

function sentenceOf(actor: Actor, action: string, expected: Expected, denied: boolean): string {
  const outcome = expected.rows === undefined
    ? `${expected.status}`
    : `${expected.status} with ${expected.rows} row${expected.rows === 1 ? '' : 's'}`;
  return `${ACTOR_LABEL[actor]} ${action} gets ${outcome}${denied ? ' and writes nothing' : ''}`;
}

const ACTORS: Actor[] = ['anon', 'publishable', 'own', 'other', 'secret', 'service_role'];

// Which user row each actor targets in the user_profiles table operations.
function target(actor: Actor, operation: 'select' | 'insert' | 'update' | 'delete'): SignedInUser {
  if (operation === 'insert') {
    return actor === 'secret'
      ? users.orphanForSecret
      : actor === 'service_role'
      ? users.orphanForService
      : users.orphan;
  }
  if (operation === 'delete') {
    if (actor === 'secret') return users.victimForSecret;
    if (actor === 'service_role') return users.victimForService;
  }
  return actor === 'other' ? users.other : users.me;
}

// The token each actor sends for the table operations: an INSERT by `own` is the orphan inserting
// its own profile; `other` is always me, acting on someone else's row.
function tokenUser(
  actor: Actor,
  operation: 'select' | 'insert' | 'update' | 'delete',
): SignedInUser {
  return actor === 'own' && operation === 'insert' ? users.orphan : users.me;
}

const TABLE_EXPECTED: Record<string, { action: string; expected: Record<Actor, Expected> }> = {
  select: {
    action: 'selecting a profile from /rest/v1/user_profiles',
    expected: {
      anon: status(401),
      publishable: status(401),
      own: rows(200, 1),
      other: rows(200, 0),
      secret: rows(200, 1),
      service_role: rows(200, 1),
    },
  },
  insert: {
    action: 'inserting a profile into /rest/v1/user_profiles',
    expected: {
      anon: status(401),
      publishable: status(401),
      own: status(403),
      other: status(403),
      secret: rows(201, 1),
      service_role: rows(201, 1),
    },
  },
  update: {
    action: 'updating full_name through /rest/v1/user_profiles',
    expected: {
      anon: status(401),
      publishable: status(401),
      own: rows(200, 1),
      other: rows(200, 0),
      secret: rows(200, 1),
      service_role: rows(200, 1),
    },
  },
  updateEmail: {
    action: 'updating email (not a user-editable column) through /rest/v1/user_profiles',
    expected: {
      anon: status(401),
      publishable: status(401),
      own: status(403),
      other: status(403),
      secret: rows(200, 1),
      service_role: rows(200, 1),
    },
  },
  delete: {
    action: 'deleting a profile through /rest/v1/user_profiles',
    expected: {
      anon: status(401),
      publishable: status(401),
      own: status(403),
      other: status(403),
      secret: rows(200, 1),
      service_role: rows(200, 1),
    },
  },
};

function tableRequest(kind: string, actor: Actor): () => Promise<Answer> {
  const operation = kind === 'updateEmail'
    ? 'update'
    : (kind as 'select' | 'insert' | 'update' | 'delete');
  return async () => {
    const who = target(actor, operation);
    const headers = {
      ...headersOf(actor, tokenUser(actor, operation)),
      ...JSON_TYPE,
      prefer: 'return=representation',
    };
    const filter = `user_id=eq.${who.id}`;
    switch (kind) {
      case 'select':
        return await http(api(), `/rest/v1/user_profiles?select=user_id,full_name&${filter}`, {
          headers,
        });
      case 'insert':
        return await http(api(), '/rest/v1/user_profiles', {
          method: 'POST',
          headers,
          body: JSON.stringify({
            user_id: who.id,
            email: who.email,
            full_name: `Inserted by ${actor}`,
            created_via: 'ensure',
          }),
        });
      case 'update':
        return await http(api(), `/rest/v1/user_profiles?${filter}`, {
          method: 'PATCH',
          headers,
          body: JSON.stringify({ full_name: `Renamed by ${actor}` }),
        });
      case 'updateEmail':
        return await http(api(), `/rest/v1/user_profiles?${filter}`, {
          method: 'PATCH',
          headers,
          body: JSON.stringify({ email: `${actor}@attacker.test` }),
        });
      default:
        return await http(api(), `/rest/v1/user_profiles?${filter}`, { method: 'DELETE', headers });
    }
  };
}

const TABLE_CELLS: Cell[] = Object.entries(TABLE_EXPECTED).flatMap(([kind, { action, expected }]) =>
  ACTORS.map((actor) => {
    const want = expected[actor];
    // Reads and refused writes must leave every table as it was.
    const denied = want.status >= 400 || want.rows === 0 || kind === 'select';
    return {
      sentence: sentenceOf(actor, action, want, denied),
      denied,
      expected: want,
      run: tableRequest(kind, actor),
    };
  })
);

// ---------------------------------------------------------------------------- RPC
// Arguments every function can be called with: its required parameters, typed by their declared
// type, plus per-function choices that keep service-role calls harmless (a dry-run backfill).
function argumentValue(type: string): unknown {
  switch (type) {
    case 'uuid':
      return users.me.id;
    case 'text':
      return 'security-matrix';
    case 'integer':
    case 'bigint':
    case 'smallint':
      return 1;
    case 'boolean':
      return true;
    case 'interval':
      return '1 hour';
    case 'jsonb':
    case 'json':
      return {};
    case 'timestamp with time zone':
      return new Date().toISOString();
    default:
      throw new Error(
        `the access matrix has no sample value for a parameter of type ${type}: add one to argumentValue()`,
      );
  }
}

const ARGUMENT_OVERRIDES: Record<string, () => Record<string, unknown>> = {
  backfill_missing_profiles: () => ({ p_dry_run: true }),
  enqueue_profile_repair: () => ({
    p_user_id: users.me.id,
    p_source: 'ensure',
    p_reason: 'security matrix',
  }),
  // A refusal's reason is a code such as username_taken, not free text.
  record_signup_refusal: () => ({
    p_user_id: users.me.id,
    p_reason: 'security_matrix',
    p_http_code: 409,
  }),
};

// Parameters whose name says more than their type does.
const PARAMETER_VALUES: Record<string, unknown> = {
  p_request_hash: 'ab'.repeat(32),
  p_status: 201,
};

function rpcArguments(fn: PublicFunction): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (let i = 0; i < fn.required; i++) {
    const name = fn.argNames[i]!;
    args[name] = name in PARAMETER_VALUES ? PARAMETER_VALUES[name] : argumentValue(fn.argTypes[i]!);
  }
  return { ...args, ...(ARGUMENT_OVERRIDES[fn.name]?.() ?? {}) };
}

// Every public function is service-role only: 401 for the key-only (anon) callers, 403 for a
// signed-in user, 200 for both service keys (204 for a function returning void).
const RPC_EXPECTED: Record<Exclude<Actor, 'other'>, number> = {
  anon: 401,
  publishable: 401,
  own: 403,
  secret: 200,
  service_role: 200,
};
const rpcStatus = (fn: PublicFunction, actor: keyof typeof RPC_EXPECTED) =>
  RPC_EXPECTED[actor] === 200 && fn.returns === 'void' ? 204 : RPC_EXPECTED[actor];

const RPC_CELLS: Cell[] = PUBLIC_FUNCTIONS.flatMap((fn) =>
  (Object.keys(RPC_EXPECTED) as Array<keyof typeof RPC_EXPECTED>).map((actor) => {
    const code = rpcStatus(fn, actor);
    const denied = code >= 400;
    const expected = status(code, (answer) => {
      if (denied) {
        expect(answer.body).toMatchObject({
          code: '42501',
          message: `permission denied for function ${fn.name}`,
        });
      }
    });
    return {
      sentence: `${
        actor === 'own' ? "a user's access token" : ACTOR_LABEL[actor]
      } calling POST /rest/v1/rpc/${fn.name} (${fn.signature}) gets ${code}${
        denied ? ' and writes nothing' : ''
      }`,
      denied,
      expected,
      run: async () =>
        await http(api(), `/rest/v1/rpc/${fn.name}`, {
          method: 'POST',
          headers: { ...headersOf(actor), ...JSON_TYPE },
          body: JSON.stringify(rpcArguments(fn)),
        }),
    };
  })
);

// ---------------------------------------------------------------------------- schema private
// The private schema is not exposed: PostgREST refuses the profile itself (406 PGRST106) whoever
// asks, and the tables are not in public either (404 PGRST205).
const PRIVATE_TABLES = ['audit_logs', 'settings', 'repair_queue'];
const PRIVATE_CELLS: Cell[] = PRIVATE_TABLES.flatMap((table) =>
  ACTORS.filter((actor) => actor !== 'other').flatMap((actor): Cell[] => [
    {
      sentence: `${
        actor === 'own' ? "a user's access token" : ACTOR_LABEL[actor]
      } reading private.${table} with Accept-Profile: private gets 406 PGRST106 and writes nothing`,
      denied: true,
      expected: status(406, (answer) => expect(answer.body).toMatchObject({ code: 'PGRST106' })),
      run: async () =>
        await http(api(), `/rest/v1/${table}?select=*`, {
          headers: { ...headersOf(actor), 'accept-profile': 'private' },
        }),
    },
    {
      sentence: `${
        actor === 'own' ? "a user's access token" : ACTOR_LABEL[actor]
      } reading /rest/v1/${table} from the public schema gets 404 PGRST205 and writes nothing`,
      denied: true,
      expected: status(404, (answer) => expect(answer.body).toMatchObject({ code: 'PGRST205' })),
      run: async () =>
        await http(api(), `/rest/v1/${table}?select=*`, { headers: headersOf(actor) }),
    },
  ])
);

// ---------------------------------------------------------------------------- functions
const PUBLIC_HEALTH_KEYS = ['checked_at', 'status'];
const FULL_HEALTH_KEYS = ['checked_at', 'checks', 'stats', 'status'];

const FUNCTION_CELLS: Cell[] = [
  // register is for people without a session: every caller may register (rate limited per client).
  ...ACTORS.map((actor): Cell => ({
    sentence: `${
      ACTOR_LABEL[actor].replace(/ on (its own|another user's) row$/, '')
    } calling POST /functions/v1/register with a valid body (${actor}) gets 201`,
    denied: false,
    // The auth.users trigger made the profile inside Auth's transaction; register found it.
    expected: status(
      201,
      (answer) =>
        expect(answer.body).toMatchObject({
          profile_status: 'existed',
          profile: { created_via: 'trigger' },
        }),
    ),
    run: async () =>
      await http(api(), '/functions/v1/register', {
        method: 'POST',
        headers: { ...headersOf(actor), ...JSON_TYPE },
        body: JSON.stringify({
          email: `matrix-${actor}-${randomUUID().slice(0, 8)}@example.test`,
          password: `pw-${randomUUID()}`,
        }),
      }),
  })),
  // ensure-profile: a user ensures its own profile, the service keys anyone's; nothing else.
  ...(
    [
      ['anon', 401, () => ({ user_id: users.orphan.id }), 'naming an orphan', null],
      ['publishable', 401, () => ({ user_id: users.orphan.id }), 'naming an orphan', null],
      ['own', 200, () => null, 'with no body', 'existed'],
      ['other', 403, () => ({ user_id: users.orphan.id }), 'naming another user (an orphan)', null],
      ['secret', 200, () => ({ user_id: users.orphanForEnsure.id }), 'naming an orphan', 'created'],
      ['service_role', 200, () => ({ user_id: users.other.id }), 'naming another user', 'existed'],
    ] as Array<[Actor, number, () => Record<string, unknown> | null, string, string | null]>
  ).map(([actor, code, body, what, profileStatus]): Cell => ({
    sentence: `${
      ACTOR_LABEL[actor].replace(/ on (its own|another user's) row$/, '')
    } calling POST /functions/v1/ensure-profile ${what} gets ${code}${
      code >= 400 ? ' and writes nothing' : ''
    }`,
    denied: code >= 400,
    expected: status(code, (answer) => {
      if (code === 200) expect(answer.body).toMatchObject({ profile_status: profileStatus });
      else {expect(answer.body).toMatchObject({
          error: { code: code === 401 ? 'invalid_token' : 'forbidden' },
        });}
    }),
    run: async () => {
      const payload = body();
      return await http(api(), '/functions/v1/ensure-profile', {
        method: 'POST',
        headers: { ...headersOf(actor), ...(payload ? JSON_TYPE : {}) },
        ...(payload ? { body: JSON.stringify(payload) } : {}),
      });
    },
  })),
  // profile-health: the public verdict for app keys; everything for the service keys; a user's
  // token is neither and is refused rather than silently downgraded.
  ...(
    [
      ['anon', 200, PUBLIC_HEALTH_KEYS],
      ['publishable', 200, PUBLIC_HEALTH_KEYS],
      ['own', 401, null],
      ['secret', 200, FULL_HEALTH_KEYS],
      ['service_role', 200, FULL_HEALTH_KEYS],
    ] as Array<[Actor, number, string[] | null]>
  ).map(([actor, code, keys]): Cell => ({
    sentence: `${
      ACTOR_LABEL[actor].replace(/ on (its own|another user's) row$/, '')
    } calling GET /functions/v1/profile-health gets ${code}${
      keys
        ? ` with ${keys === FULL_HEALTH_KEYS ? 'the full' : 'only the public'} body`
        : ' and writes nothing'
    }`,
    // The public verdict reads only; the privileged one also evaluates alerts (it may write).
    denied: keys !== FULL_HEALTH_KEYS,
    expected: status(code, (answer) => {
      if (keys) expect(Object.keys(answer.body as object).sort()).toEqual(keys);
      else expect(answer.body).toMatchObject({ error: { code: 'unauthorized' } });
    }),
    run: async () =>
      await http(api(), '/functions/v1/profile-health', { headers: headersOf(actor) }),
  })),
];

// ============================================================================
// Running the matrix
// ============================================================================
beforeAll(async () => {
  const make = (options: { withoutProfile?: boolean; prefix?: string } = {}) =>
    signedInUser(db(), api(), options);
  users = {
    me: await make({ prefix: 'me' }),
    other: await make({ prefix: 'other' }),
    orphan: await make({ withoutProfile: true, prefix: 'orphan' }),
    orphanForSecret: await make({ withoutProfile: true }),
    orphanForService: await make({ withoutProfile: true }),
    orphanForEnsure: await make({ withoutProfile: true }),
    victimForSecret: await make(),
    victimForService: await make(),
  };
  // The orphans count as missing profiles the moment they exist (there is no grace period), which
  // would turn health down for the whole matrix. The health cells are about who gets which body,
  // not about the verdict: allow the users the matrix leaves without a profile (at most 4 at once).
  await db().query('update private.settings set alert_max_missing_profiles = 10');
});

async function runCell(cell: Cell): Promise<void> {
  const before = cell.denied ? await fingerprint(db()) : null;
  const answer = await cell.run();
  expect(answer.status, JSON.stringify(answer.body)).toBe(cell.expected.status);
  if (cell.expected.rows !== undefined) {
    expect(Array.isArray(answer.body) ? answer.body.length : -1).toBe(cell.expected.rows);
  }
  cell.expected.check?.(answer);
  if (before) expect(await fingerprint(db())).toEqual(before);
}

const ALL_CELLS = [...TABLE_CELLS, ...RPC_CELLS, ...PRIVATE_CELLS, ...FUNCTION_CELLS];
const DENIED = ALL_CELLS.filter((cell) => cell.denied);
// The permitted RPC calls run last: reconcile_profiles and run_self_repair among them give every
// user the matrix left without a profile one at once, which the writes before them must not see.
const ALLOWED = [...TABLE_CELLS, ...PRIVATE_CELLS, ...FUNCTION_CELLS].filter((cell) =>
  !cell.denied
);
const ALLOWED_RPC = RPC_CELLS.filter((cell) => !cell.denied);

describe('the access matrix: refused cells (run first, against untouched data)', () => {
  let initial: Record<string, unknown>;
  beforeAll(async () => {
    initial = await fingerprint(db());
  });

  for (const cell of DENIED) it(cell.sentence, async () => await runCell(cell));

  it('after every refused cell, every table holds exactly the rows it held before the matrix', async () => {
    expect(await fingerprint(db())).toEqual(initial);
    const { n } = await db().one<{ n: number }>(
      'select count(*)::int as n from public.user_profiles where user_id = $1',
      [users.orphan.id],
    );
    expect(n).toBe(0);
    const mine = await db().one(
      'select full_name, email from public.user_profiles where user_id = $1',
      [users.me.id],
    );
    expect(mine).toEqual({ full_name: null, email: users.me.email });
  });
});

describe('the access matrix: permitted cells', () => {
  for (const cell of ALLOWED) it(cell.sentence, async () => await runCell(cell));

  it('the permitted writes did what they said: inserted, renamed, re-addressed and deleted profiles', async () => {
    const { rows: found } = await db().query<
      { user_id: string; full_name: string | null; email: string | null }
    >(
      'select user_id, full_name, email from public.user_profiles where user_id = any($1::uuid[])',
      [[
        users.orphanForSecret.id,
        users.orphanForService.id,
        users.orphanForEnsure.id,
        users.victimForSecret.id,
        users.victimForService.id,
        users.orphan.id,
      ]],
    );
    const byId = new Map(found.map((row) => [row.user_id, row]));
    expect(byId.get(users.orphanForSecret.id)?.full_name).toBe('Inserted by secret');
    expect(byId.get(users.orphanForService.id)?.full_name).toBe('Inserted by service_role');
    expect(byId.has(users.orphanForEnsure.id)).toBe(true);
    expect(byId.has(users.victimForSecret.id)).toBe(false);
    expect(byId.has(users.victimForService.id)).toBe(false);
    expect(byId.has(users.orphan.id)).toBe(false);
  });
});

describe('the access matrix: permitted RPC calls (run last)', () => {
  for (const cell of ALLOWED_RPC) it(cell.sentence, async () => await runCell(cell));

  it("the service keys' reconcile run gave a profile to every user the matrix left without one", async () => {
    const { rows: found } = await db().query<{ user_id: string; created_via: string }>(
      'select user_id, created_via from public.user_profiles where user_id = any($1::uuid[]) order by user_id',
      [[users.orphan.id, users.victimForSecret.id, users.victimForService.id]],
    );
    const repaired = [users.orphan.id, users.victimForSecret.id, users.victimForService.id].sort();
    // The reconciler's profiles say created_via 'backfill'; its audit rows say source 'reconcile'.
    expect(found).toEqual(repaired.map((user_id) => ({ user_id, created_via: 'backfill' })));
    const { rows: audited } = await db().query<{ user_id: string }>(
      `select user_id from private.audit_logs where source = 'reconcile' and outcome = 'created' and user_id = any($1::uuid[]) order by user_id`,
      [repaired],
    );
    expect(audited).toEqual(repaired.map((user_id) => ({ user_id })));
    const { n } = await db().one<{ n: number }>(
      'select count(*)::int as n from auth.users u where not exists (select 1 from public.user_profiles p where p.user_id = u.id)',
    );
    expect(n).toBe(0);
  });
});

describe('the callable surface the matrix covers', () => {
  it('lists every function in schema public owned by postgres, each with a row per credential', () => {
    expect(PUBLIC_FUNCTIONS.length).toBeGreaterThanOrEqual(15);
    expect(PUBLIC_FUNCTIONS.map((fn) => fn.name)).toEqual(
      expect.arrayContaining([
        'ensure_user_profile',
        'profile_system_health',
        'register_preflight',
      ]),
    );
    expect(RPC_CELLS).toHaveLength(PUBLIC_FUNCTIONS.length * 5);
  });
});
