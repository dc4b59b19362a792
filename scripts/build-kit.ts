// `npm run kit:build [out-dir]`: builds the supabase-profile-guard package's dist/ from shared/:
// dist/client.js and dist/react.js (esbuild: ESM, platform neutral, ES2022, code both entries
// share in dist/chunks/ so ProfileApiError is one class for both), and their .d.ts declarations
// (the TypeScript compiler). @supabase/supabase-js and react stay imports: they are the app's
// own copies (peer dependencies), so instanceof and hooks see one instance. The out-dir argument
// lets tests build into a folder of their own, never racing over the package's dist/.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = path.join(ROOT, 'packages/profile-guard');
const ENTRIES = { client: 'src/client.ts', react: 'src/react.ts' } as const;
export const PEERS = ['@supabase/supabase-js', 'react'];

// esbuild marks each bundled module with a `// shared/kit/x.ts` line: the repository's layout,
// of no use to an app, so it is left out of dist.
const MODULE_MARKER = /^\/\/ (?:shared|packages)\/\S+\.ts\n/gm;

async function bundle(outDir: string): Promise<void> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(
      Object.entries(ENTRIES).map(([name, file]) => [name, path.join(PACKAGE, file)]),
    ),
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    chunkNames: 'chunks/[name]-[hash]',
    external: PEERS,
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
  });
  for (const file of result.outputFiles) {
    await mkdir(path.dirname(file.path), { recursive: true });
    await writeFile(file.path, file.text.replace(MODULE_MARKER, ''));
  }
}

// Declarations are emitted for the program rooted at the entry files, in memory, then laid out
// as dist/<entry>.d.ts beside dist/shared/**: the entries' '../../../shared/' becomes
// './shared/', and every relative '.ts' specifier '.js', which both moduleResolution "bundler"
// and "nodenext" resolve to the .d.ts. Only files the entries reach are written (shared/ also
// holds server code whose types need zod).
function declarations(): Map<string, string> {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    declaration: true,
    emitDeclarationOnly: true,
    strict: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    rootDir: ROOT,
    declarationDir: path.join(ROOT, '.kit-declarations'),
  };
  const program = ts.createProgram(
    Object.values(ENTRIES).map((file) => path.join(PACKAGE, file)),
    options,
  );
  const emitted = new Map<string, string>();
  const result = program.emit(
    undefined,
    (fileName, text) => {
      emitted.set(path.relative(options.declarationDir!, fileName).split(path.sep).join('/'), text);
    },
    undefined,
    true,
  );
  const problems = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics];
  if (problems.length > 0) {
    throw new Error(ts.formatDiagnostics(problems, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => ROOT,
      getNewLine: () => '\n',
    }));
  }

  const files = new Map<string, string>();
  for (const [name, text] of emitted) {
    const entry = Object.entries(ENTRIES).find(([, file]) =>
      `packages/profile-guard/${file.replace(/\.ts$/, '.d.ts')}` === name
    );
    const target = entry ? `${entry[0]}.d.ts` : name;
    const relocated = entry ? text.replaceAll(`'../../../shared/`, `'./shared/`) : text;
    files.set(target, relocated.replace(/(['"])(\.{1,2}\/[^'"]+)\.ts\1/g, '$1$2.js$1'));
  }
  // Keep what the entry declarations reach.
  const keep = new Set<string>();
  const queue = Object.keys(ENTRIES).map((name) => `${name}.d.ts`);
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (keep.has(name)) continue;
    const text = files.get(name);
    if (text === undefined) throw new Error(`declarations: ${name} was not emitted`);
    keep.add(name);
    for (const match of text.matchAll(/(?:from |import\()(['"])(\.{1,2}\/[^'"]+)\.js\1/g)) {
      queue.push(path.posix.join(path.posix.dirname(name), `${match[2]}.d.ts`));
    }
  }
  return new Map([...files].filter(([name]) => keep.has(name)));
}

/** Builds into outDir (emptied first); answers the files written, relative to it. */
export async function buildKit(outDir = path.join(PACKAGE, 'dist')): Promise<string[]> {
  const types = declarations();
  await rm(outDir, { recursive: true, force: true });
  await bundle(outDir);
  for (const [name, text] of types) {
    await mkdir(path.dirname(path.join(outDir, name)), { recursive: true });
    await writeFile(path.join(outDir, name), text);
  }
  return (await readdir(outDir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(outDir, path.join(entry.parentPath, entry.name)))
    .sort();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? path.join(PACKAGE, 'dist'));
  buildKit(outDir).then(
    (files) => console.log(`built ${files.length} files into ${outDir}:\n  ${files.join('\n  ')}`),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    },
  );
}
