// How the local stack and the tests run Deno. The shipped deno.json carries no node-modules
// setting: a deployed function has no node_modules and Deno fetches its npm packages itself, as
// Supabase's edge runtime does. Locally the same packages are already installed by npm, so the
// manual node-modules mode is given on the command line, keeping every local run offline.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const DENO = path.join(ROOT, 'node_modules', '.bin', 'deno');

/** Flags of every local `deno run` / `deno check`: the root import map, npm packages from node_modules. */
export const LOCAL_DENO_FLAGS: readonly string[] = [
  '--config',
  'deno.json',
  '--node-modules-dir=manual',
];

/** Permissions a function gets; the hosted runtime grants the same kinds. */
export const FUNCTION_PERMISSIONS: readonly string[] = [
  '--allow-net',
  '--allow-env',
  '--allow-read',
  '--allow-sys',
];

/**
 * For a Deno that fetches its npm packages itself (what a deploy ships). Deno trusts only its
 * bundled root certificates by default; a TLS-inspecting proxy between a machine and the npm
 * registry (a company network, a CI sandbox) signs with an authority only the system store has.
 */
export const DENO_REGISTRY_ENV: Readonly<Record<string, string>> = {
  DENO_TLS_CA_STORE: 'system,mozilla',
};
