import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ApiRole, type Claims, useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

// The grants and RLS matrix, exercised the way PostgREST runs a request: log in as
// authenticator, SET LOCAL ROLE to the JWT's role, expose the claims in request.jwt.claims, run
// the statement, and (here) roll back, so every case starts from the same rows.

const db = useTestDatabase();

/** What one statement did: how many rows it returned or affected, or the error it raised. */
type Outcome = { rowCount: number } | { code: string; message: string };

interface Attempt {
  outcome: Outcome;
  rows: Record<string, unknown>[];
}

const affects = (rowCount: number): Outcome => ({ rowCount });
const deniedOn = (object: string): Outcome => ({
  code: '42501',
  message: `permission denied for ${object}`,
});
const DENIED_ON_PROFILES = deniedOn('table user_profiles');
const DENIED_ON_PRIVATE = deniedOn('schema private');

function describeOutcome(outcome: Outcome): string {
  if ('code' in outcome) return `is denied (${outcome.code})`;
  return `affects ${outcome.rowCount} row${outcome.rowCount === 1 ? '' : 's'}`;
}

/** The claims PostgREST would set for this role: authenticated requests carry a subject. */
function claimsFor(role: ApiRole, sub: string): Claims | null {
  return role === 'authenticated' ? { sub, role } : null;
}

/** Runs one statement as an API role, the way PostgREST does, and reports what happened. */
async function attempt(
  role: ApiRole,
  claims: Claims | null,
  sql: string,
  params: unknown[] = [],
): Promise<Attempt> {
  try {
    return await db().asRole(role, claims, async (client) => {
      const result = await client.query(sql, params);
      return { outcome: { rowCount: result.rowCount ?? 0 }, rows: result.rows };
    });
  } catch (error) {
    if (error instanceof pg.DatabaseError && error.code !== undefined) {
      return { outcome: { code: error.code, message: error.message }, rows: [] };
    }
    throw error;
  }
}

// Users, created through the Supabase Auth stand-in so the trigger makes their profiles.
let me = '';
let other = '';
/** An auth user whose profile was removed: the target of every INSERT case. */
let orphan = '';

beforeAll(async () => {
  me = await signUpAsSupabaseAuth(db(), {
    userMetadata: { full_name: 'Me Myself', username: 'me_myself' },
  });
  other = await signUpAsSupabaseAuth(db(), {
    userMetadata: { full_name: 'Someone Else', username: 'Other_User' },
  });
  orphan = await signUpAsSupabaseAuth(db(), { userMetadata: { full_name: 'No Profile' } });
  await db().query('delete from public.user_profiles where user_id = $1', [orphan]);
});

// ============================================================================
// public.user_profiles
// ============================================================================

/**
 * Who runs the statement, against which row:
 *   anon     no JWT subject; targets my profile
 *   own      authenticated as the owner of the target row (me)
 *   other    authenticated as me, targeting another user's row
 *   service  service_role; targets my profile
 * INSERT targets the orphan (a user without a profile): `own` is the orphan inserting its own
 * profile, `other` is me inserting the orphan's.
 */
type Actor = 'anon' | 'own' | 'other' | 'service';

const ACTORS: Record<Actor, { role: ApiRole; row: string }> = {
  anon: { role: 'anon', row: 'a profile' },
  own: { role: 'authenticated', row: 'its own profile' },
  other: { role: 'authenticated', row: "another user's profile" },
  service: { role: 'service_role', row: 'a profile' },
};

interface TableOperation {
  /** Completed by the row phrase: "updating full_name of" + "its own profile". */
  verb: string;
  /** $1 is the target user id; a statement that succeeds returns the target's user_id. */
  sql: string;
  insert?: boolean;
  expected: Record<Actor, Outcome>;
}

/** The columns the column-level UPDATE grant gives authenticated, with a valid new value. */
const EDITABLE_COLUMNS: Record<string, string> = {
  full_name: `'Renamed User'`,
  username: `'renamed_user'`,
  avatar_url: `'https://example.test/avatar.png'`,
  metadata: `'{"theme": "dark"}'::jsonb`,
};

/** The columns only the profile system (and service_role) may write. */
const NON_EDITABLE_COLUMNS: Record<string, string> = {
  user_id: 'user_id',
  email: `'changed@example.test'`,
  created_via: `'backfill'`,
  created_at: `now() - interval '1 year'`,
  updated_at: `now() - interval '1 year'`,
};

const TABLE_OPERATIONS: TableOperation[] = [
  {
    verb: 'selecting',
    sql: 'select user_id from public.user_profiles where user_id = $1',
    expected: { anon: DENIED_ON_PROFILES, own: affects(1), other: affects(0), service: affects(1) },
  },
  {
    verb: 'inserting',
    sql: `insert into public.user_profiles (user_id, email, created_via)
          values ($1, 'orphan@example.test', 'ensure') returning user_id`,
    insert: true,
    expected: {
      anon: DENIED_ON_PROFILES,
      own: DENIED_ON_PROFILES,
      other: DENIED_ON_PROFILES,
      service: affects(1),
    },
  },
  ...Object.entries(EDITABLE_COLUMNS).map(
    ([column, value]): TableOperation => ({
      verb: `updating ${column} of`,
      sql:
        `update public.user_profiles set ${column} = ${value} where user_id = $1 returning user_id`,
      expected: {
        anon: DENIED_ON_PROFILES,
        own: affects(1),
        other: affects(0),
        service: affects(1),
      },
    }),
  ),
  ...Object.entries(NON_EDITABLE_COLUMNS).map(
    ([column, value]): TableOperation => ({
      verb: `updating ${column} of`,
      sql:
        `update public.user_profiles set ${column} = ${value} where user_id = $1 returning user_id`,
      expected: {
        anon: DENIED_ON_PROFILES,
        own: DENIED_ON_PROFILES,
        other: DENIED_ON_PROFILES,
        service: affects(1),
      },
    }),
  ),
  {
    verb: 'deleting',
    sql: 'delete from public.user_profiles where user_id = $1 returning user_id',
    expected: {
      anon: DENIED_ON_PROFILES,
      own: DENIED_ON_PROFILES,
      other: DENIED_ON_PROFILES,
      service: affects(1),
    },
  },
];

const TABLE_CASES = TABLE_OPERATIONS.flatMap((operation) =>
  (Object.keys(ACTORS) as Actor[]).map((actor) => ({
    sentence: `${ACTORS[actor].role} ${operation.verb} ${ACTORS[actor].row} ${
      describeOutcome(operation.expected[actor])
    }`,
    actor,
    operation,
  }))
);

describe('public.user_profiles as each API role', () => {
  for (const { sentence, actor, operation } of TABLE_CASES) {
    it(sentence, async () => {
      const target = operation.insert ? orphan : actor === 'other' ? other : me;
      const subject = operation.insert && actor === 'own' ? orphan : me;
      const { role } = ACTORS[actor];
      const { outcome, rows } = await attempt(role, claimsFor(role, subject), operation.sql, [
        target,
      ]);
      expect(outcome).toEqual(operation.expected[actor]);
      if ('rowCount' in outcome) {
        expect(rows).toEqual(outcome.rowCount === 0 ? [] : [{ user_id: target }]);
      }
    });
  }

  it('shows an authenticated user exactly one profile, its own, when it selects without a filter', async () => {
    const { outcome, rows } = await attempt(
      'authenticated',
      claimsFor('authenticated', me),
      'select user_id from public.user_profiles',
    );
    expect(outcome).toEqual(affects(1));
    expect(rows).toEqual([{ user_id: me }]);
  });

  it('shows an authenticated user that has no profile no rows at all', async () => {
    const { outcome } = await attempt(
      'authenticated',
      claimsFor('authenticated', orphan),
      'select user_id from public.user_profiles',
    );
    expect(outcome).toEqual(affects(0));
  });

  it('shows service_role every profile', async () => {
    const { outcome, rows } = await attempt(
      'service_role',
      null,
      'select user_id from public.user_profiles order by user_id',
    );
    expect(outcome).toEqual(affects(2));
    expect(rows).toEqual([me, other].sort().map((user_id) => ({ user_id })));
  });

  it('lets an authenticated user change all its editable fields at once and read the new values back', async () => {
    const rows = await db().asRole(
      'authenticated',
      claimsFor('authenticated', me),
      async (client) => {
        await client.query(
          `update public.user_profiles
            set full_name = 'Renamed User', username = 'renamed_user',
                avatar_url = 'https://example.test/avatar.png', metadata = '{"theme": "dark"}'
          where user_id = $1`,
          [me],
        );
        const result = await client.query(
          'select full_name, username, avatar_url, metadata from public.user_profiles where user_id = $1',
          [me],
        );
        return result.rows;
      },
    );
    expect(rows).toEqual([
      {
        full_name: 'Renamed User',
        username: 'renamed_user',
        avatar_url: 'https://example.test/avatar.png',
        metadata: { theme: 'dark' },
      },
    ]);
  });
});

// ============================================================================
// The callable surface in public
// ============================================================================

interface PublicFunction {
  name: string;
  signature: string;
  call: () => { sql: string; params: unknown[] };
  /** What service_role gets back: the function's jsonb result. */
  check: (result: unknown) => void;
}

const PUBLIC_FUNCTIONS: PublicFunction[] = [
  {
    name: 'ensure_user_profile',
    signature: 'ensure_user_profile(uuid, ...)',
    call: () => ({ sql: 'select public.ensure_user_profile($1) as result', params: [me] }),
    check: (result) =>
      expect(result).toMatchObject({ outcome: 'existed', profile: { user_id: me } }),
  },
  {
    name: 'backfill_missing_profiles',
    signature: 'backfill_missing_profiles(integer, uuid, boolean)',
    call: () => ({
      sql: 'select public.backfill_missing_profiles(10, null, true) as result',
      params: [],
    }),
    check: (result) =>
      expect(result).toEqual({
        scanned: 3,
        missing: 1,
        created: 0,
        failed: 0,
        last_user_id: [me, other, orphan].sort().at(-1),
        done: true,
        dry_run: true,
      }),
  },
  {
    name: 'profile_system_stats',
    signature: 'profile_system_stats(interval)',
    call: () => ({
      sql: `select public.profile_system_stats(interval '1 hour') as result`,
      params: [],
    }),
    check: (result) =>
      expect(Object.keys(result as object).sort()).toEqual([
        'attempts',
        'failures_by_sqlstate',
        'latency_ms',
        'missing_profiles',
        'repair_queue',
        'success_rate',
        'window',
      ]),
  },
  {
    name: 'profile_system_health',
    signature: 'profile_system_health()',
    call: () => ({ sql: 'select public.profile_system_health() as result', params: [] }),
    // The orphan's profile was deleted while its user remains: it counts as missing at once.
    check: (result) =>
      expect(result).toMatchObject({
        status: 'down',
        checks: { missing_profiles: { ok: false, value: 1, threshold: 0, queued: 0 } },
      }),
  },
];

const FUNCTION_CASES = PUBLIC_FUNCTIONS.flatMap((fn) =>
  (['anon', 'authenticated', 'service_role'] as const).map((role) => {
    const expected = role === 'service_role' ? affects(1) : deniedOn(`function ${fn.name}`);
    const sentence = role === 'service_role'
      ? `service_role executes ${fn.signature}`
      : `${role} is denied execute on ${fn.signature} (42501)`;
    return { sentence, role, fn, expected };
  })
);

describe('the public functions as each API role', () => {
  for (const { sentence, role, fn, expected } of FUNCTION_CASES) {
    it(sentence, async () => {
      const { sql, params } = fn.call();
      const { outcome, rows } = await attempt(role, claimsFor(role, me), sql, params);
      expect(outcome).toEqual(expected);
      if ('rowCount' in outcome) fn.check(rows[0]?.result);
    });
  }
});

// ============================================================================
// Schema private
// ============================================================================

const API_ROLES: ApiRole[] = ['anon', 'authenticated', 'service_role'];

const PRIVATE_CASES = [
  ...['audit_logs', 'repair_queue', 'settings'].flatMap((table) =>
    API_ROLES.map((role) => ({
      sentence: `${role} is denied select on private.${table} (42501)`,
      role,
      sql: `select * from private.${table}`,
      params: (): unknown[] => [],
    }))
  ),
  ...API_ROLES.map((role) => ({
    sentence: `${role} is denied calling private.ensure_profile directly (42501)`,
    role,
    sql: `select private.ensure_profile($1, 'ensure')`,
    params: (): unknown[] => [orphan],
  })),
];

describe('schema private as each API role', () => {
  for (const { sentence, role, sql, params } of PRIVATE_CASES) {
    it(sentence, async () => {
      const { outcome } = await attempt(role, claimsFor(role, me), sql, params());
      expect(outcome).toEqual(DENIED_ON_PRIVATE);
    });
  }
});

// ============================================================================
// What the table enforces when a user edits its own profile
// ============================================================================

async function updateOwnUsername(username: string): Promise<Outcome & { constraint?: string }> {
  try {
    return await db().asRole('authenticated', claimsFor('authenticated', me), async (client) => {
      const result = await client.query(
        'update public.user_profiles set username = $2 where user_id = $1',
        [
          me,
          username,
        ],
      );
      return { rowCount: result.rowCount ?? 0 };
    });
  } catch (error) {
    if (error instanceof pg.DatabaseError && error.code !== undefined) {
      return { code: error.code, message: error.message, constraint: error.constraint };
    }
    throw error;
  }
}

describe('an authenticated user editing its own profile', () => {
  it.each([
    ['too short', 'ab'],
    ['too long', 'a'.repeat(40)],
    ['containing a space', 'has space'],
    ['starting with a dot', '.dotted'],
    ['ending with a hyphen', 'hyphen-'],
    ['containing a non-ASCII letter', 'zoë_user'],
  ])(
    'is refused a username %s with 23514 from user_profiles_username_check',
    async (_label, username) => {
      expect(await updateOwnUsername(username)).toMatchObject({
        code: '23514',
        constraint: 'user_profiles_username_check',
      });
    },
  );

  it.each(['Other_User', 'other_user', 'OTHER_USER'])(
    'is refused the username %s, which another profile has case-insensitively, with 23505',
    async (username) => {
      expect(await updateOwnUsername(username)).toMatchObject({
        code: '23505',
        constraint: 'user_profiles_username_key',
      });
    },
  );

  it('can take a valid username nobody has', async () => {
    expect(await updateOwnUsername('brand.new-name_1')).toEqual(affects(1));
  });

  it('gets updated_at bumped to the transaction time by the trigger', async () => {
    const result = await db().asRole(
      'authenticated',
      claimsFor('authenticated', me),
      async (client) => {
        const before = await client.query<{ updated_at: string }>(
          'select updated_at::text as updated_at from public.user_profiles where user_id = $1',
          [me],
        );
        const after = await client.query(
          `update public.user_profiles set full_name = 'Bumped'
          where user_id = $1
          returning updated_at = now() as is_now, updated_at > $2::timestamptz as is_later`,
          [me, before.rows[0]?.updated_at],
        );
        return { found: before.rowCount, updated: after.rows };
      },
    );
    expect(result).toEqual({ found: 1, updated: [{ is_now: true, is_later: true }] });
  });
});
