// Boots what a deploy uploaded, and nothing else, the way the hosted runtime gets it: the files
// under their uploaded paths in an empty folder, no node_modules and no checkout around them, Deno
// started on the entry point with the uploaded import map, npm packages fetched from the npm
// registry into the DENO_DIR it is given, and only the environment Supabase injects.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DENO, DENO_REGISTRY_ENV, FUNCTION_PERMISSIONS } from '../../dev/deno.ts';
import { listening } from '../../dev/functions/workers.ts';
import { spawnWithLifeline, stopProcess } from '../../dev/lifeline.ts';
import type { Deployment } from '../../dev/management-api.ts';
import { freePort } from '../../dev/postgres.ts';

export interface UploadedFunction {
  slug: string;
  url: string;
  /** From spawn to accepting connections: module graph, npm fetch (if DENO_DIR is cold), boot. */
  bootMs: number;
  /** What Deno printed so far (stdout and stderr). */
  output(): string;
  /** Ends Deno and waits for it, then deletes the folder. */
  stop(): Promise<void>;
}

// What Deno needs to reach the npm registry from this machine besides DENO_REGISTRY_ENV: its
// proxy, its registry mirror, and any certificate authorities it was told to trust.
const PASSED_THROUGH = [
  'HTTPS_PROXY',
  'HTTP_PROXY',
  'NO_PROXY',
  'https_proxy',
  'http_proxy',
  'no_proxy',
  'NPM_CONFIG_REGISTRY',
  'DENO_CERT',
  'DENO_TLS_CA_STORE',
  'NODE_EXTRA_CA_CERTS',
];

/** Writes files under dir at their paths, refusing any path that would land outside it. */
export async function writeFilesUnder(
  dir: string,
  files: ReadonlyArray<{ path: string; content: Uint8Array }>,
): Promise<void> {
  for (const file of files) {
    const target = path.resolve(dir, file.path);
    if (path.isAbsolute(file.path) || path.relative(dir, target).startsWith('..')) {
      throw new Error(`uploaded path ${file.path} is outside the folder ${dir}`);
    }
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, file.content);
  }
}

/**
 * Starts `deno run <permissions> --config <import map> <entry point>` in a fresh folder holding
 * exactly deployment.files; resolves once it listens, rejects (after stopping it) if it exits or
 * does not listen within timeoutMs.
 */
export async function bootUploadedFunction(
  deployment: Deployment,
  options: { denoDir: string; env: Record<string, string>; timeoutMs?: number },
): Promise<UploadedFunction> {
  const dir = await mkdtemp(path.join(tmpdir(), `uploaded-${deployment.slug}-`));
  await writeFilesUnder(dir, deployment.files);
  const { entrypoint_path: entry, import_map_path: importMap } = deployment.metadata;
  const port = await freePort();
  const passed = Object.fromEntries(
    PASSED_THROUGH.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])),
  );
  const started = performance.now();
  const child = spawnWithLifeline(DENO, [
    'run',
    ...FUNCTION_PERMISSIONS,
    ...(importMap ? ['--config', importMap] : []),
    entry,
  ], {
    name: `uploaded-${deployment.slug}`,
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      // Its own HOME, so no cache or config of this machine's user is found.
      HOME: dir,
      DENO_DIR: options.denoDir,
      DENO_NO_UPDATE_CHECK: '1',
      NO_COLOR: '1',
      ...DENO_REGISTRY_ENV,
      ...passed,
      ...options.env,
      DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
    },
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const stop = async () => {
    await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!(await listening(port))) {
    const exited = child.exitCode ?? child.signalCode;
    if (exited !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `${deployment.slug} ${
          exited !== null ? `exited (${exited})` : 'did not listen in time'
        } while booting its upload:\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    slug: deployment.slug,
    url: `http://127.0.0.1:${port}`,
    bootMs: Math.round(performance.now() - started),
    output: () => output,
    stop,
  };
}
