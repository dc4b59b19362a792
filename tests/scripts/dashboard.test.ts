// `npm run dashboard`: its flags (checked before anything is served), the process as an operator
// runs it (the URL it prints, Ctrl-C), and the relay in scripts/dashboard-server.ts against a
// stand-in profile-health that records what reaches it.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../scripts/cli-flags.ts';
import { parseDashboardOptions, USAGE } from '../../scripts/dashboard-options.ts';
import { type DashboardServer, startDashboardServer } from '../../scripts/dashboard-server.ts';
import { ROOT } from './run-cli.ts';

const TOKEN = 'the-health-token-of-this-test';
const HEALTH_BODY = {
  status: 'degraded',
  checked_at: '2026-01-01T00:00:00Z',
  checks: {},
  stats: null,
  operations: null,
};

interface Upstream {
  url: string;
  requests: Array<{ url: string; headers: IncomingHttpHeaders }>;
  /** How the next requests are answered; default: the health body, 401 without the token. */
  answer: (request: IncomingMessage, response: ServerResponse) => void;
  server: Server;
}

function healthAnswer(request: IncomingMessage, response: ServerResponse): void {
  const ok = request.headers['x-health-token'] === TOKEN;
  const body = JSON.stringify(
    ok ? HEALTH_BODY : {
      error: { code: 'unauthorized', message: 'The health token or service key is not valid' },
    },
  );
  response.writeHead(ok ? 503 : 401, { 'content-type': 'application/json' }).end(body);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A stand-in for the project's functions: records every request, answers as upstream.answer says. */
async function startUpstream(): Promise<Upstream> {
  const upstream: Upstream = {
    url: '',
    requests: [],
    answer: healthAnswer,
    server: undefined as unknown as Server,
  };
  upstream.server = createServer((request, response) => {
    upstream.requests.push({ url: request.url ?? '', headers: request.headers });
    upstream.answer(request, response);
  });
  upstream.url = `http://127.0.0.1:${await listen(upstream.server)}/functions/v1`;
  return upstream;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A GET with exactly these headers (node:http, so Host can be anything). */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      response.on(
        'end',
        () => resolve({ status: response.statusCode!, headers: response.headers, body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const json = (answer: Answer) => JSON.parse(answer.body) as Record<string, unknown>;

interface Run {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** scripts/dashboard.ts as `npm run dashboard` runs it, in one node process (so a kill ends it all). */
function runDashboard(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/dashboard.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: 'true' },
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      running.delete(child);
      resolve(code);
    })
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
});

async function waitFor<T>(
  read: () => T | undefined,
  what: string,
  run: Run,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline || run.child.exitCode !== null) {
      throw new Error(`never saw ${what}:\n${run.stdout()}\n${run.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('npm run dashboard: flags', () => {
  const hosted = 'https://abcdefghijklmnop.supabase.co/functions/v1';

  it('takes a functions URL over https (http only for this machine) and a port from 0 to 65535', () => {
    expect(parseDashboardOptions(['--functions-url', `${hosted}/`])).toEqual({
      help: false,
      functionsUrl: hosted,
      port: 54330,
    });
    expect(
      parseDashboardOptions([
        '--functions-url',
        'http://127.0.0.1:54321/functions/v1',
        '--port',
        '0',
      ]),
    ).toEqual({
      help: false,
      functionsUrl: 'http://127.0.0.1:54321/functions/v1',
      port: 0,
    });
    expect(
      parseDashboardOptions([
        '--functions-url',
        'http://localhost:54321/functions/v1',
        '--port',
        '65535',
      ]).port,
    ).toBe(65_535);
    expect(parseDashboardOptions(['--help']).help).toBe(true);
  });

  it('refuses a missing, malformed or unsafe --functions-url, a bad --port and anything unknown', () => {
    const cases: Array<[string[], string]> = [
      [[], '--functions-url is required'],
      [['--functions-url', ' '], '--functions-url is required'],
      [
        ['--functions-url', 'not a url'],
        '--functions-url must be an http(s) URL such as https://<project-ref>.supabase.co/functions/v1',
      ],
      [
        ['--functions-url', 'ftp://example.com/functions/v1'],
        '--functions-url must be an http(s) URL, got a ftp: URL',
      ],
      [
        ['--functions-url', 'http://abcdefghijklmnop.supabase.co/functions/v1'],
        '--functions-url must use https:// for abcdefghijklmnop.supabase.co',
      ],
      [
        ['--functions-url', 'https://admin:hunter2@abcdefghijklmnop.supabase.co/functions/v1'],
        '--functions-url must not carry a user name or password',
      ],
      [
        ['--functions-url', `${hosted}?window=1h`],
        '--functions-url must not have a query or fragment',
      ],
      [
        ['--functions-url', `${hosted}#token=x`],
        '--functions-url must not have a query or fragment',
      ],
      [
        ['--functions-url', hosted, '--port', '65536'],
        '--port must be a whole number from 0 to 65535, got "65536"',
      ],
      [
        ['--functions-url', hosted, '--port', '80a'],
        '--port must be a whole number from 0 to 65535, got "80a"',
      ],
      [
        ['--functions-url', hosted, '--port', '1e3'],
        '--port must be a whole number from 0 to 65535, got "1e3"',
      ],
      [['--functions-url', hosted, '--token', TOKEN], "Unknown option '--token'"],
      [['--functions-url', hosted, 'extra'], "Unexpected argument 'extra'"],
      [['--functions-url'], "Option '--functions-url <value>' argument missing"],
    ];
    for (const [args, message] of cases) {
      expect(() => parseDashboardOptions(args), args.join(' ')).toThrow(UsageError);
      expect(() => parseDashboardOptions(args), args.join(' ')).toThrow(message);
      // What was refused is not echoed when it may hold a secret.
      expect(() => parseDashboardOptions(args)).not.toThrow(/hunter2/);
    }
  });

  it('prints the usage and exits 2 on a bad flag, before serving anything', async () => {
    const runs = [
      runDashboard([]),
      runDashboard(['--functions-url', 'http://example.com/functions/v1', '--port', '0']),
    ];
    for (
      const [run, message] of [
        [runs[0]!, '--functions-url is required'],
        [
          runs[1]!,
          '--functions-url must use https:// for example.com: the health token is sent to it',
        ],
      ] as const
    ) {
      expect(await run.exit).toBe(2);
      expect(run.stderr()).toBe(`${message}\n\n${USAGE}\n`);
      expect(run.stdout()).toBe('');
    }
  });

  it('prints its usage on --help and exits 0', async () => {
    const run = runDashboard(['--help']);
    expect(await run.exit).toBe(0);
    expect(run.stdout()).toBe(`${USAGE}\n`);
    expect(USAGE).toMatch(/^usage: npm run dashboard -- --functions-url URL \[--port N\]\n/);
  });
});

describe('npm run dashboard: the process', () => {
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(async () => {
    if (upstream) await close(upstream.server);
  });

  it('prints the address with a token placeholder, serves the page, relays the JSON and stops on Ctrl-C with exit 0', async () => {
    const run = runDashboard(['--functions-url', `${upstream.url}/`, '--port', '0']);
    const base = await waitFor(
      () =>
        /^open (http:\/\/127\.0\.0\.1:\d+\/)#token=<your PROFILE_HEALTH_TOKEN>$/m.exec(run.stdout())
          ?.[1],
      'the address',
      run,
    );
    expect(run.stdout()).toBe(`open ${base}#token=<your PROFILE_HEALTH_TOKEN>\n`);
    expect(run.stderr()).toContain(
      `relaying the dashboard's requests to ${upstream.url}/profile-health`,
    );

    const page = await get(base);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(
      /^default-src 'none'; script-src 'nonce-[^']+'; style-src 'nonce-[^']+'; connect-src 'self';/,
    );
    expect(page.body).toContain('data-testid="verdict"');

    upstream.requests.length = 0;
    const answer = await get(`${base}?format=json&include=operations&window=1h`, {
      'x-health-token': TOKEN,
      cookie: 'session=of-another-site',
      authorization: 'Bearer not-for-the-project',
      'sec-fetch-site': 'same-origin',
    });
    expect(answer.status).toBe(503);
    expect(json(answer)).toEqual(HEALTH_BODY);
    expect(upstream.requests.map((r) => r.url)).toEqual([
      '/functions/v1/profile-health?format=json&include=operations&window=1h',
    ]);
    const sent = upstream.requests[0]!.headers;
    expect(sent['x-health-token']).toBe(TOKEN);
    expect(sent.cookie).toBeUndefined();
    expect(sent.authorization).toBeUndefined();

    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
    expect(run.stderr()).toMatch(/Ctrl-C stops it\.\nstopped\n$/);
    expect(`${run.stdout()}${run.stderr()}`).not.toContain(TOKEN);
    await expect(get(base)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('exits 1 with one line when the port is taken', async () => {
    const squatter = createServer();
    const port = await listen(squatter);
    try {
      const run = runDashboard(['--functions-url', upstream.url, '--port', String(port)]);
      expect(await run.exit).toBe(1);
      expect(run.stderr()).toBe(`port ${port} on 127.0.0.1 is taken: choose another with --port\n`);
    } finally {
      await close(squatter);
    }
  });
});

describe('the dashboard server relay', () => {
  let upstream: Upstream;
  let dashboard: DashboardServer;
  const log: string[] = [];
  beforeAll(async () => {
    upstream = await startUpstream();
    dashboard = await startDashboardServer({
      functionsUrl: upstream.url,
      port: 0,
      upstreamTimeoutMs: 500,
      log: (line) => log.push(line),
    });
  });
  afterAll(async () => {
    await dashboard?.close();
    if (upstream) await close(upstream.server);
  });
  afterEach(() => {
    upstream.answer = healthAnswer;
    upstream.requests.length = 0;
  });

  const data = (query = '?format=json&include=operations&window=24h') => `${dashboard.url}${query}`;
  const withToken = { 'x-health-token': TOKEN };

  it('passes the status and JSON of profile-health through under its own JSON-only headers', async () => {
    const answer = await get(data(), withToken);
    expect(answer.status).toBe(503);
    expect(json(answer)).toEqual(HEALTH_BODY);
    expect(answer.headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    });
    const refused = await get(data(), { 'x-health-token': 'wrong' });
    expect(refused.status).toBe(401);
  });

  it("relays nothing but the page's own request: other parameters, windows, paths, methods, hosts and sites are answered here", async () => {
    const refusals: Array<[Promise<Answer>, number, string]> = [
      [
        get(data('?format=json&include=operations&window=1h&select=*'), withToken),
        400,
        'unsupported_query',
      ],
      [
        get(data('?format=json&include=operations&window=1h&window=7d'), withToken),
        400,
        'unsupported_query',
      ],
      [
        get(data('?format=json&include=operations&window=1h;drop'), withToken),
        400,
        'unsupported_query',
      ],
      [get(data('?format=json&window=1h'), withToken), 400, 'unsupported_query'],
      [get(data('?format=prometheus'), withToken), 400, 'unsupported_query'],
      [get(data(), {}), 401, 'health_token_required'],
      [get(data(), { ...withToken, 'sec-fetch-site': 'cross-site' }), 403, 'cross_site_request'],
      [
        get(data(), { ...withToken, host: `attacker.example:${dashboard.port}` }),
        421,
        'wrong_host',
      ],
      [get(`${dashboard.url}functions/v1/register`, withToken), 404, 'not_found'],
      [get(data(), withToken, 'POST'), 405, 'method_not_allowed'],
    ];
    for (const [pending, status, error] of refusals) {
      const answer = await pending;
      expect([answer.status, json(answer).error]).toEqual([status, error]);
      expect(json(answer).status).toBe('unknown');
    }
    expect(upstream.requests).toEqual([]);
  });

  it('does not follow a redirect, which would carry the token elsewhere', async () => {
    const elsewhere = await startUpstream();
    try {
      upstream.answer = (_request, response) =>
        response.writeHead(302, { location: `${elsewhere.url}/profile-health` }).end();
      const answer = await get(data(), withToken);
      expect([answer.status, json(answer).error]).toEqual([502, 'profile_health_redirected']);
      expect(elsewhere.requests).toEqual([]);
    } finally {
      await close(elsewhere.server);
    }
  });

  it('answers 504 with a reason the page shows when profile-health does not answer in time', async () => {
    upstream.answer = () => undefined;
    const started = Date.now();
    const answer = await get(data(), withToken);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(answer.status).toBe(504);
    expect(json(answer)).toEqual({
      status: 'unknown',
      error: 'profile_health_timed_out',
      message: 'profile-health gave no answer within 0.5 s',
    });
  });

  it('answers 502 instead of passing on an answer that is not JSON, such as a page served as text/plain', async () => {
    upstream.answer = (_request, response) =>
      response.writeHead(200, { 'content-type': 'text/html' }).end('<script>alert(1)</script>');
    const answer = await get(data(), withToken);
    expect(answer.status).toBe(502);
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(json(answer).error).toBe('profile_health_answer_not_json');
    expect(answer.body).not.toContain('<script>');

    upstream.answer = (_request, response) =>
      response.writeHead(200, { 'content-type': 'application/json' }).end(
        `"${'x'.repeat(3 * 1024 * 1024)}"`,
      );
    const huge = await get(data(), withToken);
    expect([huge.status, json(huge).error]).toEqual([502, 'profile_health_answer_too_large']);
  });

  it('logs what went wrong and never the token', () => {
    expect(log.length).toBeGreaterThan(0);
    for (const line of log) expect(line).not.toContain(TOKEN);
  });
});
