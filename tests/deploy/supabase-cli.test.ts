// The Supabase CLI commands of the guides that are neither a deploy nor a database command, with
// the pinned CLI in the forms the guides show (SUPABASE_CLI_FORMS): `npx supabase --version`, and
// `secrets set`, `secrets list` and `secrets unset` with `--project-ref`, authenticated by
// SUPABASE_ACCESS_TOKEN alone (no login, no link), against the local Management API stand-in
// (dev/management-api.ts). The secret values are random per run and never printed: the checks on
// them compare digests and counts, so a failing assertion cannot print a value either.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ManagementApi, secretDigest, startManagementApi } from '../../dev/management-api.ts';
import {
  managementApiEnv,
  TEST_ACCESS_TOKEN,
  TEST_PROJECT_REF,
} from '../helpers/functions-deploy.ts';
import {
  cliArgv,
  type CliForm,
  type CliSandbox,
  createCliSandbox,
  SUPABASE_CLI_FORMS,
} from '../helpers/supabase-cli.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

let api: ManagementApi;
let cli: CliSandbox;
let env: Record<string, string>;

beforeAll(async () => {
  api = await startManagementApi({ accessToken: TEST_ACCESS_TOKEN, projectRef: TEST_PROJECT_REF });
  cli = await createCliSandbox({ loopbackPorts: [api.port] });
  env = await managementApiEnv(cli, api);
});

afterAll(async () => {
  await cli?.dispose();
  await api?.close();
});

/** Runs a form with `--project-ref <the stand-in's ref>`; `calls` are the requests it made. */
async function run(form: CliForm, args: readonly string[] = []) {
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
}

describe('npx supabase --version', () => {
  it('prints 2.117.0, the version package.json pins', async () => {
    const pinned = (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    })
      .devDependencies.supabase;
    const result = await cli.run(cliArgv(SUPABASE_CLI_FORMS.version));

    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 0, stdout: '2.117.0\n' });
    expect(pinned).toBe('2.117.0');
  });
});

describe('supabase secrets set, list and unset --project-ref, as DEPLOYMENT.md §6.2 and ROLLBACK.md §2.2 run them', () => {
  const secrets = `/v1/projects/${TEST_PROJECT_REF}/secrets`;
  // The names of DEPLOYMENT.md §6.2 and §7.2, with values made as the guide makes them.
  const values: Record<string, string> = {
    REGISTER_MODE: 'signup',
    PROFILE_WEBHOOK_SECRET: randomBytes(32).toString('hex'),
    PROFILE_HEALTH_TOKEN: randomBytes(32).toString('hex'),
    ALERT_WEBHOOK_URL: `https://hooks.example.com/services/${randomBytes(12).toString('hex')}`,
    AUTH_HOOK_SECRET: `v1,whsec_${randomBytes(32).toString('base64')}`,
  };
  const secretValues = Object.entries(values)
    .filter(([name]) => name !== 'REGISTER_MODE')
    .map(([, value]) => value);
  /** How many of the secret values a run printed (a count, so a failure shows none of them). */
  const printed = (result: { stdout: string; stderr: string }) =>
    secretValues.filter((value) => result.stdout.includes(value) || result.stderr.includes(value))
      .length;
  const digests = (names: string[]) =>
    Object.fromEntries(names.map((name) => [name, secretDigest(values[name]!)]));

  it('secrets set sends every NAME=value pair in one request and prints no value', async () => {
    const result = await run(
      SUPABASE_CLI_FORMS.secretsSet,
      Object.entries(values).map(([name, value]) => `${name}=${value}`),
    );

    expect(printed(result)).toBe(0);
    expect({ code: result.code, stdout: result.stdout }).toEqual({
      code: 0,
      stdout: 'Finished supabase secrets set.\n',
    });
    expect(result.calls).toEqual([`POST ${secrets}`]);
    expect(Object.fromEntries(api.secrets())).toEqual(digests(Object.keys(values)));
  });

  it('secrets set skips a name starting with SUPABASE_ and says so, setting the others', async () => {
    const result = await run(SUPABASE_CLI_FORMS.secretsSet, [
      'SUPABASE_URL=https://elsewhere.example.com',
      'LOG_LEVEL=warn',
    ]);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain('Env name cannot start with SUPABASE_, skipping: SUPABASE_URL');
    expect(api.secrets().has('SUPABASE_URL')).toBe(false);
    expect(api.secrets().get('LOG_LEVEL')).toBe(secretDigest('warn'));
  });

  it('secrets list prints each name with the SHA-256 digest of its value, never a value', async () => {
    const result = await run(SUPABASE_CLI_FORMS.secretsList);

    expect(printed(result)).toBe(0);
    expect(result.code).toBe(0);
    expect(result.calls).toEqual([`GET ${secrets}`]);
    const rows = [...result.stdout.matchAll(/^\s*([A-Z][A-Z0-9_]*)\s*\|\s*([0-9a-f]{64})\s*$/gm)]
      .map((m) => [m[1]!, m[2]!]);
    expect(Object.fromEntries(rows)).toEqual({
      ...digests(Object.keys(values)),
      LOG_LEVEL: secretDigest('warn'),
    });
  });

  it('secrets unset removes exactly the names it is given', async () => {
    const result = await run(SUPABASE_CLI_FORMS.secretsUnset, Object.keys(values));

    expect({ code: result.code, stdout: result.stdout }).toEqual({
      code: 0,
      stdout: 'Finished supabase secrets unset.\n',
    });
    expect(result.calls).toEqual([`DELETE ${secrets}`]);
    expect(Object.fromEntries(api.secrets())).toEqual({ LOG_LEVEL: secretDigest('warn') });
  });
});
