// The local stack behind `npm start` and the end-to-end tests: PostgreSQL (embedded, or the
// database at databaseUrl), then one API in front of it like the Supabase CLI's on
// http://127.0.0.1:54321: /auth/v1 (Auth stand-in), /rest/v1 (PostgREST stand-in) and
// /functions/v1 (the real functions under real Deno).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import type { JWK } from 'jose';
import { Hono } from 'hono';
import pg from 'pg';
import { type AuthFault, createAuthApp } from './auth/app.ts';
import { createCaptchaApp } from './captcha.ts';
import { applyCors } from './cors.ts';
import { SB_FORWARDED_FOR } from './auth/client-ip.ts';
import type { HttpHookOptions } from './auth/hooks.ts';
import type { RateLimit } from './auth/rate-limit.ts';
import { databaseUrl } from './database-url.ts';
import {
  type ClientAddressShape,
  createFunctionsGateway,
  FUNCTIONS_PREFIX,
  type Gateway,
  readVerifyJwt,
} from './functions/gateway.ts';
import { startWorkers, type WorkerPool } from './functions/workers.ts';
import {
  LOCAL_PUBLISHABLE_KEY,
  LOCAL_SECRET_KEY,
  type LocalKeys,
  localKeys,
  publicJwk,
} from './keys.ts';
import { migrateDatabase } from './migrate.ts';
import { type EmbeddedCluster, localDataDir, startEmbeddedCluster } from './postgres.ts';
import { createRestApp } from './rest/app.ts';
import {
  type Scheduler,
  type SchedulerOptions,
  type SelfRepairSchedule,
  startScheduler,
} from './scheduler.ts';
import { createLogger } from '../shared/logger.ts';
import { createSupabaseClient } from '../shared/supabase-client.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** User secrets the local functions get unless supabase/functions/.env or options override them. */
export const LOCAL_FUNCTION_SECRETS: Readonly<Record<string, string>> = {
  PROFILE_WEBHOOK_SECRET: 'local-webhook-secret-not-for-production',
  AUTH_HOOK_SECRET: `v1,whsec_${btoa('local-auth-hook-secret-not-for-production')}`,
  PROFILE_HEALTH_TOKEN: 'local-health-token-not-for-production',
};

export interface StackOptions {
  /** API port; 0 picks a free one. Default 54321, the Supabase CLI's. */
  port?: number;
  /** Superuser URL of an existing database; otherwise an embedded cluster on dbPort. */
  databaseUrl?: string;
  /**
   * Apply supabase/migrations before serving (default true). False serves a project as it is
   * before it takes them (the bootstrap only), as the adoption tests need.
   */
  migrations?: boolean;
  dataDir?: string;
  dbPort?: number;
  /** Email confirmation off (true, the local default) or on (false). */
  autoconfirm?: boolean;
  /** Extra or overriding environment for the functions (REGISTER_MODE, …). */
  functionEnv?: Record<string, string>;
  /** Start the function workers (the e2e suites do; stand-in tests may not need them). */
  functions?: boolean;
  bcryptCost?: number;
  /** Override the fixed local JWT secret (signs the anon and service_role keys). */
  jwtSecret?: string;
  /** Override the fixed local ES256 key that signs user access tokens (a private JWK with kid). */
  signingKey?: JWK;
  /**
   * Make Auth's /signup require this CAPTCHA token, as a project with CAPTCHA protection does;
   * the same token is the one a provider's siteverify stand-in accepts at /captcha/siteverify
   * (secret LOCAL_CAPTCHA_SECRET), for register's own check when it forwards client addresses.
   */
  captchaToken?: string;
  /**
   * Auth's GOTRUE_SMTP_MAX_FREQUENCY in seconds. Default 1: the CLI lays the project's config.toml
   * over its template, whose [auth.email] max_frequency is "1s" (cli pkg/config/config.go
   * mergeDefaultValues).
   */
  mailIntervalSeconds?: number;
  /**
   * Auth's before-user-created HTTP hook. 'ensure-profile' points it at the local ensure-profile
   * function through this API's /functions/v1, signed with the functions' AUTH_HOOK_SECRET.
   */
  beforeUserCreatedHook?: HttpHookOptions | 'ensure-profile';
  /** Auth's per-address /signup limit ([auth.rate_limit] sign_in_sign_ups); default 30 per 5 minutes. */
  signupRateLimit?: RateLimit;
  /**
   * Let Auth limit per client address as on hosted Supabase, whose edge hands GoTrue the client's
   * address in GOTRUE_RATE_LIMIT_HEADER. Default false, as the local CLI sets no such header and
   * GoTrue then limits only Sb-Forwarded-For addresses.
   */
  rateLimitByClientAddress?: boolean;
  /** Auth's IP address forwarding (security_sb_forwarded_for_enabled); default false. */
  sbForwardedForEnabled?: boolean;
  /** Functions' text/html answers become text/plain, as on a hosted *.supabase.co project. */
  htmlAsPlainText?: boolean;
  /** Which headers bring the caller's address to the functions (see ClientAddressShape); default 'append-xff'. */
  clientAddressShape?: ClientAddressShape;
  /**
   * Run the local stand-in for pg_cron (dev/scheduler.ts): public.run_self_repair() every
   * private.settings.self_repair_period, alerts posted to the functions' ALERT_WEBHOOK_URL.
   * `npm start` turns it on; tests that need users to stay without a profile leave it off.
   */
  selfRepair?: boolean | { onTick: SchedulerOptions['onTick'] };
  log?: (line: string) => void;
  onEmail?: (mail: { to: string; type: 'signup'; link: string; token: string }) => void;
}

export interface Stack {
  apiUrl: string;
  /** URL as the `postgres` role, the one users run SQL as. */
  dbUrl: string;
  /** Superuser URL, for tests that need to reach behind the product's back. */
  adminDbUrl: string;
  keys: LocalKeys & { publishableKey: string; secretKey: string };
  functionSecrets: Record<string, string>;
  /**
   * Dev/test only: makes the Auth stand-in fail or slow down (see AuthFault) until cleared with
   * null. The object is kept, so its `remaining` shows how many requests it has still to affect.
   */
  setAuthFault(fault: AuthFault | null): void;
  /** The fault set with setAuthFault, as counted down so far, or null. */
  authFault(): AuthFault | null;
  /** The local scheduler's schedule as read at its last tick; null when it is not running. */
  selfRepair(): SelfRepairSchedule | null;
  stop(): Promise<void>;
}

async function readEnvFile(file: string): Promise<Record<string, string>> {
  if (!existsSync(file)) return {};
  const env: Record<string, string> = {};
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) env[match[1]!] = match[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

/**
 * Local Kong's key handling: a request that carries no JWT (or an sb_… key as its bearer) is
 * given the JWT that its apikey stands for, so services behind it only ever see JWTs. Done on
 * Node's request before anything reads it (rewriting its headers, not copying it into a new
 * Fetch Request), so the mapping costs no more than Kong's does. False: an unknown sb_… key.
 */
function mapApiKeys(request: IncomingMessage, keys: LocalKeys): boolean {
  const apikey = request.headers.apikey;
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (bearer && !bearer.startsWith('sb_')) return true;
  const key = bearer ?? (typeof apikey === 'string' ? apikey : undefined);
  if (!key || !key.startsWith('sb_')) return true;
  const jwt = key === LOCAL_SECRET_KEY
    ? keys.serviceRoleKey
    : key === LOCAL_PUBLISHABLE_KEY
    ? keys.anonKey
    : null;
  if (!jwt) return false;
  const raw = request.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i]!.toLowerCase() === 'authorization') raw.splice(i, 2);
  }
  raw.push('authorization', `Bearer ${jwt}`);
  request.headers.authorization = `Bearer ${jwt}`;
  return true;
}

/** Where this API hands Auth the TCP peer's address; whatever a client sends under it is dropped. */
const CLIENT_ADDRESS_HEADER = 'x-stack-client-address';

function replaceHeader(request: IncomingMessage, name: string, value: string | null): void {
  const raw = request.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  delete request.headers[name];
  if (value === null) return;
  raw.push(name, value);
  request.headers[name] = value;
}

/**
 * The hosted gateway's part in client addresses for Auth, done before the keys are mapped:
 * Sb-Forwarded-For reaches Auth only on a request made with a secret key, not the publishable key
 * nor the legacy anon or service_role JWTs (Supabase docs guides/auth/rate-limits.mdx, "IP address
 * forwarding"; GoTrue itself trusts the header whenever the setting is on), and the peer's address
 * travels in a header no client can set.
 */
function forwardClientAddress(request: IncomingMessage): void {
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (request.headers.apikey !== LOCAL_SECRET_KEY && bearer !== LOCAL_SECRET_KEY) {
    replaceHeader(request, SB_FORWARDED_FOR, null);
  }
  replaceHeader(request, CLIENT_ADDRESS_HEADER, request.socket.remoteAddress ?? null);
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  if (options.beforeUserCreatedHook === 'ensure-profile' && options.functions === false) {
    throw new Error(
      "beforeUserCreatedHook 'ensure-profile' needs the function workers (functions: true)",
    );
  }
  const log = options.log ?? ((line: string) => console.log(line));
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((e: unknown) => log(`stop: ${(e as Error).message}`));
    }
  };

  try {
    let serverUrl = options.databaseUrl;
    let cluster: EmbeddedCluster | undefined;
    if (!serverUrl) {
      cluster = await startEmbeddedCluster({
        dataDir: options.dataDir ?? localDataDir(),
        persistent: true,
        port: options.dbPort ?? 54322,
      });
      cleanups.push(() => cluster!.stop());
      log(`PostgreSQL data: ${cluster.dataDir}`);
      serverUrl = cluster.url;
    }
    const applied = await migrateDatabase(serverUrl, {
      log,
      migrations: options.migrations ?? true,
    });
    log(`${applied.length} migration(s) applied`);
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`alter role postgres with password 'postgres'`);
    await admin.end();

    const keys = await localKeys({
      ...(options.jwtSecret ? { jwtSecret: options.jwtSecret } : {}),
      ...(options.signingKey ? { signingKey: options.signingKey } : {}),
    });
    const authPool = new pg.Pool({
      connectionString: databaseUrl(serverUrl, { role: 'supabase_auth_admin' }),
      max: 20,
      connectionTimeoutMillis: 10_000,
    });
    // A wait for a connection is bounded, so an exhausted pool answers 504 PGRST003, not never.
    const restPool = new pg.Pool({
      connectionString: databaseUrl(serverUrl, { role: 'authenticator' }),
      max: 20,
      connectionTimeoutMillis: 10_000,
    });
    // A dropped connection (a database restart) must not crash the stack: the next query reconnects.
    authPool.on('error', (e) => log(`auth pool: ${e.message}`));
    restPool.on('error', (e) => log(`rest pool: ${e.message}`));
    // The pools only listen for errors on idle connections; one the server drops while a request
    // holds it (a restart between two queries of a transaction) reports on the client itself.
    // Noted here instead of crashing the process; the pool discards the client on release.
    authPool.on(
      'connect',
      (client) => client.on('error', (e) => log(`auth connection: ${e.message}`)),
    );
    restPool.on(
      'connect',
      (client) => client.on('error', (e) => log(`rest connection: ${e.message}`)),
    );
    cleanups.push(async () => {
      await Promise.all([authPool.end(), restPool.end()]);
    });

    const app = new Hono();
    let authFault: AuthFault | null = null;
    let apiUrl = '';
    // /functions/v1/* goes to the gateway as Node's own request and response (set once the
    // workers run); everything else through Hono.
    let gateway: Gateway | null = null;
    const server: ServerType = await new Promise((resolve) => {
      const s = serve(
        {
          // The Node bindings go along: Auth reads the peer from them and drops connections with them.
          fetch: (request: Request, env) => app.fetch(request, env),
          createServer: ((serverOptions: object, listener: Parameters<typeof createServer>[1]) =>
            createServer(serverOptions, (request, response) => {
              if (request.url?.startsWith(FUNCTIONS_PREFIX)) {
                if (gateway) {
                  return gateway(request, response);
                }
              } else {
                if (applyCors(request, response)) {
                  return;
                }
                if (request.url?.startsWith('/auth/v1/')) {
                  forwardClientAddress(request);
                }
                if (!mapApiKeys(request, keys)) {
                  return void response.writeHead(401, {
                    'content-type': 'application/json',
                    'access-control-allow-origin': '*',
                  }).end(
                    JSON.stringify({ message: 'Invalid API key' }),
                  );
                }
              }
              listener!(request, response);
            })) as unknown as typeof createServer,
          port: options.port ?? 54321,
          hostname: '127.0.0.1',
        },
        () =>
          resolve(s),
      );
    });
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const functionSecrets = {
      ...LOCAL_FUNCTION_SECRETS,
      ...(await readEnvFile(path.join(ROOT, 'supabase', 'functions', '.env'))),
      ...(options.functionEnv ?? {}),
    };
    // As a local project's config.toml would name it: the function behind this API's gateway.
    const hook = options.beforeUserCreatedHook === 'ensure-profile'
      ? {
        url: `${apiUrl}${FUNCTIONS_PREFIX}ensure-profile`,
        secrets: functionSecrets.AUTH_HOOK_SECRET ?? '',
      }
      : options.beforeUserCreatedHook;

    app.route(
      '/auth/v1',
      createAuthApp({
        pool: authPool,
        keys,
        apiUrl,
        autoconfirm: options.autoconfirm ?? true,
        siteUrl: 'http://127.0.0.1:3000',
        ...(options.bcryptCost ? { bcryptCost: options.bcryptCost } : {}),
        ...(options.captchaToken ? { captchaToken: options.captchaToken } : {}),
        onEmail: options.onEmail ??
          ((mail) => log(`[auth] confirmation email to ${mail.to}: ${mail.link}`)),
        mailIntervalSeconds: options.mailIntervalSeconds ?? 1,
        ...(hook ? { beforeUserCreatedHook: hook } : {}),
        ...(options.signupRateLimit ? { signupRateLimit: options.signupRateLimit } : {}),
        ...(options.rateLimitByClientAddress ? { rateLimitHeader: CLIENT_ADDRESS_HEADER } : {}),
        sbForwardedForEnabled: options.sbForwardedForEnabled ?? false,
        faults: () => authFault,
      }),
    );
    app.route('/rest/v1', createRestApp({ pool: restPool, keys }));
    if (options.captchaToken) app.route('/captcha', createCaptchaApp(options.captchaToken));
    if (options.functions !== false) {
      const pool: WorkerPool = await startWorkers({
        root: ROOT,
        log,
        env: {
          // What Supabase injects into every function (facts §5), pointing at this stack.
          SUPABASE_URL: apiUrl,
          SUPABASE_ANON_KEY: keys.anonKey,
          SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
          SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: LOCAL_PUBLISHABLE_KEY }),
          SUPABASE_SECRET_KEYS: JSON.stringify({ default: LOCAL_SECRET_KEY }),
          SUPABASE_JWKS: JSON.stringify({ keys: [publicJwk(keys.signingKey)] }),
          SUPABASE_DB_URL: databaseUrl(serverUrl, { role: 'postgres', password: 'postgres' }),
          ...functionSecrets,
        },
      });
      cleanups.push(() => pool.stop());
      gateway = createFunctionsGateway({
        pool,
        keys,
        verifyJwt: await readVerifyJwt(ROOT),
        htmlAsPlainText: options.htmlAsPlainText ?? false,
        clientAddressShape: options.clientAddressShape,
      });
    }

    let scheduler: Scheduler | undefined;
    if (options.selfRepair) {
      scheduler = await startScheduler({
        dbUrl: databaseUrl(serverUrl, { role: 'postgres', password: 'postgres' }),
        supabase: createSupabaseClient(apiUrl, keys.serviceRoleKey),
        alertWebhookUrl: functionSecrets.ALERT_WEBHOOK_URL || undefined,
        // Its JSON lines go where the stack's own lines go (the console, or a test's log).
        log: createLogger({
          bindings: { component: 'self-repair' },
          destination: { write: (line: string) => log(line.trimEnd()) },
        }),
        retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 2_000, deadlineMs: 10_000 },
        ...(typeof options.selfRepair === 'object' ? { onTick: options.selfRepair.onTick } : {}),
      });
      // Stopped before the API and the database it calls.
      cleanups.push(() => scheduler!.stop());
    }

    return {
      apiUrl,
      dbUrl: databaseUrl(serverUrl, { role: 'postgres', password: 'postgres' }),
      adminDbUrl: serverUrl,
      keys: { ...keys, publishableKey: LOCAL_PUBLISHABLE_KEY, secretKey: LOCAL_SECRET_KEY },
      functionSecrets,
      setAuthFault: (fault) => {
        authFault = fault;
      },
      authFault: () => authFault,
      selfRepair: () => scheduler?.schedule() ?? null,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
