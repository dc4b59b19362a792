// The dashboard page's script is the TypeScript client in shared/dashboard, written into the page
// by toString when the module loads. Each runtime that serves the page strips the types with its
// own compiler (Deno for the function, tsx for `npm run dashboard`, vitest for the in-process
// servers of the tests), so the page each of them renders is checked here: one nonce-tagged
// script that is plain JavaScript and names nothing a browser does not define.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Script } from 'node:vm';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { DENO, LOCAL_DENO_FLAGS } from '../../dev/deno.ts';
import { renderDashboardHtml } from '../../shared/dashboard/page.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NONCE = 'bm9uY2Utb2YtdGhlLXRlc3Q=';
const RENDER = `renderDashboardHtml(${JSON.stringify(NONCE)})`;

async function output(command: string, args: readonly string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(command, args, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
    maxBuffer: 16 * 2 ** 20,
  });
  return stdout;
}

const PAGES: Record<string, () => Promise<string>> = {
  vitest: async () => renderDashboardHtml(NONCE),
  tsx: () =>
    output(process.execPath, [
      '--import',
      'tsx',
      '-e',
      `import('./shared/dashboard/page.ts').then((m) => process.stdout.write(m.${RENDER}))`,
    ]),
  deno: () =>
    output(DENO, [
      'eval',
      ...LOCAL_DENO_FLAGS,
      `import { renderDashboardHtml } from './shared/dashboard/page.ts'; Deno.stdout.writeSync(new TextEncoder().encode(${RENDER}))`,
    ]),
};

function scriptOf(html: string): string {
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  expect(scripts.map((match) => match[1])).toEqual([` nonce="${NONCE}"`]);
  return scripts[0]![2]!;
}

/**
 * Names the script uses without declaring them that neither ES2022 nor the DOM defines: what a
 * client part would take from its module (an import, a module-level value) or a compiler helper
 * its toString leaves behind. TypeScript reports each as "Cannot find name".
 */
function undeclaredNames(script: string): string[] {
  const file = '/dashboard-script.js';
  const options: ts.CompilerOptions = {
    allowJs: true,
    checkJs: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (
    name,
    language,
  ) => (name === file
    ? ts.createSourceFile(file, script, language)
    : getSourceFile(name, language));
  host.fileExists = ((exists) => (name: string) => name === file || exists(name))(
    host.fileExists.bind(host),
  );
  const program = ts.createProgram([file], options, host);
  const CANNOT_FIND_NAME = new Set([2304, 2552, 2582, 2583, 2584]);
  return program
    .getSemanticDiagnostics(program.getSourceFile(file))
    .filter((diagnostic) => CANNOT_FIND_NAME.has(diagnostic.code))
    .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
}

describe('the dashboard page', () => {
  it('puts the nonce on its one style and one script element, and has no inline event handler', () => {
    const html = renderDashboardHtml(NONCE);
    expect(html.match(/<style\b[^>]*>/g)).toEqual([`<style nonce="${NONCE}">`]);
    scriptOf(html);
    const markup = html.replace(/<script\b[^>]*>[\s\S]*?<\/script>/, '');
    expect(markup).not.toMatch(/<[^>]+\son[a-z]+\s*=/i);
    expect(markup).not.toMatch(/javascript:/i);
  });

  describe.each(Object.keys(PAGES))('as served under %s', (runtime) => {
    it(
      'carries the client as JavaScript without TypeScript syntax that uses only browser globals',
      async () => {
        const script = scriptOf(await PAGES[runtime]!());
        // Compiling is enough to reject a type annotation, an `as` or a generic left in the source.
        expect(() => new Script(script, { filename: `dashboard-${runtime}.js` })).not.toThrow();
        expect(script).not.toMatch(/<\/script|<!--/i);
        expect(script).toContain('addEventListener');
        expect(undeclaredNames(script)).toEqual([]);
      },
      60_000,
    );
  });
});
