// The supabase-profile-guard package as an app gets it: built, packed with npm, unpacked into a
// fresh app's node_modules (its other dependencies linked from this repository, nothing from the
// network), then type-checked with moduleResolution "bundler" and "nodenext", bundled by Vite
// with React, and imported by Node.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKit } from '../../scripts/build-kit.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const PACKAGE = path.join(ROOT, 'packages/profile-guard');
const LINKED = [
  'react',
  'react-dom',
  '@supabase/supabase-js',
  'vite',
  'typescript',
  '@types/react',
  '@types/react-dom',
  '@types/node',
  '@vitejs/plugin-react',
];

let work: string;
let app: string;
let packed: { files: Array<{ path: string }>; filename: string };

const MAIN_TSX = `import { createClient } from '@supabase/supabase-js';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import {
  createProfileKit,
  type Database,
  EDITABLE_PROFILE_COLUMNS,
  parseRegistrationPath,
  type Profile,
  ProfileApiError,
  type ProfilePatch,
  type Registration,
} from 'supabase-profile-guard/client';
import { useProfile, useRegistration } from 'supabase-profile-guard/react';

// Fails to compile should a type arrive as any (an unresolved declaration).
type IsAny<T> = 0 extends 1 & T ? true : false;
const profileIsTyped: IsAny<Profile> = false;
const registrationIsTyped: IsAny<Registration> = false;
// @ts-expect-error email is not an editable column
const refused: ProfilePatch = { email: 'a@example.com' };

const supabase = createClient<Database>('http://127.0.0.1:54321', 'publishable-key');
const kit = createProfileKit(supabase, {
  registration: parseRegistrationPath(import.meta.env.VITE_REGISTRATION_PATH),
  whenRegistrationDisabled: 'legacy',
});

function App() {
  const form = useRegistration(kit);
  const profile = useProfile(kit);
  const name: string | null | undefined = profile.data?.full_name;
  const failed: boolean = form.error instanceof ProfileApiError;
  return (
    <main>
      <p>{form.state} {form.fieldErrors.email ?? ''} {name ?? ''} {String(failed)}</p>
      <p>{EDITABLE_PROFILE_COLUMNS.join(',')} {String(profileIsTyped && registrationIsTyped)}</p>
      <button onClick={() => void form.register({ email: 'a@example.com', password: 'secret-pw' })}>
        register
      </button>
      <pre>{JSON.stringify(refused)}</pre>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(<StrictMode><App /></StrictMode>);
`;

// A Node consumer (moduleResolution nodenext): the client entry without React.
const SERVER_TS = `import { createClient } from '@supabase/supabase-js';
import { createProfileKit, type Database, type Profile, ProfileApiError } from 'supabase-profile-guard/client';

const kit = createProfileKit(createClient<Database>('http://127.0.0.1:54321', 'key'));
export async function name(): Promise<string | null> {
  const profile: Profile | null = await kit.getMyProfile().catch((e: unknown) => {
    if (e instanceof ProfileApiError && e.transient) return null;
    throw e;
  });
  return profile?.full_name ?? null;
}
`;

const tsconfig = (options: Record<string, unknown>, include: string[]) =>
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      strict: true,
      noEmit: true,
      ...options,
    },
    include,
  });

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'profile-guard-pack-'));
  // Packed from a copy, built into its own dist: the repository's packages/profile-guard/dist
  // (which another build may be writing) is never read.
  const source = path.join(work, 'source');
  await mkdir(source);
  for (const file of ['package.json', 'README.md']) {
    await cp(path.join(PACKAGE, file), path.join(source, file));
  }
  await buildKit(path.join(source, 'dist'));
  const { stdout } = await run(
    'npm',
    ['pack', '--json', '--ignore-scripts', '--pack-destination', work],
    { cwd: source },
  );
  packed = (JSON.parse(stdout) as Array<typeof packed>)[0]!;

  app = path.join(work, 'app');
  const installed = path.join(app, 'node_modules/supabase-profile-guard');
  await mkdir(installed, { recursive: true });
  await run('tar', [
    '-xzf',
    path.join(work, packed.filename),
    '-C',
    installed,
    '--strip-components=1',
  ]);
  for (const name of LINKED) {
    await mkdir(path.dirname(path.join(app, 'node_modules', name)), { recursive: true });
    await symlink(path.join(ROOT, 'node_modules', name), path.join(app, 'node_modules', name));
  }
  await mkdir(path.join(app, 'src'));
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(
    path.join(app, 'index.html'),
    '<!doctype html><div id="root"></div><script type="module" src="/src/main.tsx"></script>',
  );
  await writeFile(path.join(app, 'src/main.tsx'), MAIN_TSX);
  await writeFile(path.join(app, 'src/server.ts'), SERVER_TS);
  await writeFile(
    path.join(app, 'tsconfig.json'),
    tsconfig({
      module: 'ESNext',
      moduleResolution: 'bundler',
      jsx: 'react-jsx',
      types: ['vite/client'],
      // As Vite's templates set it; the IsAny checks in main.tsx catch unresolved declarations,
      // and the nodenext check below reads every declaration file.
      skipLibCheck: true,
    }, ['src/main.tsx']),
  );
  await writeFile(
    path.join(app, 'tsconfig.node.json'),
    // Every declaration file checked, the package's included (supabase-js's need Node's types).
    tsconfig({
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      types: ['node'],
      skipLibCheck: false,
    }, ['src/server.ts']),
  );
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the package', () => {
  it('package.json has the two entry points, the peers, and no dependencies', async () => {
    const manifest = JSON.parse(
      await readFile(path.join(app, 'node_modules/supabase-profile-guard/package.json'), 'utf8'),
    );
    expect(manifest).toMatchObject({
      name: 'supabase-profile-guard',
      version: '0.1.0',
      type: 'module',
      sideEffects: false,
      files: ['dist'],
      engines: { node: '>=20' },
      exports: {
        './client': { types: './dist/client.d.ts', import: './dist/client.js' },
        './react': { types: './dist/react.d.ts', import: './dist/react.js' },
      },
      peerDependencies: { '@supabase/supabase-js': '^2.100.0', react: '>=18' },
      peerDependenciesMeta: { react: { optional: true } },
    });
    expect(Object.keys(manifest.exports)).toEqual(['./client', './react']);
    expect(manifest.private).not.toBe(true);
    expect(manifest.dependencies).toBeUndefined();
  });

  it('the tarball holds only dist/, package.json and README.md', () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(files.filter((f) => !f.startsWith('dist/'))).toEqual(['README.md', 'package.json']);
    expect(files).toEqual(expect.arrayContaining([
      'dist/client.js',
      'dist/client.d.ts',
      'dist/react.js',
      'dist/react.d.ts',
    ]));
    // Built code and declarations only: no TypeScript sources, no source maps.
    expect(files.filter((f) => !/\.(js|d\.ts)$/.test(f) && f.startsWith('dist/'))).toEqual([]);
  });

  it('the bundles import only the peers; react.js shares the client code instead of copying it', async () => {
    const dist = path.join(app, 'node_modules/supabase-profile-guard/dist');
    const js = (await readdir(dist, { recursive: true })).filter((f) => f.endsWith('.js'));
    const bare = new Set<string>();
    for (const file of js) {
      const text = await readFile(path.join(dist, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*["']([^"'.][^"']*)["']/g)) bare.add(m[1]!);
    }
    expect([...bare].sort()).toEqual(['@supabase/supabase-js', 'react']);
    const react = await readFile(path.join(dist, 'react.js'), 'utf8');
    expect(react).not.toContain('class ProfileApiError');
  });

  it('a Vite + React app type-checks against it with moduleResolution bundler', async () => {
    const tsc = path.join(app, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '--noEmit', '-p', 'tsconfig.json'], {
      cwd: app,
    }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    expect(result.stdout).toBe('');
  });

  it('a Node app type-checks against it with moduleResolution nodenext', async () => {
    const tsc = path.join(app, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '--noEmit', '-p', 'tsconfig.node.json'], {
      cwd: app,
    }).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    expect(result.stdout).toBe('');
  });

  it('vite build bundles the app, with the kit inside and no path of this repository', async () => {
    const { build } = await import('vite');
    const react = (await import('@vitejs/plugin-react')).default;
    await build({
      root: app,
      configFile: false,
      logLevel: 'silent',
      plugins: [react()],
      build: { outDir: path.join(app, 'dist') },
    });
    const out = path.join(app, 'dist');
    const files = (await readdir(out, { recursive: true })).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(0);
    const text = (await Promise.all(files.map((f) => readFile(path.join(out, f), 'utf8')))).join(
      '\n',
    );
    expect(text).toContain('profile_timeout');
    expect(text).not.toContain(ROOT);
    expect(text).not.toContain('shared/kit');
  });

  it(
    'Deno imports both entry points from the app folder, resolving them through node_modules',
    async () => {
      await writeFile(
        path.join(app, 'deno-main.ts'),
        `import { EDITABLE_PROFILE_COLUMNS, parseRegistrationPath } from 'supabase-profile-guard/client';
import { useProfile } from 'supabase-profile-guard/react';
console.log(JSON.stringify({
  path: parseRegistrationPath('legacy'),
  columns: EDITABLE_PROFILE_COLUMNS,
  hook: typeof useProfile,
}));
`,
      );
      const deno = path.join(ROOT, 'node_modules', '.bin', 'deno');
      // React reads NODE_ENV when it loads; nothing else is granted.
      const { stdout } = await run(
        deno,
        ['run', '--node-modules-dir=manual', '--no-lock', '--allow-env=NODE_ENV', 'deno-main.ts'],
        { cwd: app, env: { ...process.env, NO_COLOR: '1' } },
      );
      expect(JSON.parse(stdout)).toEqual({
        path: 'legacy',
        columns: ['full_name', 'username', 'avatar_url', 'metadata'],
        hook: 'function',
      });
    },
    60_000,
  );

  it('Node 20 imports both entry points from the app folder', async () => {
    const script = `
      const client = await import('supabase-profile-guard/client');
      const react = await import('supabase-profile-guard/react');
      console.log(JSON.stringify({
        client: Object.keys(client).sort(),
        react: Object.keys(react).sort(),
        path: client.parseRegistrationPath(undefined),
        columns: client.EDITABLE_PROFILE_COLUMNS,
      }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
    });
    expect(process.version).toMatch(/^v20\./);
    expect(JSON.parse(stdout)).toEqual({
      client: [
        'CLIENT_RETRY',
        'EDITABLE_PROFILE_COLUMNS',
        'ProfileApiError',
        'createProfileKit',
        'ensureProfileOnSignIn',
        'parseRegistrationPath',
      ],
      react: ['useProfile', 'useRegistration'],
      path: 'guarded',
      columns: ['full_name', 'username', 'avatar_url', 'metadata'],
    });
  });
});
