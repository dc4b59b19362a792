// The example app (examples/app) built or served by Vite, for `npm run example` and the browser
// test. Configuration reaches the app as Vite's import.meta.env, the way an app's own VITE_*
// settings would; the kit is built first, so the app imports the package's published entry points.
import path from 'node:path';
import { build, createServer, type ViteDevServer } from 'vite';
import { buildKit } from './build-kit.ts';

export const EXAMPLE_ROOT = path.resolve(import.meta.dirname, '../examples/app');

/** The app's settings; unset ones fall back to the defaults in examples/app/src/supabase.ts. */
export interface ExampleEnv {
  VITE_SUPABASE_URL?: string;
  VITE_SUPABASE_PUBLISHABLE_KEY?: string;
  VITE_REGISTRATION_PATH?: 'guarded' | 'legacy';
  VITE_WHEN_REGISTRATION_DISABLED?: 'legacy' | 'message';
}

function define(env: ExampleEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([name, value]) => [`import.meta.env.${name}`, JSON.stringify(value)]),
  );
}

/** Builds the kit into packages/profile-guard/dist, then the app into outDir. */
export async function buildExample(outDir: string, env: ExampleEnv = {}): Promise<void> {
  await buildKit();
  await build({
    root: EXAMPLE_ROOT,
    configFile: path.join(EXAMPLE_ROOT, 'vite.config.ts'),
    define: define(env),
    build: { outDir, emptyOutDir: true },
    logLevel: 'warn',
  });
}

/** Builds the kit, then serves the app with Vite's dev server on 127.0.0.1:port. */
export async function serveExample(port: number, env: ExampleEnv = {}): Promise<ViteDevServer> {
  await buildKit();
  const server = await createServer({
    root: EXAMPLE_ROOT,
    configFile: path.join(EXAMPLE_ROOT, 'vite.config.ts'),
    define: define(env),
    server: { host: '127.0.0.1', port, strictPort: true },
    logLevel: 'warn',
  });
  return await server.listen();
}
