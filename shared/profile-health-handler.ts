// profile-health: for uptime monitors, 200 when profile_system_health() says ok and 503
// otherwise (or when the database cannot be reached), with a small public body. With the
// service key or the health token: every check and the stats (and, with ?include=operations,
// what the dashboard draws); ?format=prometheus for scrapers. A privileged call also evaluates
// the alerts and delivers due transitions, so an uptime monitor polling with the token drives
// alerting. ?format=html is the operator dashboard: a static page that carries no data and
// fetches the JSON itself with the token it is given.
import { evaluateAndDeliverAlerts } from './alerts.ts';
import { bearerOf, constantTimeEqual, isServiceKey } from './caller-auth.ts';
import { clientAddressOf, type ClientAddressSource, clientKeyOf } from './client-address.ts';
import type { Config } from './config.ts';
import { cspNonce, dashboardHeaders } from './dashboard/headers.ts';
import { renderDashboardHtml } from './dashboard/page.ts';
import { AppError, unauthorized } from './errors.ts';
import { createHandler, json } from './http.ts';
import { createLogger, type Logger } from './logger.ts';
import { renderPrometheus } from './prometheus.ts';
import { rpcOnce, rpcResult } from './rpc.ts';
import { createSupabaseClient, type SupabaseClient } from './supabase-client.ts';

interface ProfileHealthDeps {
  config: Config;
  log?: Logger;
  supabase?: SupabaseClient;
}

/** A health check waits at most this long for alert evaluation and delivery, then answers. */
export const ALERT_BUDGET_MS = 2_500;
/** Each alert webhook post gets one attempt of at most this long; the outbox retries later. */
const ALERT_DELIVERY_TIMEOUT_MS = 2_000;

const WINDOW = /^(\d{1,6})\s*(s|m|h|d)$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;
// The stats functions refuse a window over 366 days (a leap year): refused here first, as a 400.
const MAX_WINDOW_SECONDS = 366 * UNIT_SECONDS.d;

/** ?window=15m → "900 seconds"; default 24 hours; at most 366 days. */
function windowOf(url: URL): string {
  const raw = url.searchParams.get('window');
  if (raw === null) return '86400 seconds';
  const match = WINDOW.exec(raw);
  const seconds = match
    ? Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS]
    : 0;
  if (seconds < 1 || seconds > MAX_WINDOW_SECONDS) {
    throw new AppError(
      400,
      'validation_failed',
      'window must look like 90s, 15m, 24h or 7d (at most 366d)',
      {
        fields: { window: 'must look like 90s, 15m, 24h or 7d (at most 366d)' },
      },
    );
  }
  return `${seconds} seconds`;
}

/** ?include=operations adds profile_operations_stats (what the dashboard draws) to the full body. */
function includesOperations(url: URL): boolean {
  const raw = url.searchParams.get('include');
  if (raw === null) return false;
  if (raw !== 'operations') {
    throw new AppError(400, 'validation_failed', 'include must be operations', {
      fields: { include: 'must be operations' },
    });
  }
  return true;
}

// Headers a proxy in front of a function may use to say who the client is.
const ADDRESS_HEADERS = [
  'x-forwarded-for',
  'cf-connecting-ip',
  'x-real-ip',
  'true-client-ip',
  'x-envoy-external-address',
  'forwarded',
];

/**
 * What this deployment sees of the caller's address, so an operator can check CLIENT_ADDRESS_HEADER
 * and CLIENT_ADDRESS_HOP against the address they know they called from (DEPLOYMENT.md).
 */
function clientAddressProbe(request: Request, source: ClientAddressSource) {
  return {
    configured: { header: source.header, hop: source.hop },
    client_address: clientAddressOf(request, source),
    rate_limit_key: clientKeyOf(request, source),
    received: Object.fromEntries(ADDRESS_HEADERS.map((name) => [name, request.headers.get(name)])),
  };
}

export function createProfileHealthHandler(
  deps: ProfileHealthDeps,
): (request: Request) => Promise<Response> {
  const { config } = deps;
  const log = deps.log ??
    createLogger({ level: config.logLevel, bindings: { function: 'profile-health' } });
  const supabase = deps.supabase ?? createSupabaseClient(config.supabaseUrl, config.serviceRoleKey);

  /**
   * Whether the caller may see every check. An app calling through supabase-js always sends its
   * anon or publishable key as the bearer: that is no credential, not a wrong one. The
   * x-health-token header wins over the bearer for the same reason.
   */
  function privileged(request: Request): boolean {
    const bearer = bearerOf(request);
    const token = request.headers.get('x-health-token') ??
      (bearer !== null && !isServiceKey(bearer, config.publicKeys) ? bearer : null);
    if (!token) return false;
    const isHealthToken = config.healthToken !== undefined &&
      constantTimeEqual(token, config.healthToken);
    if (isHealthToken || isServiceKey(token, config.serviceRoleKeys)) return true;
    throw unauthorized('The health token or service key is not valid');
  }

  /**
   * evaluate_alerts() and delivery of due transitions, bounded by ALERT_BUDGET_MS: a slow or
   * unreachable webhook costs a health check at most that, and never its answer. What is not
   * delivered stays in the outbox for the next call or the reconcile CLI.
   */
  async function driveAlerts(log: Logger): Promise<void> {
    const run = evaluateAndDeliverAlerts({
      supabase,
      webhookUrl: config.alertWebhookUrl,
      log,
      retry: { ...config.retry, maxAttempts: 1, deadlineMs: ALERT_DELIVERY_TIMEOUT_MS },
      timeoutMs: ALERT_DELIVERY_TIMEOUT_MS,
    }).then(
      (
        result,
      ) => (result.failed > 0
        ? log.warn(
          { delivered: result.delivered, failed: result.failed },
          'alert deliveries failed; kept in the outbox',
        )
        : undefined),
      (error: unknown) => log.error({ err: error }, 'alert evaluation failed'),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const budget = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), ALERT_BUDGET_MS);
    });
    try {
      if ((await Promise.race([run, budget])) === 'late') {
        log.warn(
          { budget_ms: ALERT_BUDGET_MS },
          'alert delivery still running; answering without waiting',
        );
        // Supabase's edge runtime may end a worker's pending work once it has answered, unless told.
        (globalThis as { EdgeRuntime?: { waitUntil?: (work: Promise<unknown>) => void } })
          .EdgeRuntime?.waitUntil?.(run);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  return createHandler(
    { name: 'profile-health', methods: ['GET', 'HEAD'], log },
    async (request, ctx) => {
      const url = new URL(request.url);
      const format = url.searchParams.get('format') ?? 'json';
      if (format === 'html') {
        // The static shell: no token, no database, no data. Its script asks for the JSON.
        const nonce = cspNonce();
        return new Response(renderDashboardHtml(nonce), {
          status: 200,
          headers: dashboardHeaders(nonce),
        });
      }
      if (format !== 'json' && format !== 'prometheus') {
        throw new AppError(400, 'validation_failed', 'format must be json, prometheus or html', {
          fields: { format: 'must be json, prometheus or html' },
        });
      }
      const full = privileged(request);
      if (format === 'prometheus' && !full) {
        throw unauthorized(
          'Metrics need the health token or the service key',
        );
      }
      const probe = url.searchParams.get('probe');
      if (probe !== null) {
        if (probe !== 'client-address') {
          throw new AppError(400, 'validation_failed', 'probe must be client-address', {
            fields: { probe: 'must be client-address' },
          });
        }
        if (!full) {
          throw unauthorized(
            'The client-address probe needs the health token or the service key',
          );
        }
        return json(200, clientAddressProbe(request, config.clientAddress));
      }
      const window = full ? windowOf(url) : null;
      const withOperations = full && format === 'json' && includesOperations(url);

      if (full) await driveAlerts(ctx.log);

      const health = await rpcOnce(supabase, 'profile_system_health', {});
      if (health.error) {
        ctx.log.error(
          { code: health.error.code, status: health.status },
          'profile_system_health unavailable',
        );
        return json(503, {
          status: 'down',
          checked_at: new Date().toISOString(),
          error: 'database_unreachable',
        });
      }
      const verdict = rpcResult('profile_system_health', health.data);
      const status = verdict.status === 'ok' ? 200 : 503;
      if (!full) return json(status, { status: verdict.status, checked_at: verdict.checked_at });

      const [stats, operations] = await Promise.all([
        rpcOnce(supabase, 'profile_system_stats', { p_window: window ?? undefined }),
        withOperations
          ? rpcOnce(supabase, 'profile_operations_stats', { p_window: window ?? undefined })
          : null,
      ]);
      if (stats.error) {
        ctx.log.error({ code: stats.error.code }, 'profile_system_stats unavailable');
        return json(503, { ...verdict, status: 'down', error: 'stats_unavailable' });
      }
      const figures = rpcResult('profile_system_stats', stats.data);
      if (format === 'prometheus') {
        // Scrapers treat a non-200 as a failed scrape: the verdict is in the metrics instead.
        return new Response(renderPrometheus(verdict, figures), {
          status: 200,
          headers: { 'Content-Type': 'application/openmetrics-text; version=1.0.0; charset=utf-8' },
        });
      }
      if (!operations) return json(status, { ...verdict, stats: figures });
      if (operations.error) {
        // The dashboard's extras never cost the verdict: it says they are unavailable.
        ctx.log.error({ code: operations.error.code }, 'profile_operations_stats unavailable');
        return json(status, { ...verdict, stats: figures, operations: null });
      }
      return json(status, {
        ...verdict,
        stats: figures,
        operations: rpcResult('profile_operations_stats', operations.data),
      });
    },
  );
}
