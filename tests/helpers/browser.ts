// A real Chromium for the browser tests, driven by playwright-core, on any machine npm can set
// up: Debian's /usr/bin/chromium when it is installed, otherwise the Chromium that ships inside
// the npm package @sparticuz/chromium (unpacked once into the temporary directory). A browser
// that cannot be found or started fails every test that asks for it, with the reason: never a skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/**
 * Flags on top of Playwright's own (which already run headless and add --no-sandbox unless
 * chromiumSandbox is set). Deliberately not @sparticuz/chromium's `args`: that list is tuned
 * for AWS Lambda and turns off the very checks the dashboard tests rely on
 * (--disable-web-security, --allow-running-insecure-content, site isolation off). Measured with
 * both binaries: neither needs --single-process, --no-zygote or --headless=shell to start here.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  // Tests run as root in containers, where Chromium's sandbox cannot start ("Chromium sandboxing
  // failed!"). Said here too, so a change of Playwright's default cannot break the launch.
  '--no-sandbox',
  '--disable-gpu',
  // Only the pages under test may use the network: no QUIC probes, field trials, component or
  // sync traffic, first-run pings.
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface ChromiumExecutable {
  path: string;
  source: 'debian' | '@sparticuz/chromium';
}

// @sparticuz/chromium unpacks into the temporary directory and treats an existing file as done,
// so two test files unpacking at once would let one start a half-written binary. One unpacking at
// a time across processes; a lock whose owner died (Ctrl-C mid-unpack) marks a partial unpack.
const LOCK = path.join(tmpdir(), 'supabase-profile-guard-chromium.lock');
const LOCK_WAIT_MS = 180_000;
const LOCK_STALE_MS = 10 * 60_000;
const UNPACKED = ['chromium', 'fonts'].map((name) => path.join(tmpdir(), name));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withUnpackLock<T>(work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await writeFile(LOCK, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(await readFile(LOCK, 'utf8').catch(() => ''));
    const age = Date.now() - ((await stat(LOCK).catch(() => null))?.mtimeMs ?? Date.now());
    if ((owner > 0 && !alive(owner)) || age > LOCK_STALE_MS) {
      // Its owner stopped mid-unpack: what it left is partial and must be unpacked again.
      await Promise.all(UNPACKED.map((file) => rm(file, { recursive: true, force: true })));
      await unlink(LOCK).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `waited ${
          LOCK_WAIT_MS / 1000
        } s for another process to unpack @sparticuz/chromium (lock ${LOCK})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    return await work();
  } finally {
    await unlink(LOCK).catch(() => undefined);
  }
}

/** The Chromium inside @sparticuz/chromium, unpacked on first use. */
export async function packagedChromium(): Promise<string> {
  const { default: packaged } = await import('@sparticuz/chromium');
  return await withUnpackLock(() => packaged.executablePath());
}

/** Debian's Chromium when installed, otherwise @sparticuz/chromium's, unpacked on first use. */
export async function findChromium(): Promise<ChromiumExecutable> {
  if (existsSync(DEBIAN_CHROMIUM)) return { path: DEBIAN_CHROMIUM, source: 'debian' };
  try {
    return { path: await packagedChromium(), source: '@sparticuz/chromium' };
  } catch (error) {
    throw new Error(
      `no Chromium: ${DEBIAN_CHROMIUM} is not installed and the one in the npm package @sparticuz/chromium could not be unpacked ` +
        `(${(error as Error).message}); run npm install, or install Debian's chromium`,
      { cause: error },
    );
  }
}

/** Shared libraries the dynamic linker cannot find for executable (ldd's "not found" lines). */
export function missingLibraries(
  executable: string,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const result = spawnSync('ldd', [executable], { encoding: 'utf8', env });
  return [...(result.stdout ?? '').matchAll(/^\s*(\S+) => not found$/gm)].map((m) => m[1]!);
}

/**
 * The NSS libraries @sparticuz/chromium carries for Amazon Linux, where the system has none; a
 * slim Debian or Ubuntu image (node:20-slim) lacks exactly these. Unpacked once into the
 * temporary directory; returns the folder to put on LD_LIBRARY_PATH.
 */
export async function bundledLibraries(): Promise<string> {
  const dir = path.join(tmpdir(), 'supabase-profile-guard-chromium-libs');
  const lib = path.join(dir, 'lib');
  if (existsSync(lib)) return lib;
  const archive = path.join(
    path.dirname(fileURLToPath(import.meta.resolve('@sparticuz/chromium'))),
    '..',
    '..',
    'bin',
    'al2023.tar.br',
  );
  // Unpacked aside and renamed into place, so a concurrent test file never sees half of it.
  const staging = `${dir}.staging-${process.pid}`;
  await mkdir(staging, { recursive: true });
  execFileSync('tar', ['-x', '-C', staging], {
    input: brotliDecompressSync(readFileSync(archive)),
  });
  await rename(staging, dir).catch(async () => rm(staging, { recursive: true, force: true }));
  return lib;
}

/** The environment Chromium starts in: the bundled NSS libraries added when the system lacks them. */
export async function chromiumEnv(executable: ChromiumExecutable): Promise<NodeJS.ProcessEnv> {
  if (
    executable.source !== '@sparticuz/chromium' || missingLibraries(executable.path).length === 0
  ) return process.env;
  const lib = await bundledLibraries();
  return {
    ...process.env,
    LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
  };
}

/** A headless Chromium, or an error that says which binary failed and why. */
export async function launchChromium(): Promise<Browser> {
  const executable = await findChromium();
  try {
    const env = await chromiumEnv(executable);
    const missing = missingLibraries(executable.path, env);
    if (missing.length > 0) throw new Error(`the system lacks ${missing.join(', ')}`);
    // Playwright gives each launch a fresh, empty --user-data-dir of its own and removes it on close.
    return await chromium.launch({
      executablePath: executable.path,
      headless: true,
      args: [...CHROMIUM_ARGS],
      env,
      timeout: 60_000,
    });
  } catch (error) {
    const reason = (error as Error).message.split('\n').slice(0, 12).join('\n');
    const hint = executable.source === '@sparticuz/chromium'
      ? `\nIf ${executable.path} is left from an unpacking that was cut short, delete it and ${
        UNPACKED[1]
      } and run again.`
      : '';
    throw new Error(
      `Chromium at ${executable.path} (${executable.source}) did not start: ${reason}${hint}`,
      { cause: error },
    );
  }
}

/**
 * One browser for the calling test file: launched before its tests, closed after them. A launch
 * failure is kept and thrown by every call, so each test fails with the reason instead of skipping.
 */
export function useBrowser(): () => Browser {
  let browser: Browser | undefined;
  let failure: Error | undefined;
  beforeAll(async () => {
    try {
      browser = await launchChromium();
    } catch (error) {
      failure = error as Error;
    }
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (browser) return browser;
    throw failure ?? new Error('the browser is only available inside tests and hooks');
  };
}
