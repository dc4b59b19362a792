// The operator guides (docs/DEPLOYMENT.md, docs/ROLLBACK.md, docs/TROUBLESHOOTING.md) must be true
// to the code. Conventions the guides use and this file relies on:
//   * a ```sql block is runnable: it is executed here, in document order, as `postgres` (the role
//     of the Dashboard's SQL editor and of `supabase db push`), on a database that starts as a
//     Supabase project with users and its own handle_new_user trigger;
//   * a ```sql block whose first line starts with `-- hosted only:` needs pg_cron, pg_net or
//     Supabase's supabase_functions schema; it is not executed, but every object of ours it names
//     must exist;
//   * a ```sql block right after a `<!-- adoption: … -->` line belongs to the adoption of an app's
//     own profile table (DEPLOYMENT.md §5.1.1), the alternative to the copy the walk takes: it is
//     not executed here but by tests/adoption/adopt-quickstart.test.ts, which reads it from the
//     guide; every object of ours it names must exist;
//   * a ```sh block holds shell commands. Where one says `npx supabase db push --db-url
//     "$DATABASE_URL"` or runs supabase/rollback/rollback.sql with psql, the walk does the same to
//     the test database, so the SQL after it meets the state the guide promises;
//   * every `npx supabase …` command in README.md and docs/*.md, in a ```sh block or in the text,
//     is in a form of SUPABASE_CLI_FORMS (tests/helpers/supabase-cli.ts), which tests/deploy/ runs
//     with the pinned CLI.
// Everything the guides name (npm scripts, CLI flags, environment variables, settings columns,
// database objects, migration files, links) is checked against the code as it is.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyRollback,
  listMigrations,
  migrateDatabase,
  ROLLBACK_FILE,
} from '../../dev/migrate.ts';
import { type TestDatabase, useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import {
  type CliForm,
  type CliFormName,
  formOf,
  SUPABASE_CLI_FORMS,
} from '../helpers/supabase-cli.ts';
import {
  bulkSignUpAsSupabaseAuth,
  githubMetadata,
  googleMetadata,
  signUpAsSupabaseAuth,
} from '../helpers/supabase-auth.ts';

const execFileAsync = promisify(execFile);

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const GUIDES = ['DEPLOYMENT.md', 'ROLLBACK.md', 'TROUBLESHOOTING.md'] as const;
type Guide = (typeof GUIDES)[number];

// ---------------------------------------------------------------------------------------------
// Reading the guides
// ---------------------------------------------------------------------------------------------

interface Block {
  guide: Guide;
  /** 1-based line of the opening fence. */
  line: number;
  language: string;
  kind: 'sql' | 'sql-hosted' | 'sql-adoption' | 'sh' | 'other';
  code: string;
}

const HOSTED_MARKER = /^-- hosted only:/;
const ADOPTION_MARKER = /^<!-- adoption: [\w-]+ -->$/;

function parseBlocks(guide: Guide, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  let open: { line: number; language: string; body: string[]; adoption: boolean } | null = null;
  lines.forEach((line, index) => {
    if (open === null) {
      const fence = /^```(\S*)/.exec(line);
      if (fence) {
        open = {
          line: index + 1,
          language: fence[1] ?? '',
          body: [],
          adoption: ADOPTION_MARKER.test(lines[index - 1] ?? ''),
        };
      }
      return;
    }
    if (/^```\s*$/.test(line)) {
      const code = open.body.join('\n');
      const firstLine = code.trimStart().split('\n')[0] ?? '';
      const kind: Block['kind'] = open.language === 'sql'
        ? (open.adoption ? 'sql-adoption' : HOSTED_MARKER.test(firstLine) ? 'sql-hosted' : 'sql')
        : open.language === 'sh'
        ? 'sh'
        : 'other';
      blocks.push({ guide, line: open.line, language: open.language, kind, code });
      open = null;
      return;
    }
    open.body.push(line);
  });
  if (open !== null) {
    throw new Error(
      `${guide}: the code block opened on line ${(open as { line: number }).line} is never closed`,
    );
  }
  return blocks;
}

async function readGuide(guide: Guide): Promise<string> {
  return await readFile(path.join(ROOT, 'docs', guide), 'utf8');
}

async function readGuides(): Promise<Array<{ guide: Guide; text: string; blocks: Block[] }>> {
  return await Promise.all(
    GUIDES.map(async (guide) => {
      const text = await readGuide(guide);
      return { guide, text, blocks: parseBlocks(guide, text) };
    }),
  );
}

/** Shell command lines of a block: comments and blank lines dropped, trailing comments cut. */
function commandLines(block: Block): string[] {
  return block.code
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

// ---------------------------------------------------------------------------------------------
// The project the guides are run against
// ---------------------------------------------------------------------------------------------

/** Supabase's documented recipe: public.profiles filled by a handle_new_user trigger. */
const LEGACY_PROFILE_SYSTEM = `
  set role postgres;
  create table public.profiles (
    id uuid not null references auth.users (id) on delete cascade primary key,
    username text unique,
    full_name text,
    avatar_url text
  );
  alter table public.profiles enable row level security;
  create function public.handle_new_user()
  returns trigger
  language plpgsql
  security definer set search_path = public
  as $$
  begin
    insert into profiles (id, username, full_name, avatar_url)
    values (new.id, new.raw_user_meta_data ->> 'user_name', new.raw_user_meta_data ->> 'full_name',
            new.raw_user_meta_data ->> 'avatar_url');
    return new;
  end;
  $$;
  create trigger on_auth_user_created
    after insert on auth.users
    for each row execute function public.handle_new_user();
  reset role;
`;

/**
 * An existing project: the legacy profile system, and users signed up an hour or two ago (so past
 * the grace period) by email, GitHub and Google, written exactly as Supabase Auth writes them.
 */
async function seedExistingProject(db: TestDatabase): Promise<void> {
  await db.query(LEGACY_PROFILE_SYSTEM);
  const anHourAgo = new Date(Date.now() - 3_600_000);
  await signUpAsSupabaseAuth(db, {
    email: 'ada@example.com',
    provider: 'github',
    userMetadata: githubMetadata({
      email: 'ada@example.com',
      user_name: 'ada',
      preferred_username: 'ada',
      full_name: 'Ada Lovelace',
      name: 'Ada Lovelace',
    }),
    createdAt: anHourAgo,
  });
  await signUpAsSupabaseAuth(db, {
    email: 'grace@example.com',
    provider: 'google',
    userMetadata: googleMetadata({
      email: 'grace@example.com',
      full_name: 'Grace Hopper',
      name: 'Grace Hopper',
    }),
    createdAt: anHourAgo,
  });
  await signUpAsSupabaseAuth(db, {
    email: 'linus@example.com',
    userMetadata: { full_name: 'Linus', username: '-not-valid-' },
    createdAt: anHourAgo,
  });
  await bulkSignUpAsSupabaseAuth(db, 25, {
    metadataSql: `jsonb_build_object('full_name', 'Old User ' || n)`,
    createdAgo: '2 hours',
  });
}

/**
 * What a running system leaves behind: a user whose profile was lost with a failure recorded
 * (health down, an alert transition in the outbox), a rate-limit window and an idempotency key.
 */
async function seedActivity(db: TestDatabase): Promise<void> {
  await db.query(`
    delete from public.user_profiles where email = 'grace@example.com';
    select public.enqueue_profile_repair((select id from auth.users where email = 'grace@example.com'),
                                         'ensure', 'simulated outage', '08006');
    select public.register_preflight('203.0.113.7', 10, 60, 'ada', 'someone@example.com');
    select public.idempotency_claim('register', '1f0c7a52-6f0e-4a5e-9a53-0d7c3f1e9b21', repeat('a', 64));
    select public.evaluate_alerts();
  `);
}

// ---------------------------------------------------------------------------------------------
// Walking a guide
// ---------------------------------------------------------------------------------------------

type Step = { kind: 'sql'; line: number } | { kind: 'push'; line: number } | {
  kind: 'rollback';
  line: number;
};

/** `npx supabase db push --db-url "$DATABASE_URL"`, however the guide spaces or quotes it. */
const isPush = (command: string) => formOf(command) === 'dbPush';
const RUN_ROLLBACK =
  /^psql "\$DATABASE_URL" (?:-v ON_ERROR_STOP=1 )?-f supabase\/rollback\/rollback\.sql$/;

/**
 * Runs a guide's runnable SQL blocks in order as postgres, and does what its shell blocks do to
 * the database: `npx supabase db push --db-url …` applies the pending migrations (tests/deploy/
 * db-push.test.ts shows the CLI's push and dev/migrate.ts's agree), the psql line runs the
 * rollback script. Returns what it did; a failing block names its guide and line.
 */
async function walk(
  db: TestDatabase,
  blocks: Block[],
  onRollback?: () => Promise<void>,
): Promise<Step[]> {
  const steps: Step[] = [];
  for (const block of blocks) {
    if (block.kind === 'sh') {
      for (const command of commandLines(block)) {
        if (isPush(command)) {
          await migrateDatabase(db.url);
          steps.push({ kind: 'push', line: block.line });
        } else if (RUN_ROLLBACK.test(command)) {
          await db.withClient((client) => applyRollback(client));
          steps.push({ kind: 'rollback', line: block.line });
          await onRollback?.();
        }
      }
      continue;
    }
    if (block.kind !== 'sql') continue;
    await db.withClient(async (client) => {
      await client.query('set role postgres');
      try {
        await client.query(block.code);
      } catch (error) {
        throw new Error(
          `${block.guide}, SQL block at line ${block.line}: ${
            (error as Error).message
          }\n${block.code}`,
          { cause: error },
        );
      } finally {
        await client.query('reset role').catch(() => undefined);
      }
    });
    steps.push({ kind: 'sql', line: block.line });
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Facts from the code
// ---------------------------------------------------------------------------------------------

/** The variables shared/config.ts validates (the keys of its zod ENV object). */
async function configVariables(): Promise<Set<string>> {
  const source = await readFile(path.join(ROOT, 'shared', 'config.ts'), 'utf8');
  const body = /const ENV = z\s*\.object\(\{([\s\S]*?)\n\s*\}\)/.exec(source)?.[1];
  if (!body) throw new Error('could not find the ENV object in shared/config.ts');
  return new Set([...body.matchAll(/^\s*([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!));
}

/** Supabase's default secrets of every Edge Function (supabase-facts §5). */
const INJECTED_BY_SUPABASE = new Set([
  'SUPABASE_URL',
  'SUPABASE_DB_URL',
  'SUPABASE_JWKS',
  'SUPABASE_PUBLISHABLE_KEYS',
  'SUPABASE_SECRET_KEYS',
  'SUPABASE_ANON_KEY',
  'SUPABASE_SERVICE_ROLE_KEY',
]);

/** Upper-case words with underscores the guides use that are not environment variables. */
const NOT_ENVIRONMENT: Record<string, string> = {
  ON_ERROR_STOP: 'a psql variable (psql -v ON_ERROR_STOP=1)',
  BOOT_ERROR: 'an Edge Functions status code',
  WORKER_ERROR: 'an Edge Functions status code',
  WORKER_LIMIT: 'an Edge Functions status code',
  GOTRUE_RATE_LIMIT_OTP:
    "a setting of Supabase Auth's own server, named as the evidence for its signup limit",
  GOTRUE_SECURITY_SB_FORWARDED_FOR_ENABLED:
    "a setting of Supabase Auth's own server, named as the evidence for Sb-Forwarded-For",
};

/** Variables the operator CLIs read directly from process.env. */
async function cliVariables(): Promise<Set<string>> {
  const names = new Set<string>();
  // The example app's VITE_* settings count as the app-side switch the guides describe.
  for (
    const file of [
      'scripts/backfill.ts',
      'scripts/reconcile.ts',
      'scripts/cli.ts',
      'examples/app/src/supabase.ts',
    ]
  ) {
    const source = await readFile(path.join(ROOT, file), 'utf8').catch(() => '');
    for (const m of source.matchAll(/(?:process\.)?env\.([A-Z][A-Z0-9_]+)/g)) names.add(m[1]!);
  }
  return names;
}

const FLAG = /(?<![\w-])--[a-z][a-z0-9-]*/g;

/** Flags of other tools the guides use, with the tool they belong to: the Supabase CLI's, in the forms the tests run. */
const OTHER_TOOLS_FLAGS: Record<string, string> = Object.fromEntries(
  Object.values(SUPABASE_CLI_FORMS as Record<string, CliForm>).flatMap((form) =>
    form.flags.map((flag) => [flag, `npx supabase ${[...form.command, ...form.flags].join(' ')}`])
  ),
);

/** README.md and every guide in docs/, by path from the repository root. */
async function readDocs(): Promise<Array<{ file: string; text: string }>> {
  const files = [
    'README.md',
    ...(await readdir(path.join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) =>
      `docs/${f}`
    ),
  ];
  return await Promise.all(
    files.map(async (file) => ({ file, text: await readFile(path.join(ROOT, file), 'utf8') })),
  );
}

/**
 * The Supabase CLI commands a document gives: the command lines of its ```sh blocks (continuation
 * lines joined, comments cut) that run `supabase`, and its inline code spans that start with
 * `npx supabase` and say more than the bare name (`npx supabase`, `npx supabase …`). A command in
 * the text split over two lines, or written `supabase …` with flags or arguments, is a problem.
 */
function supabaseCommands(file: string, text: string): { commands: string[]; problems: string[] } {
  const commands: string[] = [];
  const problems: string[] = [];
  for (const block of text.matchAll(/^```sh\n([\s\S]*?)^```\s*$/gm)) {
    for (const line of block[1]!.replace(/\\\n\s*/g, ' ').split('\n')) {
      const command = line.replace(/\s+#.*$/, '').trim();
      if (/^(?:npx )?supabase\b/.test(command)) commands.push(command);
    }
  }
  const prose = text.replace(/^```[\s\S]*?^```\s*$/gm, '');
  for (const line of prose.split('\n')) {
    for (const m of line.matchAll(/`(npx supabase[^`]*)`/g)) {
      if (!/^npx supabase(?: …)?$/.test(m[1]!)) commands.push(m[1]!);
    }
    // A bare `supabase db push` names a command; with flags or arguments it is one to run.
    for (const m of line.matchAll(/`(supabase [^`]*)`/g)) {
      if (/\s(?:-|\S*[='"<])/.test(m[1]!)) {
        problems.push(`${file}: a command without npx and its target: ${m[1]}`);
      }
    }
    if (/npx supabase/.test(line.replace(/`[^`]*`/g, ''))) {
      problems.push(`${file}: a command outside one line's code span: ${line.trim()}`);
    }
  }
  return { commands, problems };
}

const usageCache = new Map<string, Promise<string>>();

/** A CLI's --help text, as `node_modules/.bin/tsx scripts/<name>.ts --help` prints it. */
function usageOf(name: 'backfill' | 'reconcile' | 'dashboard'): Promise<string> {
  let usage = usageCache.get(name);
  if (!usage) {
    usage = execFileAsync(TSX, [`scripts/${name}.ts`, '--help'], { cwd: ROOT, timeout: 60_000 })
      .then(({ stdout }) => stdout);
    usageCache.set(name, usage);
  }
  return usage;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  let inFence = false;
  for (const line of text.split('\n')) {
    if (/^```/.test(line)) inFence = !inFence;
    const heading = inFence ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (!heading) continue;
    anchors.add(
      heading[1]!
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .trim()
        .replace(/\s/g, '-'),
    );
  }
  return anchors;
}

/** The SQL a guide shows: its sql blocks (hosted-only ones too) and its inline code spans. */
function sqlTexts(text: string, blocks: Block[]): string[] {
  const prose = text.replace(/^```[\s\S]*?^```\s*$/gm, '');
  return [
    ...blocks.filter((b) => b.kind !== 'sh' && b.kind !== 'other').map((b) => b.code),
    ...[...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!),
  ];
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

describe('DEPLOYMENT.md', () => {
  const db = useTestDatabase('bare');

  it('runs every SQL block in order as postgres on a project with users and its own handle_new_user trigger, pushing the migrations where it says so', async () => {
    await seedExistingProject(db());
    const { blocks } = (await readGuides()).find((g) => g.guide === 'DEPLOYMENT.md')!;
    const steps = await walk(db(), blocks);

    const pushes = steps.filter((s) => s.kind === 'push');
    expect(pushes).toHaveLength(1);
    // Pre-flight checks run before the push, on the project as it was.
    expect(steps.findIndex((s) => s.kind === 'push')).toBeGreaterThanOrEqual(4);
    expect(steps.filter((s) => s.kind === 'sql').length).toBeGreaterThanOrEqual(15);

    // The walk runs no CLI (a later test does): the guide's copy step alone carried every legacy
    // profile over, Phase 6 retired the old trigger, and the settings are where Phase 3 left them.
    const copied = await db().one<{ n: number }>(
      `select count(*)::int as n from public.user_profiles p join public.profiles l on l.id = p.user_id`,
    );
    expect(copied.n).toBe(28);
    const legacyTrigger = await db().query(
      `select 1 from pg_trigger where tgrelid = 'auth.users'::regclass and tgname = 'on_auth_user_created'`,
    );
    expect(legacyTrigger.rowCount).toBe(0);
    expect(await db().one('select trigger_enabled, register_enabled from private.settings'))
      .toEqual({
        trigger_enabled: true,
        register_enabled: true,
      });
  });
});

describe('ROLLBACK.md', () => {
  const db = useTestDatabase();

  it('runs every SQL block in order as postgres, including the rollback script and the re-push, and the rollback keeps exactly what the guide says', async () => {
    await seedExistingProject(db());
    await seedActivity(db());
    const { text, blocks } = (await readGuides()).find((g) => g.guide === 'ROLLBACK.md')!;
    const before = await db().one<{ profiles: number; audit: number }>(
      `select (select count(*)::int from public.user_profiles) as profiles, (select count(*)::int from private.audit_logs) as audit`,
    );

    const afterRollback = async () => {
      const { rows: privateFunctions } = await db().query<{ name: string }>(
        `select 'private.' || proname as name from pg_proc where pronamespace = 'private'::regnamespace order by 1`,
      );
      const kept = privateFunctions.map((r) => r.name);
      expect(kept).toEqual([
        'private.is_valid_audit_row',
        'private.is_valid_avatar_url',
        'private.is_valid_created_via',
        'private.is_valid_profile_metadata',
        'private.is_valid_username',
        'private.set_updated_at',
      ]);
      for (const name of kept) expect(text).toContain(`\`${name}\``);
      const { rows: publicFunctions } = await db().query<{ proname: string }>(
        `select proname from pg_proc where pronamespace = 'public'::regnamespace order by 1`,
      );
      expect(publicFunctions.map((r) => r.proname)).toEqual(['handle_new_user']);
      const trigger = await db().query(
        `select 1 from pg_trigger where tgrelid = 'auth.users'::regclass and tgname = 'users_ensure_profile'`,
      );
      expect(trigger.rowCount).toBe(0);
      const after = await db().one<{ profiles: number; audit: number }>(
        `select (select count(*)::int from public.user_profiles) as profiles, (select count(*)::int from private.audit_logs) as audit`,
      );
      expect(after.profiles).toBe(before.profiles);
      expect(after.audit).toBeGreaterThanOrEqual(before.audit);
    };

    const steps = await walk(db(), blocks, afterRollback);
    // Roll back, re-push, and the rollback again before the data is removed for good.
    expect(steps.map((s) => s.kind).filter((k) => k !== 'sql')).toEqual([
      'rollback',
      'push',
      'rollback',
    ]);
    // The last block removes the data for good: nothing of ours is left.
    expect((await db().query(`select 1 from pg_namespace where nspname = 'private'`)).rowCount)
      .toBe(0);
    expect((await db().query(`select to_regclass('public.user_profiles') as t`)).rows).toEqual([{
      t: null,
    }]);
  });
});

describe('TROUBLESHOOTING.md', () => {
  const db = useTestDatabase();

  it('runs every SQL block in order as postgres on a migrated project with users, failures and alerts', async () => {
    await seedExistingProject(db());
    await seedActivity(db());
    const { blocks } = (await readGuides()).find((g) => g.guide === 'TROUBLESHOOTING.md')!;
    const steps = await walk(db(), blocks);
    expect(steps.filter((s) => s.kind === 'sql').length).toBeGreaterThanOrEqual(20);
    // The signup probe at the end of the walk still creates nobody, and every user has a profile
    // after the fixes the guide applies.
    expect(
      (await db().query(`select 1 from auth.users where email = 'signup-probe@example.com'`))
        .rowCount,
    ).toBe(0);
    const missing = await db().one<{ n: number }>(
      `select count(*)::int as n from auth.users u where not exists (select 1 from public.user_profiles p where p.user_id = u.id)`,
    );
    expect(missing.n).toBe(0);
  });
});

describe('the operator guides', () => {
  const db = useTestDatabase();
  beforeAll(async () => {
    await seedExistingProject(db());
  });

  it('name only database objects that exist, in hosted-only blocks and in prose alike', async () => {
    const problems: string[] = [];
    for (const { guide, text } of await readGuides()) {
      const names = new Set(
        [...text.matchAll(
          /(?<![\w.])(public|private|auth|supabase_migrations)\.([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*))?/g,
        )]
          .map((m) => [m[1]!, m[2]!, m[3]] as const)
          .map(([schema, object, column]) => `${schema}.${object}${column ? `.${column}` : ''}`),
      );
      for (const name of names) {
        const [schema, object, column] = name.split('.') as [string, string, string | undefined];
        const { rows } = await db().query<{ relation: boolean; fn: boolean }>(
          `select to_regclass($1) is not null as relation,
                  exists (select 1 from pg_proc where pronamespace = to_regnamespace($2) and proname = $3) as fn`,
          [`${schema}.${object}`, schema, object],
        );
        const found = rows[0]!;
        if (!found.relation && !found.fn) {
          problems.push(`${guide}: ${schema}.${object} does not exist`);
          continue;
        }
        if (column !== undefined && found.relation) {
          const col = await db().query(
            `select 1 from information_schema.columns where table_schema = $1 and table_name = $2 and column_name = $3`,
            [schema, object, column],
          );
          if (col.rowCount === 0) problems.push(`${guide}: ${name}: no such column`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('name only private.settings columns that exist, and the settings reference documents every one of them', async () => {
    const { rows } = await db().query<{ column_name: string }>(
      `select column_name from information_schema.columns where table_schema = 'private' and table_name = 'settings' and column_name <> 'id'`,
    );
    const columns = new Set(rows.map((r) => r.column_name));
    const mentioned: Array<[Guide, string]> = [];
    const documented = new Set<string>();
    for (const { guide, text, blocks } of await readGuides()) {
      for (const m of text.matchAll(/private\.settings\.([a-z_]+)/g)) {
        mentioned.push([guide, m[1]!]);
      }
      // Columns assigned or selected in any statement on private.settings (hosted-only ones too).
      const statements = sqlTexts(text, blocks).flatMap((sql) => sql.split(';'));
      for (const statement of statements.filter((s) => /private\.settings/.test(s))) {
        const set = /\bset\s+([\s\S]*?)(?:\bwhere\b|$)/i.exec(
          statement.slice(statement.search(/private\.settings/)),
        )?.[1];
        if (set) {
          for (const m of set.matchAll(/([a-z_]+)\s*=(?!=)/g)) mentioned.push([guide, m[1]!]);
        }
        const select = /select\s+([\s\S]*?)\s+from\s+private\.settings/i.exec(statement)?.[1];
        if (select && select.trim() !== '*') {
          for (const part of select.split(',')) {
            if (/^[a-z_]+$/.test(part.trim())) mentioned.push([guide, part.trim()]);
          }
        }
      }
      // The reference table: rows under a header whose first cell is "`private.settings` column".
      const table = /\| `private\.settings` column \|[^\n]*\n\|[-| ]+\|\n((?:\|[^\n]*\n)+)/.exec(
        text,
      )?.[1];
      if (table) {
        for (const row of table.trim().split('\n')) {
          const name = /^\| `([a-z_]+)` \|/.exec(row)?.[1];
          if (name) {
            documented.add(name);
            mentioned.push([guide, name]);
          }
        }
      }
    }
    expect(mentioned.length).toBeGreaterThan(10);
    expect(mentioned.filter(([, name]) => !columns.has(name))).toEqual([]);
    expect([...columns].filter((c) => !documented.has(c))).toEqual([]);
  });
});

describe('commands in the operator guides', () => {
  it('name only npm scripts that package.json defines', async () => {
    const scripts = Object.keys(
      (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }).scripts,
    );
    const named = new Set<string>();
    for (const { text } of await readGuides()) {
      for (const m of text.matchAll(/npm run ([a-z][a-z0-9:-]*)/g)) {
        named.add(m[1]!);
      }
    }
    expect([...named].sort()).toEqual(expect.arrayContaining(['backfill', 'reconcile']));
    expect([...named].filter((name) => !scripts.includes(name))).toEqual([]);
  });

  it('give backfill, reconcile and dashboard only flags their --help lists, and every other flag belongs to a named tool', async () => {
    const usage = {
      backfill: await usageOf('backfill'),
      reconcile: await usageOf('reconcile'),
      dashboard: await usageOf('dashboard'),
    };
    const accepted = {
      backfill: new Set(usage.backfill.match(FLAG) ?? []),
      reconcile: new Set(usage.reconcile.match(FLAG) ?? []),
      dashboard: new Set(usage.dashboard.match(FLAG) ?? []),
    };
    expect(accepted.backfill.size).toBeGreaterThan(5);
    expect(accepted.reconcile.size).toBeGreaterThan(3);
    const problems: string[] = [];
    let commands = 0;
    for (const { guide, text } of await readGuides()) {
      // Flags given on a backfill, reconcile or dashboard command line, up to the end of the line
      // or of the inline code span it is in.
      for (const line of text.split('\n')) {
        for (const m of line.matchAll(/npm run (backfill|reconcile|dashboard)\b([^`\n]*)/g)) {
          commands++;
          const cli = m[1] as keyof typeof accepted;
          for (const flag of m[2]!.match(FLAG) ?? []) {
            if (!accepted[cli].has(flag)) {
              problems.push(`${guide}: npm run ${cli} does not accept ${flag}: ${line.trim()}`);
            }
          }
        }
      }
      // Any flag anywhere: one of ours, or another tool's.
      for (const flag of new Set(text.match(FLAG) ?? [])) {
        if (
          !Object.values(accepted).some((flags) => flags.has(flag)) && !(flag in OTHER_TOOLS_FLAGS)
        ) {
          problems.push(
            `${guide}: ${flag} is accepted by none of our CLIs and is not a known flag of another tool`,
          );
        }
      }
    }
    expect(commands).toBeGreaterThan(10);
    expect(problems).toEqual([]);
  });

  it('name only environment variables that shared/config.ts reads, Supabase injects, the CLIs read or the guide itself exports', async () => {
    const known = new Set([
      ...(await configVariables()),
      ...INJECTED_BY_SUPABASE,
      ...(await cliVariables()),
    ]);
    expect(known).toContain('PROFILE_HEALTH_TOKEN');
    const problems: string[] = [];
    for (const { guide, text, blocks } of await readGuides()) {
      const exported = new Set(
        blocks.filter((b) => b.kind === 'sh').flatMap((b) =>
          [...b.code.matchAll(/^\s*export ([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!)
        ),
      );
      for (const m of text.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(_\*)?/g)) {
        const name = m[0];
        if (name.endsWith('_*')) {
          const prefix = name.slice(0, -1);
          if (![...known].some((k) => k.startsWith(prefix))) {
            problems.push(`${guide}: no variable matches ${name}`);
          }
          continue;
        }
        if (known.has(name) || exported.has(name) || name in NOT_ENVIRONMENT) continue;
        problems.push(
          `${guide}: ${name} is neither read by shared/config.ts or the CLIs, nor injected by Supabase, nor exported by the guide`,
        );
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  it('give supabase db push and the rollback script in forms the walk recognises', async () => {
    const guides = await readGuides();
    const lines = (guide: Guide) =>
      guides.find((g) => g.guide === guide)!.blocks.filter((b) => b.kind === 'sh').flatMap(
        commandLines,
      );
    expect(lines('DEPLOYMENT.md').filter(isPush)).toHaveLength(1);
    expect(lines('ROLLBACK.md').filter(isPush)).toHaveLength(1);
    expect(lines('ROLLBACK.md').filter((l) => RUN_ROLLBACK.test(l))).toHaveLength(2);
    expect(path.relative(ROOT, ROLLBACK_FILE)).toBe('supabase/rollback/rollback.sql');
  });
});

describe('the Supabase CLI in README.md and docs/*.md', () => {
  it('is only ever run as `npx supabase` in a form the tests run with the pinned CLI, and every such form is documented', async () => {
    const problems: string[] = [];
    const used = new Set<CliFormName>();
    for (const { file, text } of await readDocs()) {
      const found = supabaseCommands(file, text);
      problems.push(...found.problems);
      for (const command of found.commands) {
        const form = formOf(command);
        if (form) used.add(form);
        else {problems.push(
            `${file}: not a form tests/deploy/ runs (SUPABASE_CLI_FORMS): ${command}`,
          );}
      }
    }
    expect(problems).toEqual([]);
    expect([...used].sort()).toEqual(Object.keys(SUPABASE_CLI_FORMS).sort());
  });

  it('has each form run by the test file it names, which builds the command from that entry', async () => {
    const problems: string[] = [];
    for (const [name, form] of Object.entries(SUPABASE_CLI_FORMS as Record<string, CliForm>)) {
      const source = await readFile(path.join(ROOT, form.test), 'utf8').catch(() => '');
      if (!new RegExp(`\\bSUPABASE_CLI_FORMS\\.${name}\\b`).test(source)) {
        problems.push(`${form.test} does not run SUPABASE_CLI_FORMS.${name}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('is named with the version package.json pins where README.md and DEPLOYMENT.md introduce it', async () => {
    const pinned = (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    })
      .devDependencies.supabase!;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const deploying = /^## Deploying to a Supabase project\n([\s\S]*?)^## /m.exec(readme)?.[1] ??
      '';
    expect(deploying).toContain(`the Supabase CLI ${pinned} that \`package.json\` pins`);
    const deployment = await readGuide('DEPLOYMENT.md');
    const whatYouNeed = /^## 1\. What you need\n([\s\S]*?)^## /m.exec(deployment)?.[1] ?? '';
    expect(whatYouNeed).toContain(`**Supabase CLI ${pinned}**`);
    expect(whatYouNeed).toContain(`\`npx supabase --version\` prints \`${pinned}\``);
  });
});

describe('the operator guides and the repository', () => {
  it('list every migration file in the order supabase db push applies them', async () => {
    const text = await readGuide('DEPLOYMENT.md');
    const listed = [
      ...new Set([...text.matchAll(/`(\d{14}_[a-z0-9-]+\.sql)`/g)].map((m) => m[1]!)),
    ];
    expect(listed).toEqual((await listMigrations()).map((m) => path.basename(m.file)));
    const rollback = await readGuide('ROLLBACK.md');
    expect(rollback).toContain(
      `deletes the ${
        [
          'zero',
          'one',
          'two',
          'three',
          'four',
          'five',
          'six',
          'seven',
          'eight',
          'nine',
          'ten',
          'eleven',
          'twelve',
          'thirteen',
          'fourteen',
          'fifteen',
          'sixteen',
          'seventeen',
          'eighteen',
          'nineteen',
          'twenty',
          'twenty-one',
          'twenty-two',
          'twenty-three',
          'twenty-four',
          'twenty-five',
          'twenty-six',
          'twenty-seven',
          'twenty-eight',
          'twenty-nine',
          'thirty',
        ][listed.length]
      } versions`,
    );
  });

  it('name, in the pre-flight collision check and in the rollback description, every function rollback.sql drops', async () => {
    const script = await readFile(ROLLBACK_FILE, 'utf8');
    const dropped = [...script.matchAll(/drop function if exists ((?:public|private)\.[a-z_]+)\(/g)]
      .map((m) => m[1]!);
    expect(dropped.length).toBeGreaterThan(20);
    const rollback = await readGuide('ROLLBACK.md');
    expect(dropped.filter((name) => !rollback.includes(`\`${name}\``))).toEqual([]);

    const deployment = await readGuide('DEPLOYMENT.md');
    const collisionList = /p\.proname in \(([\s\S]*?)\)/.exec(deployment)?.[1];
    expect(collisionList).toBeDefined();
    const checked = [...collisionList!.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!).sort();
    expect(checked).toEqual(
      dropped.filter((n) => n.startsWith('public.')).map((n) => n.slice('public.'.length)).sort(),
    );
  });

  it('link only to headings that exist', async () => {
    const guides = await readGuides();
    const anchors = new Map(guides.map((g) => [g.guide as string, anchorsOf(g.text)]));
    const problems: string[] = [];
    for (const { guide, text } of guides) {
      for (const m of text.matchAll(/\]\(([^)\s]*)\)/g)) {
        const target = m[1]!;
        if (/^https?:/.test(target)) continue;
        const [file, anchor] = target.split('#') as [string, string | undefined];
        const targetGuide = file === '' ? guide : file;
        if (!anchors.has(targetGuide)) {
          problems.push(`${guide}: link to ${target}: not one of the guides`);
          continue;
        }
        if (anchor !== undefined && !anchors.get(targetGuide)!.has(anchor)) {
          problems.push(`${guide}: link to ${target}: no such heading`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("DEPLOYMENT.md's backfill and reconcile commands", () => {
  const db = useTestDatabase();
  const api = useLocalApi(db);
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'guides-checkpoint-'));
    await db().query(LEGACY_PROFILE_SYSTEM);
    // Users from before the deployment: the trigger is off while they sign up, so they lack profiles.
    await db().query('update private.settings set trigger_enabled = false');
    await bulkSignUpAsSupabaseAuth(db(), 40, {
      metadataSql: `jsonb_build_object('full_name', 'Old User ' || n)`,
      createdAgo: '2 hours',
    });
    await db().query('update private.settings set trigger_enabled = true');
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('run as written against the local stack, in the order the guide gives them, and leave no user without a profile', async () => {
    const { blocks } = (await readGuides()).find((g) => g.guide === 'DEPLOYMENT.md')!;
    const commands = blocks
      .filter((b) => b.kind === 'sh')
      .flatMap(commandLines)
      .filter((line) => /^npm run (backfill|reconcile)\b/.test(line) && !/--loop\b/.test(line));
    expect(commands).toEqual(
      expect.arrayContaining([
        'npm run backfill -- --dry-run',
        'npm run backfill -- --yes',
        'npm run reconcile',
      ]),
    );

    const scripts = (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }).scripts;
    const env: Record<string, string | undefined> = {
      ...process.env,
      CI: 'true',
      LOG_LEVEL: 'warn',
    };
    for (const name of Object.keys(env)) {
      if (
        name.startsWith('SUPABASE_') || name.startsWith('PROFILE_') || name === 'ALERT_WEBHOOK_URL'
      ) delete env[name];
    }
    env.SUPABASE_URL = api().stack.apiUrl;
    env.SUPABASE_SERVICE_ROLE_KEY = api().stack.keys.serviceRoleKey;

    for (const command of commands) {
      const [, script, rest] = /^npm run (\S+)(?: -- (.*))?$/.exec(command) ?? [];
      const entry = scripts[script!]!.split(' ');
      expect(entry[0]).toBe('tsx');
      // The checkpoint goes to a temporary directory instead of the repository's .data/.
      const args = [
        ...(rest ? rest.split(/\s+/) : []),
        ...(script === 'backfill' ? ['--checkpoint', path.join(dir, 'checkpoint.json')] : []),
      ];
      try {
        await execFileAsync(TSX, [...entry.slice(1), ...args], { cwd: ROOT, env, timeout: 90_000 });
      } catch (error) {
        const e = error as { code?: number; stdout?: string; stderr?: string };
        throw new Error(`${command} exited ${e.code}:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, {
          cause: error,
        });
      }
    }
    const missing = await db().one<{ n: number }>(
      `select count(*)::int as n from auth.users u where not exists (select 1 from public.user_profiles p where p.user_id = u.id)`,
    );
    expect(missing.n).toBe(0);
  });
});
