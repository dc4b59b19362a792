// `supabase functions deploy` with the real CLI, from this checkout, to a local Management API
// stand-in (dev/management-api.ts) instead of api.supabase.com. The CLI is pointed there by a
// profile file (api_url), runs in the sandbox of ./supabase-cli.ts (its own HOME, no telemetry,
// no update check, loopback only), and reads the checkout through --workdir, so what it uploads
// is what it would upload from the repository root.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Deployment, ManagementApi } from '../../dev/management-api.ts';
import {
  cliArgv,
  type CliForm,
  type CliResult,
  type CliSandbox,
  createCliSandbox,
  SUPABASE_CLI_FORMS,
} from './supabase-cli.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Where the CLI keeps its project state; git-ignored, and the only place in the checkout it writes. */
const CLI_STATE = path.join(ROOT, 'supabase', '.temp');

/** A personal access token in the CLI's format (sbp_ + 40 hex): it refuses any other shape. */
export const TEST_ACCESS_TOKEN = `sbp_${'0123456789abcdef'.repeat(3).slice(0, 40)}`;
/** A project ref in the platform's format: 20 lowercase letters. */
export const TEST_PROJECT_REF = 'localprofileguardabc';

export interface CliDeploy extends CliResult {
  /** The requests this run made, in arrival order. */
  requests: Array<{ method: string; url: string }>;
  /** What each named slug serves afterwards (its files and metadata as uploaded). */
  live: Map<string, Deployment>;
}

/** The profile that sends every Management API call of the CLI to the stand-in. */
function profileYaml(api: ManagementApi): string {
  return [
    `name: local`,
    `api_url: ${api.url}`,
    `dashboard_url: ${api.url}`,
    `project_host: example.local`,
    '',
  ].join('\n');
}

/**
 * What the CLI's environment needs to talk to the stand-in as a deploy talks to Supabase: the
 * access token in SUPABASE_ACCESS_TOKEN (as the guides export it; no `supabase login`) and a
 * profile file in the sandbox's HOME that points api_url at the stand-in.
 */
export async function managementApiEnv(
  sandbox: CliSandbox,
  api: ManagementApi,
): Promise<Record<string, string>> {
  const profile = path.join(sandbox.home, 'management-api-profile.yaml');
  await writeFile(profile, profileYaml(api));
  return { SUPABASE_PROFILE: profile, SUPABASE_ACCESS_TOKEN: api.accessToken };
}

async function readState(): Promise<Map<string, Buffer> | null> {
  const entries = await readdir(CLI_STATE, { recursive: true, withFileTypes: true }).catch(() =>
    null
  );
  if (!entries) return null;
  const files = new Map<string, Buffer>();
  for (const entry of entries.filter((e) => e.isFile())) {
    const file = path.join(entry.parentPath, entry.name);
    files.set(file, await readFile(file));
  }
  return files;
}

/** Puts supabase/.temp back as it was: what the CLI added goes, what it changed is rewritten. */
async function restoreState(before: Map<string, Buffer> | null): Promise<void> {
  if (!before) return await rm(CLI_STATE, { recursive: true, force: true });
  const now = await readdir(CLI_STATE, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of now) {
    const file = path.join(entry.parentPath, entry.name);
    if (![...before.keys()].some((kept) => kept === file || kept.startsWith(file + path.sep))) {
      await rm(file, { recursive: true, force: true });
    }
  }
  for (const [file, content] of before) {
    const current = await readFile(file).catch(() => null);
    if (current?.equals(content)) continue;
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
}

/**
 * Runs `supabase functions deploy <names…>` in `form` (default SUPABASE_CLI_FORMS.functionsDeploy,
 * what docs/DEPLOYMENT.md §6.3 shows) with `--project-ref <the stand-in's ref>`, from the
 * checkout (`--workdir`, as if run at its root), against the stand-in, and leaves supabase/.temp
 * as it found it. env: extra variables for the CLI.
 */
export async function deployWithSupabaseCli(
  names: readonly string[],
  options: { api: ManagementApi; form?: CliForm; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliDeploy> {
  const { api } = options;
  const sandbox = await createCliSandbox({ loopbackPorts: [api.port], files: [] });
  const state = await readState();
  try {
    // The CLI reads the project once and caches it here (for its telemetry); without the cache,
    // every run asks the same as a fresh checkout does, and a real project's cache is not
    // overwritten by the stand-in's.
    await rm(path.join(CLI_STATE, 'linked-project.json'), { force: true });
    // Nothing is copied into the sandbox's project directory (the CLI reads the checkout), so
    // it does not exist yet; it is still the CLI's cwd.
    await mkdir(sandbox.workdir, { recursive: true });
    const form = options.form ?? SUPABASE_CLI_FORMS.functionsDeploy;
    if (form.command.join(' ') !== 'functions deploy') {
      throw new Error(`not a deploy: ${form.command.join(' ')}`);
    }
    const env = await managementApiEnv(sandbox, api);
    const before = api.requests.length;
    const result = await sandbox.run(
      [
        '--workdir',
        ROOT,
        ...cliArgv(form, { args: names, values: { '--project-ref': api.projectRef } }),
      ],
      { timeoutMs: options.timeoutMs ?? 60_000, env: { ...env, ...options.env } },
    );
    const live = new Map([...api.live()].filter(([slug]) => names.includes(slug)));
    return { ...result, requests: api.requests.slice(before), live };
  } finally {
    await restoreState(state);
    await sandbox.dispose();
  }
}
