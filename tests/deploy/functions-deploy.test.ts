// The deploy path of docs/DEPLOYMENT.md §6.3 with the real Supabase CLI (npm package `supabase`,
// pinned in package.json): `supabase functions deploy register ensure-profile profile-health
// --use-api`, run on this checkout against a local Management API stand-in. What it uploads is
// checked against Deno's own module graph of each entry point, then booted on its own — no
// checkout, no node_modules, an empty DENO_DIR — as the hosted runtime boots it, and served.
// Then `functions list` and `functions delete` (docs/TROUBLESHOOTING.md, docs/ROLLBACK.md §2.2)
// against the same stand-in. Every command is built from its entry in SUPABASE_CLI_FORMS.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwk } from '../../dev/keys.ts';
import { type ManagementApi, startManagementApi } from '../../dev/management-api.ts';
import { CORS_HEADERS } from '../../shared/http.ts';
import { useTestDatabase } from '../helpers/database.ts';
import {
  type CliDeploy,
  deployWithSupabaseCli,
  managementApiEnv,
  TEST_ACCESS_TOKEN,
  TEST_PROJECT_REF,
} from '../helpers/functions-deploy.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { moduleGraphFiles } from '../helpers/module-graph.ts';
import {
  cliArgv,
  type CliForm,
  type CliSandbox,
  createCliSandbox,
  SUPABASE_CLI_FORMS,
} from '../helpers/supabase-cli.ts';
import { bootUploadedFunction, type UploadedFunction } from '../helpers/uploaded-function.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FUNCTIONS = ['register', 'ensure-profile', 'profile-health'] as const;
const CLI_STATE = path.join(ROOT, 'supabase', '.temp');

interface FunctionSettings {
  verify_jwt?: boolean;
  import_map?: string;
}

async function functionSettings(): Promise<Record<string, FunctionSettings>> {
  const config = parseToml(await readFile(path.join(ROOT, 'supabase', 'config.toml'), 'utf8')) as {
    functions?: Record<string, FunctionSettings>;
  };
  return config.functions ?? {};
}

/** Files of the checkout (outside node_modules, .git, .data and the CLI's supabase/.temp) changed since `since`. */
async function changedSince(since: number): Promise<string[]> {
  const skipped = new Set(['node_modules', '.git', '.data', path.join('supabase', '.temp')]);
  const changed: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
      const relative = path.join(dir, entry.name);
      if (skipped.has(relative)) continue;
      if (entry.isDirectory()) await walk(relative);
      else if ((await stat(path.join(ROOT, relative))).mtimeMs >= since) changed.push(relative);
    }
  };
  await walk('');
  return changed;
}

async function cliState(): Promise<Record<string, string> | null> {
  const entries = await readdir(CLI_STATE, { recursive: true, withFileTypes: true }).catch(() =>
    null
  );
  if (!entries) return null;
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return Object.fromEntries(
    await Promise.all(
      files.map(async (f) => [path.relative(CLI_STATE, f), await readFile(f, 'utf8')] as const),
    ),
  );
}

const uploadedPaths = (deploy: CliDeploy, name: string) =>
  deploy.live.get(name)!.files.map((f) => f.path).sort();

let api: ManagementApi;
let deploy: CliDeploy;
let deployMs: number;
let graphs: Record<string, string[]>;
let settings: Record<string, FunctionSettings>;
let stateBefore: Record<string, string> | null;
let startedAt: number;

beforeAll(async () => {
  api = await startManagementApi({ accessToken: TEST_ACCESS_TOKEN, projectRef: TEST_PROJECT_REF });
  settings = await functionSettings();
  stateBefore = await cliState();
  startedAt = Date.now();
  const [deployed, ...entryGraphs] = await Promise.all([
    (async () => {
      const started = performance.now();
      const result = await deployWithSupabaseCli(FUNCTIONS, {
        api,
        form: SUPABASE_CLI_FORMS.functionsDeploy,
      });
      deployMs = Math.round(performance.now() - started);
      return result;
    })(),
    ...FUNCTIONS.map((name) => moduleGraphFiles(`supabase/functions/${name}/index.ts`)),
  ]);
  deploy = deployed;
  graphs = Object.fromEntries(FUNCTIONS.map((name, i) => [name, entryGraphs[i]!]));
});

afterAll(async () => {
  await api?.close();
});

describe('supabase functions deploy register ensure-profile profile-health --use-api, from the checkout', () => {
  it('finishes with exit code 0 and names the three functions it deployed', () => {
    expect({ code: deploy.code, stdout: deploy.stdout.split('\n')[0] }).toEqual({
      code: 0,
      stdout: `Deployed Functions on project ${TEST_PROJECT_REF}: ${FUNCTIONS.join(', ')}`,
    });
  });

  it('asks the Management API for one bundle per function, then one bulk update that makes the three live, then reads the project', () => {
    const calls = deploy.requests.map((r) => `${r.method} ${r.url}`);
    const project = `/v1/projects/${TEST_PROJECT_REF}`;
    // The bundles are uploaded concurrently, in any order.
    expect([...calls.slice(0, 3)].sort()).toEqual(
      FUNCTIONS.map((name) => `POST ${project}/functions/deploy?slug=${name}&bundleOnly=true`)
        .sort(),
    );
    expect(calls.slice(3)).toEqual([`PUT ${project}/functions`, `GET ${project}`]);
    expect([...deploy.live.keys()].sort()).toEqual([...FUNCTIONS].sort());
  });

  describe.each(FUNCTIONS)('%s', (name) => {
    it("uploads deno.json, its entry point and every project file in Deno's module graph of that entry point, each under its path from the repository root, and nothing else", () => {
      expect(graphs[name]).toContain(`supabase/functions/${name}/index.ts`);
      expect(uploadedPaths(deploy, name)).toEqual(['deno.json', ...graphs[name]!].sort());
    });

    it('uploads nothing from dev/, tests/ or scripts/', () => {
      expect(uploadedPaths(deploy, name).filter((file) => /^(dev|tests|scripts)\//.test(file)))
        .toEqual([]);
    });

    it('uploads every file byte for byte as the checkout has it', async () => {
      for (const file of deploy.live.get(name)!.files) {
        expect({ path: file.path, content: Buffer.from(file.content).toString('utf8') }).toEqual({
          path: file.path,
          content: await readFile(path.join(ROOT, file.path), 'utf8'),
        });
      }
    });

    it('sends metadata naming the entry point, deno.json as import map (config.toml: ../deno.json), no static files and verify_jwt as config.toml sets it', () => {
      const configured = settings[name]!;
      expect(configured.verify_jwt).toBe(false);
      expect(deploy.live.get(name)!.metadata).toEqual({
        name,
        entrypoint_path: `supabase/functions/${name}/index.ts`,
        import_map_path: path.relative(
          ROOT,
          path.resolve(ROOT, 'supabase', configured.import_map!),
        ),
        static_patterns: [],
        verify_jwt: configured.verify_jwt,
      });
    });
  });

  it('ships a deno.json without a node-modules setting, so Deno resolves its npm packages itself', () => {
    for (const name of FUNCTIONS) {
      const file = deploy.live.get(name)!.files.find((f) => f.path === 'deno.json')!;
      const config = JSON.parse(Buffer.from(file.content).toString('utf8')) as Record<
        string,
        unknown
      >;
      expect({ name, nodeModulesDir: config.nodeModulesDir, vendor: config.vendor }).toEqual({
        name,
        nodeModulesDir: undefined,
        vendor: undefined,
      });
    }
  });

  it('leaves supabase/.temp as it was and writes no other file in the checkout', async () => {
    expect(await cliState()).toEqual(stateBefore);
    expect(await changedSince(startedAt)).toEqual([]);
  });

  it('deploys one function named alone with a single upload that makes it live at once, with the same files and metadata', async () => {
    const single = await deployWithSupabaseCli(['ensure-profile'], {
      api,
      form: SUPABASE_CLI_FORMS.functionsDeploy,
    });
    const project = `/v1/projects/${TEST_PROJECT_REF}`;
    expect({ code: single.code, calls: single.requests.map((r) => `${r.method} ${r.url}`) })
      .toEqual({
        code: 0,
        calls: [`POST ${project}/functions/deploy?slug=ensure-profile`, `GET ${project}`],
      });
    expect(uploadedPaths(single, 'ensure-profile')).toEqual(
      uploadedPaths(deploy, 'ensure-profile'),
    );
    expect(single.live.get('ensure-profile')!.metadata).toEqual(
      deploy.live.get('ensure-profile')!.metadata,
    );
  });

  it('uploads the same files without --use-api when no Docker daemon runs: it warns and bundles through the API', async () => {
    const withoutUseApi = { ...SUPABASE_CLI_FORMS.functionsDeploy, flags: ['--project-ref'] };
    const fallback = await deployWithSupabaseCli(FUNCTIONS, {
      api,
      form: withoutUseApi,
      env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    });
    expect(fallback.code).toBe(0);
    expect(fallback.stderr).toContain('WARNING: Docker is not running');
    for (const name of FUNCTIONS) {
      expect({ name, files: uploadedPaths(fallback, name) }).toEqual({
        name,
        files: uploadedPaths(deploy, name),
      });
    }
  });
});

describe('the upload of each function, booted alone under Deno with an empty DENO_DIR and the environment Supabase injects', () => {
  const db = useTestDatabase();
  const local = useLocalApi(db, { functions: false });
  const booted = new Map<string, UploadedFunction>();
  let denoDir: string;

  beforeAll(async () => {
    denoDir = await mkdtemp(path.join(tmpdir(), 'uploaded-deno-dir-'));
    const { stack } = local();
    // What Supabase injects into every function (supabase-facts §5), as dev/stack.ts gives its workers.
    const env = {
      SUPABASE_URL: stack.apiUrl,
      SUPABASE_ANON_KEY: stack.keys.anonKey,
      SUPABASE_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: stack.keys.publishableKey }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: stack.keys.secretKey }),
      SUPABASE_JWKS: JSON.stringify({ keys: [publicJwk(stack.keys.signingKey)] }),
      SUPABASE_DB_URL: stack.dbUrl,
      ...stack.functionSecrets,
    };
    // All three at once into one cold DENO_DIR: each first boot fetches its npm packages.
    const results = await Promise.allSettled(
      FUNCTIONS.map((name) => bootUploadedFunction(deploy.live.get(name)!, { denoDir, env })),
    );
    for (const result of results) {
      if (result.status === 'fulfilled') booted.set(result.value.slug, result.value);
    }
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    console.info(
      `functions deploy (CLI, 3 functions): ${deployMs} ms; boot with a cold DENO_DIR: ` +
        FUNCTIONS.map((name) => `${name} ${booted.get(name)!.bootMs} ms`).join(', '),
    );
  });

  afterAll(async () => {
    await Promise.all([...booted.values()].map((fn) => fn.stop()));
    if (denoDir) await rm(denoDir, { recursive: true, force: true });
  });

  /** A request to a booted function; if it cannot answer, the error carries what Deno printed. */
  async function request(name: string, init: RequestInit = {}): Promise<Response> {
    const fn = booted.get(name)!;
    try {
      return await fetch(fn.url, init);
    } catch (error) {
      throw new Error(
        `${name} did not answer (${(error as Error).message}); Deno printed:\n${fn.output()}`,
        { cause: error },
      );
    }
  }

  it.each(FUNCTIONS)(
    '%s answers a CORS preflight with 204, no body and the CORS headers',
    async (name) => {
      const response = await request(name, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
      });
      const cors = Object.fromEntries(
        Object.keys(CORS_HEADERS).map((header) => [header, response.headers.get(header)]),
      );
      expect({ status: response.status, body: await response.text(), cors }).toEqual({
        status: 204,
        body: '',
        cors: CORS_HEADERS,
      });
    },
  );

  it('register creates the user and, through the trigger, its profile, and answers 201', async () => {
    const response = await request('register', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        email: 'ada@example.com',
        password: 'correct-horse-battery',
        full_name: 'Ada Lovelace',
      }),
    });
    const body = (await response.json()) as { user: { id: string } };
    expect({ status: response.status, body }).toEqual({
      status: 201,
      body: {
        user: { id: expect.any(String), email: 'ada@example.com' },
        profile: {
          user_id: body.user.id,
          email: 'ada@example.com',
          full_name: 'Ada Lovelace',
          username: null,
          avatar_url: null,
          metadata: {},
          created_via: 'trigger',
          created_at: expect.any(String),
          updated_at: expect.any(String),
        },
        profile_status: 'existed',
        email_confirmation_required: false,
      },
    });
    expect(
      await db().one('select email from public.user_profiles where user_id = $1', [body.user.id]),
    ).toEqual({ email: 'ada@example.com' });
  });

  it('profile-health answers 200 with status ok', async () => {
    const response = await request('profile-health');
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 200,
      body: { status: 'ok', checked_at: expect.any(String) },
    });
  });
});

describe('supabase functions list and functions delete --project-ref, after the deploys above', () => {
  let cli: CliSandbox;
  let env: Record<string, string>;
  const project = () => `/v1/projects/${TEST_PROJECT_REF}`;
  const run = async (form: CliForm, args: readonly string[] = []) => {
    const before = api.requests.length;
    const result = await cli.run(
      cliArgv(form, { args, values: { '--project-ref': api.projectRef } }),
      { env },
    );
    // The CLI also reads the project once per project directory, to cache it: not part of the command.
    const calls = api.requests.slice(before).map((r) => `${r.method} ${r.url}`);
    return {
      ...result,
      calls: calls.filter((call) => call !== `GET /v1/projects/${TEST_PROJECT_REF}`),
    };
  };

  beforeAll(async () => {
    cli = await createCliSandbox({ loopbackPorts: [api.port] });
    env = await managementApiEnv(cli, api);
  });

  afterAll(async () => {
    await cli?.dispose();
  });

  it('functions list names the three deployed functions', async () => {
    const result = await run(SUPABASE_CLI_FORMS.functionsList);

    expect(result.code).toBe(0);
    expect(result.calls).toEqual([`GET ${project()}/functions`]);
    for (const name of FUNCTIONS) expect(result.stdout).toContain(name);
  });

  it('functions delete removes the function it names, one per command, as ROLLBACK.md §2.2 runs it', async () => {
    for (const name of FUNCTIONS) {
      const result = await run(SUPABASE_CLI_FORMS.functionsDelete, [name]);
      expect({ code: result.code, stdout: result.stdout, calls: result.calls }).toEqual({
        code: 0,
        stdout: `Deleted Function ${name} from project ${TEST_PROJECT_REF}.\n`,
        calls: [`DELETE ${project()}/functions/${name}`],
      });
    }
    expect([...api.live().keys()]).toEqual([]);
    const listed = await run(SUPABASE_CLI_FORMS.functionsList);
    expect(listed.code).toBe(0);
    for (const name of FUNCTIONS) expect(listed.stdout).not.toContain(name);
  });
});
