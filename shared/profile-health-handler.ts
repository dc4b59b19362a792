// profile-health: for uptime monitors, 200 when profile_system_health() says ok and 503
// otherwise (or when the database cannot be reached), with a small public body. With the
// service key or the health token: every check and the stats; ?format=prometheus for scrapers.
import { bearerOf, constantTimeEqual, isServiceKey } from './caller-auth.ts';
import type { Config } from './config.ts';
import { AppError, unauthorized } from './errors.ts';
import { createHandler, json } from './http.ts';
import { createLogger, type Logger } from './logger.ts';
import type { SystemHealth, SystemStats } from './profile-contract.ts';
import { renderPrometheus } from './prometheus.ts';
import { createSupabaseClient, type SupabaseClient } from './supabase-client.ts';

export interface ProfileHealthDeps {
  config: Config;
  log?: Logger;
  supabase?: SupabaseClient;
}

const WINDOW = /^(\d{1,6})\s*(s|m|h|d)$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** ?window=15m → "900 seconds"; default 24 hours; at most 366 days. */
function windowOf(url: URL): string {
  const raw = url.searchParams.get('window');
  if (raw === null) return '86400 seconds';
  const match = WINDOW.exec(raw);
  const seconds = match ? Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS] : 0;
  if (seconds < 1 || seconds > 366 * 86400) {
    throw new AppError(400, 'validation_failed', 'window must look like 90s, 15m, 24h or 7d (at most 366d)', {
      fields: { window: 'must look like 90s, 15m, 24h or 7d (at most 366d)' },
    });
  }
  return `${seconds} seconds`;
}

export function createProfileHealthHandler(deps: ProfileHealthDeps): (request: Request) => Promise<Response> {
  const { config } = deps;
  const log = deps.log ?? createLogger({ level: config.logLevel, bindings: { function: 'profile-health' } });
  const supabase = deps.supabase ?? createSupabaseClient(config.supabaseUrl, config.serviceRoleKey);

  /**
   * Whether the caller may see every check. An app calling through supabase-js always sends its
   * anon or publishable key as the bearer: that is no credential, not a wrong one. The
   * x-health-token header wins over the bearer for the same reason.
   */
  function privileged(request: Request): boolean {
    const bearer = bearerOf(request);
    const token = request.headers.get('x-health-token') ?? (bearer !== null && !isServiceKey(bearer, config.publicKeys) ? bearer : null);
    if (!token) return false;
    const isHealthToken = config.healthToken !== undefined && constantTimeEqual(token, config.healthToken);
    if (isHealthToken || isServiceKey(token, config.serviceRoleKeys)) return true;
    throw unauthorized('The health token or service key is not valid');
  }

  return createHandler({ name: 'profile-health', methods: ['GET', 'HEAD'], log }, async (request, ctx) => {
    const url = new URL(request.url);
    const format = url.searchParams.get('format') ?? 'json';
    if (format !== 'json' && format !== 'prometheus') {
      throw new AppError(400, 'validation_failed', 'format must be json or prometheus', { fields: { format: 'must be json or prometheus' } });
    }
    const full = privileged(request);
    if (format === 'prometheus' && !full) throw unauthorized('Metrics need the health token or the service key');
    const window = full ? windowOf(url) : null;

    const health = await supabase.rpc('profile_system_health');
    if (health.error) {
      ctx.log.error({ code: health.error.code, status: health.status }, 'profile_system_health unavailable');
      return json(503, { status: 'down', checked_at: new Date().toISOString(), error: 'database_unreachable' });
    }
    const verdict = health.data as SystemHealth;
    const status = verdict.status === 'ok' ? 200 : 503;
    if (!full) return json(status, { status: verdict.status, checked_at: verdict.checked_at });

    const stats = await supabase.rpc('profile_system_stats', { p_window: window });
    if (stats.error) {
      ctx.log.error({ code: stats.error.code }, 'profile_system_stats unavailable');
      return json(503, { ...verdict, status: 'down', error: 'stats_unavailable' });
    }
    if (format === 'prometheus') {
      // Scrapers treat a non-200 as a failed scrape: the verdict is in the metrics instead.
      return new Response(renderPrometheus(verdict, stats.data as SystemStats), {
        status: 200,
        headers: { 'Content-Type': 'application/openmetrics-text; version=1.0.0; charset=utf-8' },
      });
    }
    return json(status, { ...verdict, stats: stats.data as SystemStats });
  });
}
