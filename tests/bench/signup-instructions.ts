// Instructions per signup, counted by valgrind (callgrind) in a single-user PostgreSQL backend:
// deterministic where users/s on a shared 2-core machine moves by ±5 % from run to run, so it can
// tell which part of the trigger costs what. Each signup is its own transaction, written as
// Supabase Auth writes it (users row with role '', identity, UPDATE). Two runs of different length
// per variant; their difference divided by the extra signups removes start-up and shutdown.
// Needs valgrind on the PATH (Debian: apt-get install valgrind); without it the benchmark says so
// and reports nothing.
import { spawn, spawnSync } from 'node:child_process';
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrateDatabase } from '../../dev/migrate.ts';
import { clusterOwner, prepareDataDir, reachableNativeDir } from '../../dev/postgres-owner.ts';
import { installedNative, startEmbeddedCluster } from '../../dev/postgres.ts';
import { envInt, log, quiet, type ResultRow, round } from './lib.ts';
import { NAIVE_SQL } from './signup.ts';

type Variant = 'none' | 'naive' | 'ours';

const SIGNUP_FUNCTION = `
create function public.bench_signup(i integer) returns void language plpgsql as $f$
declare v_id uuid := gen_random_uuid();
begin
  insert into auth.users (instance_id, id, aud, role, email, encrypted_password, raw_app_meta_data, raw_user_meta_data,
                          created_at, updated_at)
  values ('00000000-0000-0000-0000-000000000000', v_id, 'authenticated', '', 'signup-' || v_id || '@example.test', 'x',
          '{"provider": "email", "providers": ["email"]}',
          jsonb_build_object('full_name', 'Bench User ' || i, 'avatar_url', 'https://example.test/avatars/' || i || '.png'),
          now(), now());
  insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
  values (v_id::text, v_id, jsonb_build_object('sub', v_id::text, 'email', 'signup-' || v_id || '@example.test'), 'email', now(), now(), now());
  update auth.users set role = 'authenticated', updated_at = now() where id = v_id;
end $f$;`;

function triggersFor(variant: Variant): string {
  return `alter table auth.users ${
    variant === 'naive' ? 'enable' : 'disable'
  } trigger bench_on_auth_user_created;\n\n` +
    `alter table auth.users ${
      variant === 'ours' ? 'enable' : 'disable'
    } trigger users_ensure_profile;\n\n`;
}

/** callgrind's instruction count for one single-user backend reading `input` on stdin. */
function countInstructions(
  postgres: string,
  dataDir: string,
  input: string,
  owner: ReturnType<typeof clusterOwner>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('valgrind', [
      '--tool=callgrind',
      '--callgrind-out-file=/dev/null',
      postgres,
      '--single',
      '-j',
      '-D',
      dataDir,
      '-c',
      'fsync=off',
      'postgres',
    ], { stdio: ['pipe', 'ignore', 'pipe'], ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', () => {
      const errors = stderr.split('\n').filter((line) => / (ERROR|FATAL): /.test(line));
      if (errors.length > 0) return reject(new Error(`the backend reported: ${errors[0]}`));
      const collected = /Collected : (\d+)/.exec(stderr);
      if (!collected) {
        return reject(new Error(`no instruction count from valgrind: ${stderr.slice(-500)}`));
      }
      resolve(Number(collected[1]));
    });
    child.stdin.end(input);
  });
}

export async function signupInstructionsBench(): Promise<
  { rows: ResultRow[]; details: Record<string, unknown> }
> {
  if (spawnSync('valgrind', ['--version']).status !== 0) {
    log(
      'signup-instructions: valgrind is not installed (Debian: apt-get install valgrind); nothing measured',
    );
    return { rows: [], details: { skipped: 'valgrind not installed' } };
  }
  const seedUsers = envInt('BENCH_INSTRUCTIONS_SEED_USERS', 20000);
  const short = envInt('BENCH_INSTRUCTIONS_SHORT', 30);
  const long = envInt('BENCH_INSTRUCTIONS_LONG', 330);
  log(
    `signup-instructions: ${
      long - short
    } signups per variant (${long} − ${short}), over ${seedUsers} existing users`,
  );
  const owner = clusterOwner();
  const installed = await installedNative();
  const nativeDir = owner
    ? await reachableNativeDir(owner, installed.nativeDir, installed.version)
    : installed.nativeDir;
  const postgres = path.join(nativeDir, 'bin', 'postgres');
  const workDir = await mkdtemp(path.join(tmpdir(), 'profile-bench-instructions-'));
  // Entered by the postgres system user when this runs as root.
  await chmod(workDir, 0o755);
  const template = path.join(workDir, 'template');
  try {
    const cluster = await startEmbeddedCluster({ dataDir: template, persistent: true });
    try {
      await migrateDatabase(cluster.url, { log: quiet });
      const client = new pg.Client({ connectionString: cluster.url });
      await client.connect();
      try {
        await client.query(NAIVE_SQL);
        await client.query(SIGNUP_FUNCTION);
        // Existing users and profiles, so the indexes are not trivially small.
        await client.query(`alter table auth.users disable trigger users_ensure_profile`);
        await client.query(`alter table auth.users disable trigger bench_on_auth_user_created`);
        await client.query(
          `insert into auth.users (instance_id, id, aud, role, email, encrypted_password, raw_user_meta_data, created_at, updated_at)
           select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
                  'seed-' || g || '@example.test', 'x', jsonb_build_object('full_name', 'Seed ' || g), now(), now()
           from generate_series(1, $1) g`,
          [seedUsers],
        );
        await client.query(
          `insert into public.user_profiles (user_id, email, full_name, created_via)
                            select id, email, raw_user_meta_data ->> 'full_name', 'backfill' from auth.users`,
        );
        await client.query(
          `insert into public.bench_naive_profiles (id, full_name) select id, raw_user_meta_data ->> 'full_name' from auth.users`,
        );
        await client.query('vacuum analyze');
      } finally {
        await client.end();
      }
    } finally {
      await cluster.stop();
    }

    const perSignup: Record<Variant, number> = { none: 0, naive: 0, ours: 0 };
    for (const variant of ['none', 'naive', 'ours'] as const) {
      const counts: number[] = [];
      for (const signups of [short, long]) {
        const run = path.join(workDir, 'run');
        await rm(run, { recursive: true, force: true });
        await cp(template, run, { recursive: true });
        if (owner) await prepareDataDir(owner, run);
        const statements = Array.from(
          { length: signups },
          (_, i) => `select public.bench_signup(${i + 1});\n\n`,
        ).join('');
        if (owner) spawnSync('chown', ['-R', `${owner.uid}:${owner.gid}`, run]);
        counts.push(
          await countInstructions(postgres, run, triggersFor(variant) + statements, owner),
        );
      }
      perSignup[variant] = Math.round((counts[1]! - counts[0]!) / (long - short));
      log(`signup-instructions ${variant}: ${perSignup[variant]} instructions per signup`);
    }
    const overhead = (v: Variant) => perSignup[v] - perSignup.none;
    const rows: ResultRow[] = [
      {
        benchmark: 'signup instructions',
        metric: 'instructions per signup transaction (callgrind)',
        baseline: `no trigger ${perSignup.none.toLocaleString('en')}; naive ${
          perSignup.naive.toLocaleString('en')
        }`,
        ours: perSignup.ours.toLocaleString('en'),
        ratio: `${round(perSignup.naive / perSignup.ours, 2)}× (naive ÷ ours)`,
        target: '—',
        verdict: 'info',
      },
      {
        benchmark: 'signup instructions',
        metric: 'trigger overhead over no trigger (instructions)',
        baseline: `naive ${overhead('naive').toLocaleString('en')}`,
        ours: overhead('ours').toLocaleString('en'),
        ratio: `${round(overhead('ours') / overhead('naive'), 1)}×`,
        target: '—',
        verdict: 'info',
      },
    ];
    return {
      rows,
      details: { per_signup: perSignup, signups: long - short, seed_users: seedUsers },
    };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
