// The database commands of docs/DEPLOYMENT.md §4.1–4.2 and ROLLBACK.md §4.1, with the real
// Supabase CLI, in the forms the guides show (SUPABASE_CLI_FORMS): `db push --db-url` (with
// `--dry-run`, and `--include-all` where a push refuses), `migration list --db-url` and
// `migration fetch --db-url`, against a database that starts as a Supabase project (the bootstrap
// only), logged in as the non-superuser `postgres` role a hosted project's connection string
// names. stdin is closed, so the push's confirmation takes its default (yes), as on a terminal.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { databaseUrl, LOCAL_ROLE_PASSWORD } from '../../dev/database-url.ts';
import {
  applyBootstrap,
  applyMigrations,
  applyRollback,
  listMigrations,
} from '../../dev/migrate.ts';
import { createTestDatabase, type TestDatabase, useTestDatabase } from '../helpers/database.ts';
import {
  cliArgv,
  type CliForm,
  type CliSandbox,
  createCliSandbox,
  SUPABASE_CLI_FORMS,
} from '../helpers/supabase-cli.ts';
import { githubMetadata, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The connection string `db push --db-url` gets, as a hosted project's: role postgres, which may
 * create schemas in the database; here also loopback and no TLS.
 */
async function cliDatabaseUrl(db: TestDatabase): Promise<string> {
  const url = new URL(databaseUrl(db.url, { role: 'postgres', password: LOCAL_ROLE_PASSWORD }));
  if (!['127.0.0.1', 'localhost'].includes(url.hostname)) {
    throw new Error(`the CLI may only reach loopback; this suite's server is on ${url.hostname}`);
  }
  // A clone of the template loses database-level grants (they live in pg_database, see
  // applyBootstrap); grant what a project's postgres has, and nothing more, so a test can still
  // remove the history schema first.
  await db.query(`grant create, connect on database ${pg.escapeIdentifier(db.name)} to postgres`);
  // Roles are cluster-wide and the bootstrap gives `postgres` no password (a hosted project has
  // one): set the local-only one, as `npm run db` does, only if it is not set yet, because other
  // test files alter the same role at the same time.
  const probe = new pg.Client({ connectionString: url.toString() });
  try {
    await probe.connect();
  } catch (error) {
    if ((error as { code?: string }).code !== '28P01') throw error;
    await db.query(`alter role postgres with password '${LOCAL_ROLE_PASSWORD}'`);
  } finally {
    await probe.end().catch(() => {});
  }
  // Without it the CLI insists on TLS ("The server does not support SSL connections").
  url.searchParams.set('sslmode', 'disable');
  return url.toString();
}

/** Runs one of the guides' database forms of the CLI against `db`: `--db-url` is its URL. */
async function runForm(cli: CliSandbox, db: TestDatabase, form: CliForm) {
  return await cli.run(cliArgv(form, { values: { '--db-url': await cliDatabaseUrl(db) } }));
}

/** `npx supabase db push --db-url "$DATABASE_URL"`, as DEPLOYMENT.md §4.1 and ROLLBACK.md §4.1 run it. */
async function push(cli: CliSandbox, db: TestDatabase) {
  return await runForm(cli, db, SUPABASE_CLI_FORMS.dbPush);
}

/** The files the CLI said it applied, in the order it said so. */
function appliedFiles(stderr: string): string[] {
  return [...stderr.matchAll(/^Applying migration (\S+)\.\.\.$/gm)].map((m) => m[1]!);
}

/** The files a dry run said it would push. */
function wouldPush(stderr: string): string[] {
  const list = stderr.split('Would push these migrations:\n')[1] ?? '';
  return [...list.matchAll(/^ • (\S+\.sql)$/gm)].map((m) => m[1]!);
}

/** The rows of `migration list`: each version under Local and under Remote ('' when absent). */
function listedVersions(stdout: string): Array<{ local: string; remote: string }> {
  return stdout
    .split('\n')
    .map((line) => line.split('|').map((cell) => cell.trim().replace(/^`|`$/g, '').trim()))
    .filter((cells) => cells.length === 3 && /^\d{14}$/.test(cells[0] || cells[1]!))
    .map(([local, remote]) => ({ local: local!, remote: remote! }));
}

async function history(db: TestDatabase): Promise<Array<{ version: string; name: string }>> {
  const { rows } = await db.query<{ version: string; name: string }>(
    'select version, name from supabase_migrations.schema_migrations order by version',
  );
  return rows;
}

async function expectedHistory(): Promise<Array<{ version: string; name: string }>> {
  return (await listMigrations()).map(({ version, name }) => ({ version, name }));
}

async function migrationFiles(): Promise<string[]> {
  return (await listMigrations()).map((m) => path.basename(m.file));
}

/** dev/migrate.ts's runner on this database, as `npm start` and the test templates run it. */
async function runOurRunner(db: TestDatabase, options: { upTo?: string } = {}) {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    // Already applied to the template: this only grants again what a clone lost.
    await applyBootstrap(client);
    return await applyMigrations(client, options);
  } finally {
    await client.end();
  }
}

async function profilesOf(db: TestDatabase, ids: string[]) {
  const { rows } = await db.query<
    { user_id: string; username: string | null; full_name: string | null; created_via: string }
  >(
    'select user_id, username, full_name, created_via from public.user_profiles where user_id = any($1) order by user_id',
    [ids],
  );
  return rows;
}

async function usersWithoutProfile(db: TestDatabase): Promise<number> {
  const { n } = await db.one<{ n: number }>(
    'select count(*)::int as n from auth.users u where not exists (select 1 from public.user_profiles p where p.user_id = u.id)',
  );
  return n;
}

/** The test server's port: the one thing on loopback the CLI may reach. */
const serverPort = () => Number(new URL(inject('serverUrl')).port);

let cli: CliSandbox;

beforeAll(async () => {
  cli = await createCliSandbox({ loopbackPorts: [serverPort()] });
});

afterAll(async () => {
  await cli?.dispose();
});

describe('supabase db push --db-url on a Supabase project that has none of our migrations', () => {
  const db = useTestDatabase('bare');

  it('migration list shows every version under Local and none under Remote', async () => {
    const result = await runForm(cli, db(), SUPABASE_CLI_FORMS.migrationList);

    expect(result.code).toBe(0);
    expect(listedVersions(result.stdout)).toEqual(
      (await listMigrations()).map((m) => ({ local: m.version, remote: '' })),
    );
  });

  it('db push --dry-run lists every file of supabase/migrations in file-name order and applies nothing', async () => {
    const result = await runForm(cli, db(), SUPABASE_CLI_FORMS.dbPushDryRun);

    expect({ code: result.code, stdout: result.stdout }).toEqual({
      code: 0,
      stdout: 'Finished supabase db push.\n',
    });
    expect(result.stderr).toContain('DRY RUN: migrations will *not* be pushed to the database.');
    expect(wouldPush(result.stderr)).toEqual(await migrationFiles());
    expect(appliedFiles(result.stderr)).toEqual([]);
    expect(await history(db())).toEqual([]);
    expect((await db().one('select to_regclass($1) as t', ['public.user_profiles'])).t).toBeNull();
  });

  it('applies every file of supabase/migrations in file-name order and finishes', async () => {
    const result = await push(cli, db());

    expect({ code: result.code, stdout: result.stdout }).toEqual({
      code: 0,
      stdout: 'Finished supabase db push.\n',
    });
    expect(appliedFiles(result.stderr)).toEqual(await migrationFiles());
  });

  it('records exactly every migration, version and name, in supabase_migrations.schema_migrations', async () => {
    expect(await history(db())).toEqual(await expectedHistory());
  });

  it('migration list then shows every version under Local and Remote', async () => {
    const result = await runForm(cli, db(), SUPABASE_CLI_FORMS.migrationList);

    expect(result.code).toBe(0);
    expect(listedVersions(result.stdout)).toEqual(
      (await listMigrations()).map((m) => ({ local: m.version, remote: m.version })),
    );
  });

  it('gives a user who then signs up through Supabase Auth a profile, made by the trigger', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      userMetadata: { full_name: 'Ada Lovelace', username: 'ada' },
    });

    expect(await profilesOf(db(), [id])).toEqual([{
      user_id: id,
      username: 'ada',
      full_name: 'Ada Lovelace',
      created_via: 'trigger',
    }]);
    const { rows } = await db().query(
      'select source, outcome from private.audit_logs where user_id = $1',
      [id],
    );
    expect(rows).toEqual([{ source: 'trigger', outcome: 'created' }]);
  });

  it('applies nothing on a second push and says the database is up to date', async () => {
    const result = await push(cli, db());

    expect({ code: result.code, stdout: result.stdout }).toEqual({
      code: 0,
      stdout: 'Remote database is up to date.\n',
    });
    expect(appliedFiles(result.stderr)).toEqual([]);
    expect(await history(db())).toEqual(await expectedHistory());
  });
});

describe('supabase db push on a project that already has users', () => {
  const db = useTestDatabase('bare');
  const users: Record<'old' | 'recent' | 'justNow', string> = { old: '', recent: '', justNow: '' };

  beforeAll(async () => {
    // Signed up before the push, with no trigger of ours: a month ago, two hours ago and a moment ago.
    users.old = await signUpAsSupabaseAuth(db(), {
      userMetadata: { full_name: 'Grace Hopper', username: 'grace' },
      createdAt: new Date(Date.now() - 30 * DAY_MS),
    });
    users.recent = await signUpAsSupabaseAuth(db(), {
      provider: 'github',
      userMetadata: githubMetadata(),
      createdAt: new Date(Date.now() - 2 * 60 * 60 * 1000),
    });
    users.justNow = await signUpAsSupabaseAuth(db());
  });

  it('applies every migration and creates no profile for the users already there', async () => {
    const result = await push(cli, db());

    expect(result.code).toBe(0);
    expect(appliedFiles(result.stderr)).toEqual(await migrationFiles());
    expect(await usersWithoutProfile(db())).toBe(3);
  });

  it('makes health report every user already there as missing at once (the migration found them): status down until they are repaired', async () => {
    const { health } = await db().one('select public.profile_system_health() as health');

    expect(health.status).toBe('down');
    expect(health.checks.missing_profiles).toMatchObject({ ok: false, value: 3, queued: 0 });
  });

  it('lets the backfill give the users a profile from their metadata', async () => {
    const { batch } = await db().one(
      'select public.backfill_missing_profiles(1, null, false) as batch',
    );

    expect(batch).toMatchObject({ scanned: 1, created: 1, failed: 0, done: false });
    expect(await usersWithoutProfile(db())).toBe(2);
  });

  it('lets the reconciler repair every user the migration found that still has none, from their metadata', async () => {
    const { run } = await db().one('select public.reconcile_profiles() as run');

    expect(run.sweep).toEqual({ missing: 2, created: 2, failed: 0 });
    expect(run.missing_profiles).toBe(0);
    expect(await usersWithoutProfile(db())).toBe(0);
    expect(await profilesOf(db(), [users.old, users.recent])).toEqual(expect.arrayContaining([
      { user_id: users.old, username: 'grace', full_name: 'Grace Hopper', created_via: 'backfill' },
      {
        user_id: users.recent,
        username: 'octocat',
        full_name: 'The Octocat',
        created_via: 'backfill',
      },
    ]));
  });
});

describe('supabase db push refusing, and the way out DEPLOYMENT.md §4.2 gives', () => {
  const scratch: Array<{ close(): Promise<void> } | CliSandbox> = [];
  afterAll(async () => {
    await Promise.all(scratch.map((s) => ('dispose' in s ? s.dispose() : s.close())));
  });
  const project = async () => {
    const db = await createTestDatabase('bare');
    const sandbox = await createCliSandbox({ loopbackPorts: [serverPort()] });
    scratch.push(db, sandbox);
    return { db, sandbox, migrations: path.join(sandbox.workdir, 'supabase', 'migrations') };
  };
  /** A migration of the project's own, applied (from another repository or the SQL editor) and recorded. */
  const theirMigration = async (db: TestDatabase, version: string) => {
    await db.query('create table public.theirs (id integer)');
    await db.query(
      `insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, 'their-table', $2)`,
      [
        version,
        ['create table public.theirs (id integer)'],
      ],
    );
  };

  it('history has a version the checkout lacks: the push refuses, migration fetch writes that file from the history and leaves ours, and the push then applies ours', async () => {
    const { db, sandbox, migrations } = await project();
    await theirMigration(db, '20250101000000');

    const refused = await push(sandbox, db);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'Remote migration versions not found in local migrations directory.',
    );
    expect(await history(db)).toHaveLength(1);

    const fetched = await runForm(sandbox, db, SUPABASE_CLI_FORMS.migrationFetch);
    expect(fetched.code).toBe(0);
    expect((await readdir(migrations)).sort()).toEqual(
      ['20250101000000_their-table.sql', ...(await migrationFiles())].sort(),
    );
    expect(await readFile(path.join(migrations, '20250101000000_their-table.sql'), 'utf8')).toBe(
      'create table public.theirs (id integer);\n',
    );
    for (const migration of await listMigrations()) {
      expect(await readFile(path.join(migrations, path.basename(migration.file)), 'utf8')).toBe(
        await readFile(migration.file, 'utf8'),
      );
    }

    const pushed = await push(sandbox, db);
    expect(pushed.code).toBe(0);
    expect(appliedFiles(pushed.stderr)).toEqual(await migrationFiles());
    expect(await history(db)).toEqual([
      { version: '20250101000000', name: 'their-table' },
      ...(await expectedHistory()),
    ]);
  });

  it('history has a version newer than ours: the push refuses and names --include-all, and db push --include-all applies ours', async () => {
    const { db, sandbox, migrations } = await project();
    await writeFile(
      path.join(migrations, '20270101000000_their-table.sql'),
      'create table public.theirs (id integer);\n',
    );
    await theirMigration(db, '20270101000000');

    const refused = await push(sandbox, db);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'Found local migration files to be inserted before the last migration on remote database.',
    );
    expect(refused.stderr).toContain(
      'Rerun the command with --include-all flag to apply these migrations:',
    );
    expect(await history(db)).toHaveLength(1);

    const pushed = await runForm(sandbox, db, SUPABASE_CLI_FORMS.dbPushIncludeAll);
    expect(pushed.code).toBe(0);
    expect(appliedFiles(pushed.stderr)).toEqual(await migrationFiles());
    expect(await history(db)).toEqual([...(await expectedHistory()), {
      version: '20270101000000',
      name: 'their-table',
    }]);
  });
});

describe('supabase db push after the rollback script, as ROLLBACK.md §4.1 re-enables', () => {
  const db = useTestDatabase('bare');

  it('the dry run lists every migration again and the push applies them all, keeping the profiles', async () => {
    expect((await push(cli, db())).code).toBe(0);
    const id = await signUpAsSupabaseAuth(db(), {
      userMetadata: { full_name: 'Ada Lovelace', username: 'ada' },
    });
    await db().withClient((client) => applyRollback(client));
    expect(await history(db())).toEqual([]);

    const dryRun = await runForm(cli, db(), SUPABASE_CLI_FORMS.dbPushDryRun);
    expect(dryRun.code).toBe(0);
    expect(wouldPush(dryRun.stderr)).toEqual(await migrationFiles());

    const pushed = await push(cli, db());
    expect(pushed.code).toBe(0);
    expect(appliedFiles(pushed.stderr)).toEqual(await migrationFiles());
    expect(await history(db())).toEqual(await expectedHistory());
    expect(await profilesOf(db(), [id])).toEqual([{
      user_id: id,
      username: 'ada',
      full_name: 'Ada Lovelace',
      created_via: 'trigger',
    }]);
  });
});

describe('supabase db push meeting a migration that fails', () => {
  const db = useTestDatabase('bare');

  it('applies each migration in its own transaction: those before it stay, nothing of it does, and it exits 1', async () => {
    const failing = await createCliSandbox({ loopbackPorts: [serverPort()] });
    try {
      await writeFile(
        path.join(failing.workdir, 'supabase', 'migrations', '20991231000000_fails-halfway.sql'),
        'create table public.half_done (id integer);\nselect 1 / 0;\n',
      );
      const result = await push(failing, db());

      expect(result.code).toBe(1);
      expect(result.stderr).toContain('ERROR: division by zero (SQLSTATE 22012)');
      expect(appliedFiles(result.stderr)).toEqual([
        ...(await migrationFiles()),
        '20991231000000_fails-halfway.sql',
      ]);
    } finally {
      await failing.dispose();
    }
    expect(await history(db())).toEqual(await expectedHistory());
    expect((await db().one('select to_regclass($1) as t', ['public.half_done'])).t).toBeNull();
  });
});

describe('the migration history dev/migrate.ts and the Supabase CLI share', () => {
  const databases: TestDatabase[] = [];
  const freshProject = async () => {
    const db = await createTestDatabase('bare');
    databases.push(db);
    return db;
  };

  afterAll(async () => {
    await Promise.all(databases.map((db) => db.close()));
  });

  it('a push after dev/migrate.ts has applied every migration finds nothing to apply', async () => {
    const db = await freshProject();
    expect(await runOurRunner(db)).toHaveLength((await listMigrations()).length);

    const result = await push(cli, db);

    expect({ code: result.code, stdout: result.stdout }).toEqual({
      code: 0,
      stdout: 'Remote database is up to date.\n',
    });
  });

  it('a push after dev/migrate.ts stopped halfway applies exactly the rest', async () => {
    const db = await freshProject();
    const all = await listMigrations();
    const half = Math.floor(all.length / 2);
    await runOurRunner(db, { upTo: all[half - 1]!.version });

    const result = await push(cli, db);

    expect(result.code).toBe(0);
    expect(appliedFiles(result.stderr)).toEqual(all.slice(half).map((m) => path.basename(m.file)));
    expect(await history(db)).toEqual(await expectedHistory());
  });

  it('dev/migrate.ts finds nothing to apply after a push', async () => {
    const db = await freshProject();
    expect((await push(cli, db)).code).toBe(0);

    expect(await runOurRunner(db)).toEqual([]);
  });

  it('dev/migrate.ts applies exactly the rest after a push of the first half', async () => {
    const db = await freshProject();
    const all = await listMigrations();
    const half = Math.floor(all.length / 2);
    // A checkout that only had the first half of the files.
    const partial = await createCliSandbox({ loopbackPorts: [serverPort()] });
    try {
      for (const migration of all.slice(half)) {
        await rm(
          path.join(partial.workdir, 'supabase', 'migrations', path.basename(migration.file)),
        );
      }
      expect((await push(partial, db)).code).toBe(0);
    } finally {
      await partial.dispose();
    }

    expect((await runOurRunner(db)).map((m) => m.version)).toEqual(
      all.slice(half).map((m) => m.version),
    );
    expect(await history(db)).toEqual(await expectedHistory());
  });

  it('the CLI creates the history table with exactly the columns dev/migrate.ts creates', async () => {
    const columns = async (db: TestDatabase) =>
      (
        await db.query(
          `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
                               coalesce(a.attnum = any(i.indkey), false) as primary_key
                        from pg_attribute a
                        left join pg_index i on i.indrelid = a.attrelid and i.indisprimary
                        where a.attrelid = 'supabase_migrations.schema_migrations'::regclass and a.attnum > 0 and not a.attisdropped
                        order by a.attnum`,
        )
      ).rows;
    const ours = await freshProject();
    await runOurRunner(ours);
    // A project that never had a push: no supabase_migrations schema until the CLI makes one.
    const theirs = await freshProject();
    await theirs.query('drop schema supabase_migrations cascade');

    expect((await push(cli, theirs)).code).toBe(0);

    expect(await columns(theirs)).toEqual(await columns(ours));
    expect(await columns(ours)).toEqual([
      { name: 'version', type: 'text', not_null: true, primary_key: true },
      { name: 'statements', type: 'text[]', not_null: false, primary_key: false },
      { name: 'name', type: 'text', not_null: false, primary_key: false },
    ]);
  });

  it('records each migration as its statements where ours records the whole file, and every statement is in that file', async () => {
    const ours = await freshProject();
    await runOurRunner(ours);
    const theirs = await freshProject();
    expect((await push(cli, theirs)).code).toBe(0);
    const recorded = async (db: TestDatabase) =>
      (await db.query<{ version: string; statements: string[] }>(
        'select version, statements from supabase_migrations.schema_migrations order by version',
      ))
        .rows;

    const files = await Promise.all((await listMigrations()).map((m) => readFile(m.file, 'utf8')));
    expect((await recorded(ours)).map((r) => r.statements)).toEqual(files.map((file) => [file]));
    for (const [index, row] of (await recorded(theirs)).entries()) {
      expect(row.statements.length).toBeGreaterThan(1);
      for (const statement of row.statements) expect(files[index]).toContain(statement);
    }
  });
});
