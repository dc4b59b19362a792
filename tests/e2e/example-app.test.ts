// The example app (examples/app, Vite + React on the supabase-profile-guard package's published
// entry points) in real Chromium against the local stack, used as a person would: sign up, see
// and edit the profile, reload, a taken username, sign out and in, another user's profile, and
// the server switching registration off. The app is built by Vite and served as static files, the
// way an app is deployed; nothing in it knows it is under test.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExample, EXAMPLE_ROOT } from '../../scripts/example-app.ts';
import { useBrowser } from '../helpers/browser.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCREENSHOT = path.join(ROOT, '.data', 'screenshots', 'example-app.png');
const PASSWORD = 'correct horse battery staple';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

const db = useTestDatabase();
const api = useLocalApi(db, {
  functions: true,
  functionEnv: { REGISTER_MODE: 'signup', REGISTER_RATE_LIMIT_MAX: '1000' },
});
const browser = useBrowser();

let dist: string;
let server: Server;
let appUrl: string;

beforeAll(async () => {
  dist = await mkdtemp(path.join(tmpdir(), 'example-app-'));
  await buildExample(dist, {
    VITE_SUPABASE_URL: api().stack.apiUrl,
    VITE_SUPABASE_PUBLISHABLE_KEY: api().stack.keys.publishableKey,
    VITE_REGISTRATION_PATH: 'guarded',
    VITE_WHEN_REGISTRATION_DISABLED: 'message',
  });
  // A static host: the built files, index.html for every other path.
  server = createServer((request, response) => {
    const wanted = path.normalize(new URL(request.url ?? '/', 'http://x').pathname);
    const file = path.join(dist, wanted === '/' ? 'index.html' : wanted);
    readFile(file.startsWith(dist) ? file : path.join(dist, 'index.html'))
      .catch(() => readFile(path.join(dist, 'index.html')))
      .then((body) => {
        const type = TYPES[path.extname(file)] ?? TYPES['.html']!;
        response.writeHead(200, { 'content-type': type }).end(body);
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}, 120_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (dist) await rm(dist, { recursive: true, force: true });
});

const unique = () => Math.random().toString(36).slice(2, 10);

async function signUp(
  page: Page,
  input: { email: string; fullName: string; username: string },
): Promise<void> {
  const form = page.getByRole('form', { name: 'Sign up' });
  await form.getByLabel('Email').fill(input.email);
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByLabel('Full name').fill(input.fullName);
  await form.getByLabel('Username').fill(input.username);
  await form.getByRole('button', { name: 'Sign up' }).click();
}

async function signIn(page: Page, email: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Sign in' }).click();
}

async function profileShown(page: Page): Promise<Record<string, string>> {
  await page.getByRole('region', { name: 'My profile' }).waitFor();
  return {
    email: await page.getByTestId('profile-email').innerText(),
    fullName: await page.getByTestId('profile-full-name').innerText(),
    username: await page.getByTestId('profile-username').innerText(),
  };
}

/** What PostgREST gives the page's own session for a query (its token from supabase-js' storage). */
async function restAsPage(page: Page, query: string): Promise<unknown> {
  const { apiUrl, keys } = api().stack;
  return await page.evaluate(async ({ apiUrl, key, query }) => {
    const stored = Object.keys(localStorage).find((name) => name.endsWith('-auth-token'));
    const session = JSON.parse(localStorage.getItem(stored ?? '') ?? 'null') as
      | { access_token: string }
      | null;
    if (!session) throw new Error('the page holds no session');
    const response = await fetch(`${apiUrl}/rest/v1/${query}`, {
      headers: { apikey: key, authorization: `Bearer ${session.access_token}` },
    });
    return await response.json();
  }, { apiUrl, key: keys.publishableKey, query });
}

describe('the example app source', () => {
  it(
    'type-checks under its own tsconfig (strict, moduleResolution bundler) against the built package',
    async () => {
      const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
      const { stdout } = await promisify(execFile)(tsc, ['-p', EXAMPLE_ROOT], { cwd: ROOT });
      expect(stdout).toBe('');
    },
    60_000,
  );
});

describe('the example app in Chromium', () => {
  const ada = {
    email: `ada-${unique()}@example.com`,
    fullName: 'Ada Lovelace',
    username: `ada_${unique()}`,
  };

  it(
    'signs a person up, shows their profile, keeps an edit across a reload, refuses a taken username beside the field, and signs out and in again',
    async () => {
      const context = await browser().newContext();
      const page = await context.newPage();
      const failures: string[] = [];
      page.on('pageerror', (error) => failures.push(error.message));
      // Every write the page sends to the database API (PostgREST), to hold it to the rule that the
      // browser writes nothing but its own editable profile columns.
      const writes: Array<{ method: string; path: string; columns: string[] }> = [];
      page.on('request', (request) => {
        const url = new URL(request.url());
        if (!url.pathname.startsWith('/rest/v1/')) return;
        if (['GET', 'HEAD', 'OPTIONS'].includes(request.method())) return;
        const body = request.postDataJSON() as Record<string, unknown> | null;
        writes.push({
          method: request.method(),
          path: url.pathname,
          columns: Object.keys(body ?? {}).sort(),
        });
      });
      try {
        await page.goto(appUrl);
        await signUp(page, ada);
        expect(await profileShown(page)).toEqual({
          email: ada.email,
          fullName: ada.fullName,
          username: ada.username,
        });
        // In signup mode the trigger makes the profile inside Auth's insert; register reads it.
        const row = await db().one<{ n: number; created_via: string }>(
          `select count(*)::int as n, min(p.created_via) as created_via
           from auth.users u join public.user_profiles p on p.user_id = u.id
          where u.email = $1`,
          [ada.email],
        );
        expect(row).toEqual({ n: 1, created_via: 'trigger' });

        const edit = page.getByRole('form', { name: 'Edit profile' });
        await edit.getByLabel('Full name').fill('Ada King');
        await edit.getByRole('button', { name: 'Save' }).click();
        await page.getByTestId('profile-saved').waitFor();
        await page.reload();
        expect((await profileShown(page)).fullName).toBe('Ada King');
        expect(
          (await db().one<{ full_name: string }>(
            `select p.full_name from public.user_profiles p join auth.users u on u.id = p.user_id where u.email = $1`,
            [ada.email],
          )).full_name,
        ).toBe('Ada King');
        await mkdir(path.dirname(SCREENSHOT), { recursive: true });
        await page.screenshot({ path: SCREENSHOT, fullPage: true });

        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.getByRole('form', { name: 'Sign up' }).waitFor();

        const grace = {
          email: `grace-${unique()}@example.com`,
          fullName: 'Grace Hopper',
          username: ada.username,
        };
        await signUp(page, grace);
        await expect.poll(() => page.getByTestId('username-error').textContent()).toBe(
          'is already taken',
        );
        expect(await page.getByLabel('Username').first().getAttribute('aria-invalid')).toBe('true');
        expect(
          (await db().one<{ n: number }>(
            'select count(*)::int as n from auth.users where email = $1',
            [grace.email],
          )).n,
        ).toBe(0);

        await signIn(page, ada.email);
        expect(await profileShown(page)).toEqual({
          email: ada.email,
          fullName: 'Ada King',
          username: ada.username,
        });
        expect(failures).toEqual([]);
        // The one edit above, and nothing else: no insert, no other table, no other column.
        expect(writes).toEqual([
          { method: 'PATCH', path: '/rest/v1/user_profiles', columns: ['full_name', 'username'] },
        ]);
      } finally {
        await context.close();
      }
    },
    120_000,
  );

  it(
    "never shows a signed-in person another user's profile: the page's session reads its own row only",
    async () => {
      const context = await browser().newContext();
      const page = await context.newPage();
      try {
        const bob = {
          email: `bob-${unique()}@example.com`,
          fullName: 'Bob',
          username: `bob_${unique()}`,
        };
        await page.goto(appUrl);
        await signUp(page, bob);
        expect((await profileShown(page)).email).toBe(bob.email);
        const others = await db().one<{ n: number }>(
          'select count(*)::int as n from public.user_profiles where email <> $1',
          [bob.email],
        );
        expect(others.n).toBeGreaterThan(0);
        const rows = (await restAsPage(page, 'user_profiles?select=email')) as Array<
          { email: string }
        >;
        expect(rows).toEqual([{ email: bob.email }]);
        expect(
          await restAsPage(
            page,
            `user_profiles?select=email&email=eq.${encodeURIComponent(ada.email)}`,
          ),
        )
          .toEqual([]);
      } finally {
        await context.close();
      }
    },
    60_000,
  );

  it(
    "shows the server's message, and makes nobody, while registration is switched off",
    async () => {
      const context = await browser().newContext();
      const page = await context.newPage();
      const carol = {
        email: `carol-${unique()}@example.com`,
        fullName: 'Carol',
        username: `carol_${unique()}`,
      };
      await db().query('update private.settings set register_enabled = false');
      try {
        await page.goto(appUrl);
        await signUp(page, carol);
        await expect.poll(() => page.getByTestId('signup-error').textContent(), { timeout: 10_000 })
          .toBe('Registration is switched off for now; try again later');
        expect(
          (await db().one<{ n: number }>(
            'select count(*)::int as n from auth.users where email = $1',
            [carol.email],
          )).n,
        ).toBe(0);
      } finally {
        await db().query('update private.settings set register_enabled = true');
        await context.close();
      }
    },
    60_000,
  );
});
