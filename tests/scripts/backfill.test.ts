import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../dev/postgres.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { bulkSignUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';
import { type CliRun, jsonSummary, runCli, waitUntil } from './run-cli.ts';

const db = useTestDatabase();
const api = useLocalApi(db);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'profile-guard-backfill-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({
  SUPABASE_URL: api().stack.apiUrl,
  SUPABASE_SERVICE_ROLE_KEY: api().stack.keys.serviceRoleKey,
});
const backfill = (args: string[], extra: Record<string, string> = {}) =>
  runCli('backfill', args, { ...env(), ...extra });
const checkpointPath = (name: string) => path.join(dir, `${name}.json`);
const readJson = async (file: string) =>
  JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;

interface Summary {
  status: string;
  dry_run: boolean;
  resumed: boolean;
  scanned: number;
  missing: number;
  created: number;
  failed: number;
  total: { scanned: number; missing: number; created: number; failed: number };
  resume_command: string | null;
  error: { p_after: string | null; message: string } | null;
}

/** Auth users created while the trigger is switched off, so they have no profile. */
async function usersWithoutProfiles(count: number, emailPrefix: string): Promise<string[]> {
  await db().query('update private.settings set trigger_enabled = false');
  try {
    return await bulkSignUpAsSupabaseAuth(db(), count, { emailPrefix });
  } finally {
    await db().query('update private.settings set trigger_enabled = true');
  }
}

async function counts(): Promise<
  { users: number; profiles: number; audit: number; queue: number }
> {
  return await db().one(
    `select (select count(*)::int from auth.users) as users,
            (select count(*)::int from public.user_profiles) as profiles,
            (select count(*)::int from private.audit_logs) as audit,
            (select count(*)::int from private.repair_queue) as queue`,
  );
}

/** Users with no profile or more than one (the second is impossible by the primary key, checked anyway). */
async function usersWithoutExactlyOneProfile(): Promise<number> {
  const row = await db().one<{ n: number }>(
    `select count(*)::int as n from auth.users u
     where (select count(*) from public.user_profiles p where p.user_id = u.id) <> 1`,
  );
  return row.n;
}

function expectNoKey(run: CliRun): void {
  expect(run.output()).not.toContain(api().stack.keys.serviceRoleKey);
}

describe('npm run backfill', () => {
  it('refuses an unknown flag or a bad value with the usage and exit 2, before writing anything', async () => {
    const before = await counts();
    const file = checkpointPath('bad-flags');
    const cases: Array<[string[], string]> = [
      [['--bogus'], "Unknown option '--bogus'"],
      [['--batch-size', '0'], '--batch-size must be a whole number from 1 to 10000, got "0"'],
      [
        ['--batch-size', '20000'],
        '--batch-size must be a whole number from 1 to 10000, got "20000"',
      ],
      [['--max-rate', '-1'], "Option '--max-rate' argument is ambiguous"],
      [['--max-rate=-1'], '--max-rate must be a number greater than 0, got "-1"'],
      [['--limit', 'x'], '--limit must be a whole number from 1 to 9007199254740991, got "x"'],
    ];
    const runs = cases.map(([args]) => backfill([...args, '--yes', '--checkpoint', file]));
    for (const [i, run] of runs.entries()) {
      expect(await run.exit).toBe(2);
      expect(run.stderr()).toContain(cases[i]![1]);
      expect(run.stderr()).toContain('usage: npm run backfill --');
      expect(run.stdout()).toBe('');
    }
    expect(existsSync(file)).toBe(false);
    expect(await counts()).toEqual(before);
  });

  it('refuses a live run off a terminal without --yes, and says to pass it', async () => {
    const before = await counts();
    const file = checkpointPath('no-yes');
    const run = backfill(['--checkpoint', file]);
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toContain(
      'a live run writes profiles and needs confirmation: pass --yes (or --dry-run to only count)',
    );
    expect(existsSync(file)).toBe(false);
    expect(await counts()).toEqual(before);
  });

  it('targets the local stack when SUPABASE_URL is unset, says so in one line and never prints the key', async () => {
    const run = runCli('backfill', ['--checkpoint', checkpointPath('local-default')]);
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toContain(
      'SUPABASE_URL is not set: using the local stack at http://127.0.0.1:54321 with its fixed local secret key\n',
    );
    expect(run.output()).not.toMatch(/eyJ[\w-]+\.[\w-]+/);
  });

  it('refuses an environment without a service key with exit 2, naming the variable and never a value', async () => {
    const run = runCli('backfill', ['--dry-run', '--checkpoint', checkpointPath('no-key')], {
      SUPABASE_URL: api().stack.apiUrl,
    });
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toBe(
      'invalid configuration: SUPABASE_SERVICE_ROLE_KEY: required (or SUPABASE_SECRET_KEYS): the functions act with the service role\n',
    );
    expect(existsSync(checkpointPath('no-key'))).toBe(false);
  });

  it('dry-runs over 2,000 users without profiles: counts them all and writes nothing', async () => {
    await usersWithoutProfiles(2000, 'dry-');
    const before = await counts();
    expect(before).toMatchObject({ users: 2000, profiles: 0 });
    const file = checkpointPath('dry');
    const run = backfill(['--dry-run', '--batch-size', '300', '--checkpoint', file]);
    expect(await run.exit).toBe(0);
    expect(run.stdout()).toContain('backfill (dry run) on http://127.0.0.1:');
    expect(run.stdout()).toContain(': 2000 auth users, 2000 without a profile; batches of 300');
    expect(run.stdout()).toContain('Backfill finished (dry run)');
    expect(run.stdout()).toContain('  scanned 2000, missing 2000, created 0, failed 0\n');
    expect(run.stdout()).toContain(
      '  dry run: nothing was written; 2000 user(s) would get a profile',
    );
    expect(run.stdout()).toMatch(/ {2}duration [\d.]+ (ms|s), [\d.]+ users\/s\n/);
    expectNoKey(run);
    expect(await counts()).toEqual(before);
    expect(await readJson(file)).toMatchObject({
      dry_run: true,
      done: true,
      scanned: 2000,
      missing: 2000,
      created: 0,
      failed: 0,
    });
  });

  it('stops at --limit, prints a progress line every 10 batches off a terminal, and can be resumed from there', async () => {
    const file = checkpointPath('limit');
    const run = backfill([
      '--dry-run',
      '--batch-size',
      '10',
      '--limit',
      '250',
      '--checkpoint',
      file,
    ]);
    expect(await run.exit).toBe(0);
    const progress = run.stdout().split('\n').filter((line) => line.startsWith('progress: '));
    expect(progress).toHaveLength(2);
    expect(progress[0]).toMatch(
      /^progress: 100\/2000 \(5%\) users scanned, missing 100, created 0, failed 0, \d+ users\/s, ETA /,
    );
    expect(progress[1]).toMatch(
      /^progress: 200\/2000 \(10%\) users scanned, missing 200, created 0, failed 0, /,
    );
    expect(run.stdout()).toContain('Backfill stopped at --limit 250 (dry run)');
    expect(run.stdout()).toContain('  scanned 250, missing 250, created 0, failed 0\n');
    expect(run.stdout()).toContain(
      `Resume with: npm run backfill -- --resume --dry-run --batch-size 10 --limit 250 --checkpoint ${file}\n`,
    );
    expect(await readJson(file)).toMatchObject({ dry_run: true, done: false, scanned: 250 });

    const more = backfill([
      '--resume',
      '--dry-run',
      '--batch-size',
      '100',
      '--limit',
      '400',
      '--json',
      '--checkpoint',
      file,
    ]);
    expect(await more.exit).toBe(0);
    expect(jsonSummary<Summary>(more)).toMatchObject({
      status: 'limit',
      resumed: true,
      scanned: 150,
      missing: 150,
      created: 0,
      total: { scanned: 400, missing: 400, created: 0, failed: 0 },
    });
    expect((await counts()).profiles).toBe(0);
  });

  it('gives every user exactly one profile in a live run, with an exact --json summary', async () => {
    const file = checkpointPath('live');
    const run = backfill(['--yes', '--batch-size', '300', '--json', '--checkpoint', file]);
    expect(await run.exit).toBe(0);
    const summary = jsonSummary<Summary>(run);
    expect(summary).toMatchObject({
      status: 'done',
      dry_run: false,
      resumed: false,
      scanned: 2000,
      missing: 2000,
      created: 2000,
      failed: 0,
      total: { scanned: 2000, missing: 2000, created: 2000, failed: 0 },
      error: null,
      resume_command: null,
    });
    expect(run.stderr()).toContain('  scanned 2000, missing 2000, created 2000, failed 0\n');
    expectNoKey(run);
    expect(await usersWithoutExactlyOneProfile()).toBe(0);
    const audit = await db().one<{ n: number }>(
      `select count(*)::int as n from private.audit_logs where source = 'backfill' and outcome = 'created'`,
    );
    expect(audit.n).toBe(2000);
    expect(await readJson(file)).toMatchObject({
      dry_run: false,
      done: true,
      scanned: 2000,
      created: 2000,
    });

    const again = backfill(['--resume', '--yes', '--checkpoint', file]);
    expect(await again.exit).toBe(0);
    expect(again.stdout()).toBe(`nothing to resume: the run saved in ${file} already finished\n`);
  });

  it('resolves the open repair-queue entry of a scanned user who already has a profile, even when nobody is missing', async () => {
    const { user_id: userId } = await db().one<{ user_id: string }>(
      'select user_id from public.user_profiles order by user_id limit 1',
    );
    await db().query(
      `insert into private.repair_queue (user_id, source, reason, next_attempt_at)
       values ($1, 'register', 'profile inserted directly after the RPC failed', now() + interval '1 hour')`,
      [userId],
    );
    try {
      const run = backfill(['--yes', '--json', '--checkpoint', checkpointPath('queue')]);
      expect(await run.exit).toBe(0);
      expect(jsonSummary<Summary>(run)).toMatchObject({ status: 'done', missing: 0, created: 0 });
      const entry = await db().one(
        'select resolved_at is not null as resolved, resolution from private.repair_queue where user_id = $1',
        [userId],
      );
      expect(entry).toEqual({ resolved: true, resolution: 'backfill' });
    } finally {
      await db().query('delete from private.repair_queue where user_id = $1', [userId]);
    }
  });

  it('resumes an interrupted run without losing or repeating a user', async () => {
    const missing = await usersWithoutProfiles(1500, 'resume-');
    const file = checkpointPath('resume');
    const first = backfill([
      '--yes',
      '--batch-size',
      '100',
      '--max-rate',
      '5',
      '--json',
      '--checkpoint',
      file,
    ]);
    await waitUntil(
      first,
      async () =>
        existsSync(file) &&
        ((await readJson(file).catch(() => ({ scanned: 0 }))).scanned as number) >= 200,
      'a checkpoint after two batches',
    );
    first.child.kill('SIGINT');
    expect(await first.exit).toBe(130);
    const interrupted = jsonSummary<Summary>(first);
    const resumeArgs = `--resume --yes --batch-size 100 --max-rate 5 --json --checkpoint ${file}`;
    expect(first.stderr()).toContain(
      'Ctrl-C: finishing the current batch, then saving the checkpoint',
    );
    expect(first.stderr()).toContain(`Resume with: npm run backfill -- ${resumeArgs}\n`);
    expect(interrupted).toMatchObject({
      status: 'interrupted',
      resume_command: `npm run backfill -- ${resumeArgs}`,
    });
    expect(interrupted.scanned).toBeLessThan(3500);
    const saved = await readJson(file);
    expect(saved).toMatchObject({
      done: false,
      scanned: interrupted.scanned,
      created: interrupted.created,
    });

    const second = backfill(resumeArgs.split(' '));
    expect(await second.exit).toBe(0);
    const resumed = jsonSummary<Summary>(second);
    expect(resumed).toMatchObject({ status: 'done', resumed: true, failed: 0 });
    expect(interrupted.created + resumed.created).toBe(missing.length);
    expect(interrupted.scanned + resumed.scanned).toBe(3500);
    expect(resumed.total).toEqual({ scanned: 3500, missing: 1500, created: 1500, failed: 0 });
    expect(second.stderr()).toContain('  whole run since ');

    expect(await usersWithoutExactlyOneProfile()).toBe(0);
    const twice = await db().query(
      `select user_id from private.audit_logs where outcome = 'created' group by user_id having count(*) > 1`,
    );
    expect(twice.rows).toEqual([]);
    const created = await db().one<{ n: number }>(
      `select count(*)::int as n from private.audit_logs where outcome = 'created' and user_id = any($1)`,
      [missing],
    );
    expect(created.n).toBe(1500);
  });

  it('refuses a checkpoint saved for another project or another mode, and leaves it as it was', async () => {
    const foreign = {
      version: 1,
      target: 'https://other-project.supabase.co',
      dry_run: false,
      last_user_id: '00000000-0000-4000-8000-000000000001',
      scanned: 500,
      missing: 10,
      created: 10,
      failed: 0,
      started_at: '2026-11-20T10:00:00.000Z',
      updated_at: '2026-11-20T10:01:00.000Z',
      done: false,
      finished_at: null,
      last_error: null,
    };
    const files = {
      other: [checkpointPath('other-target'), `${JSON.stringify(foreign, null, 2)}\n`],
      mode: [
        checkpointPath('other-mode'),
        JSON.stringify({ ...foreign, target: api().stack.apiUrl }),
      ],
      corrupt: [checkpointPath('corrupt'), '{"not": "a checkpoint"}'],
    } as const;
    for (const [file, text] of Object.values(files)) await writeFile(file, text);
    const before = await counts();

    // Independent refusals, run side by side.
    const [resume, fresh, otherMode, corrupt, missingFile] = [
      backfill(['--resume', '--yes', '--checkpoint', files.other[0]]),
      backfill(['--yes', '--checkpoint', files.other[0]]),
      backfill(['--resume', '--dry-run', '--checkpoint', files.mode[0]]),
      backfill(['--resume', '--yes', '--checkpoint', files.corrupt[0]]),
      backfill(['--resume', '--yes', '--checkpoint', checkpointPath('never-written')]),
    ];
    expect(await Promise.all([resume, fresh, otherMode, corrupt, missingFile].map((r) => r!.exit)))
      .toEqual([2, 2, 2, 2, 2]);
    expect(resume!.stderr()).toContain(
      `--resume: the checkpoint ${
        files.other[0]
      } is for https://other-project.supabase.co, not ${api().stack.apiUrl}: ` +
        'set SUPABASE_URL to that project to resume it, or pass another --checkpoint\n',
    );
    expect(fresh!.stderr()).toContain(
      `${
        files.other[0]
      } holds an unfinished backfill of https://other-project.supabase.co (500 users scanned, saved 2026-11-20T10:01:00.000Z): ` +
        'pass --resume to continue it, or delete the file (or pass another --checkpoint) to start over\n',
    );
    expect(otherMode!.stderr()).toContain(
      `--resume: the checkpoint ${
        files.mode[0]
      } is of a live run, and this is a dry run: drop --dry-run to resume it, or pass another --checkpoint\n`,
    );
    expect(corrupt!.stderr()).toContain(`${files.corrupt[0]} is not a backfill checkpoint (`);
    expect(missingFile!.stderr()).toContain(
      `--resume: there is no checkpoint at ${
        checkpointPath('never-written')
      }; start a run without --resume\n`,
    );
    for (const [file, text] of Object.values(files)) {
      expect(await readFile(file, 'utf8')).toBe(text);
    }
    expect(existsSync(checkpointPath('never-written'))).toBe(false);
    expect(await counts()).toEqual(before);
  });

  it('stops on a batch that keeps failing, names its cursor, keeps the checkpoint and exits 1', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const file = checkpointPath('failing');
    const after = '00000000-0000-4000-8000-00000000abcd';
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        target: closed,
        dry_run: false,
        last_user_id: after,
        scanned: 300,
        missing: 7,
        created: 7,
        failed: 0,
        started_at: '2026-11-21T09:00:00.000Z',
        updated_at: '2026-11-21T09:00:05.000Z',
        done: false,
        finished_at: null,
        last_error: null,
      }),
    );
    const run = backfill(['--resume', '--yes', '--json', '--checkpoint', file], {
      SUPABASE_URL: closed,
      PROFILE_RETRY_MAX_ATTEMPTS: '2',
      PROFILE_RETRY_DEADLINE_MS: '500',
    });
    expect(await run.exit).toBe(1);
    const summary = jsonSummary<Summary>(run);
    expect(summary).toMatchObject({
      status: 'batch_failed',
      scanned: 0,
      created: 0,
      total: { scanned: 300, missing: 7, created: 7, failed: 0 },
      resume_command: `npm run backfill -- --resume --yes --json --checkpoint ${file}`,
    });
    expect(summary.error?.p_after).toBe(after);
    expect(summary.error?.message).toMatch(
      /^backfill_missing_profiles failed after 2 attempt\(s\) \(retries exhausted: attempts\): TypeError: fetch failed \(connect ECONNREFUSED/,
    );
    expect(run.stderr()).toContain(
      `  the batch after ${after} failed: backfill_missing_profiles failed after 2 attempt(s)`,
    );
    expect(run.stderr()).toContain(`  checkpoint saved: ${file}`);
    expectNoKey(run);
    expect(await readJson(file)).toMatchObject({
      target: closed,
      last_user_id: after,
      scanned: 300,
      created: 7,
      done: false,
      last_error: { p_after: after, message: summary.error!.message },
    });
  });
});
