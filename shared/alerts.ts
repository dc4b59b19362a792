// Alert delivery. evaluate_alerts() decides in SQL which alerts started or cleared and writes
// each transition to an outbox; this module leases due deliveries, posts them to the alert
// webhook (Slack-compatible JSON, so a Slack incoming webhook works as is), and records each
// result: a failed delivery is logged, stays visible in the outbox, and is retried later.
import type { Logger } from './logger.ts';
import { isTransient, retry, RetryExhausted, type RetryPolicy } from './retry.ts';
import type { SupabaseClient } from './supabase-client.ts';

export interface AlertDelivery {
  id: number;
  alert: string;
  state: 'firing' | 'resolved';
  attempt: number;
  payload: { alert: string; state: string; status: string; value: unknown; threshold: unknown; at: string; message: string };
}

export interface AlertDeps {
  supabase: SupabaseClient;
  webhookUrl: string | undefined;
  log: Logger;
  retry: RetryPolicy;
  timeoutMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export interface AlertRun {
  status: string | null;
  transitions: Array<{ name: string; state: string }>;
  delivered: number;
  failed: number;
  /** True when no webhook is configured: transitions wait in the outbox. */
  undelivered: boolean;
}

/** The body Slack's incoming webhooks accept (text plus a mrkdwn block), also plain JSON for others. */
export function slackMessage(delivery: AlertDelivery): Record<string, unknown> {
  const icon = delivery.state === 'firing' ? ':rotating_light:' : ':white_check_mark:';
  const verb = delivery.state === 'firing' ? 'started' : 'cleared';
  const text = `${icon} Profile system alert *${delivery.alert}* ${verb} (status ${delivery.payload.status}): value ${JSON.stringify(delivery.payload.value)}, threshold ${JSON.stringify(delivery.payload.threshold)}`;
  return {
    text,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }],
    alert: delivery.payload,
  };
}

async function post(deps: AlertDeps, delivery: AlertDelivery): Promise<void> {
  const fetchImpl = deps.fetch ?? fetch;
  await retry(
    async () => {
      const response = await fetchImpl(deps.webhookUrl!, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(slackMessage(delivery)),
        signal: AbortSignal.timeout(deps.timeoutMs ?? 5000),
      });
      await response.body?.cancel();
      if (!response.ok) throw Object.assign(new Error(`alert webhook answered ${response.status}`), { status: response.status });
    },
    deps.retry,
    // A receiver that rate-limits us (429) is worth retrying too.
    { isRetryable: (e) => isTransient(e) || (e as { status?: number }).status === 429, ...(deps.sleep ? { sleep: deps.sleep } : {}) },
  );
}

/** Stores a delivery's result; if that fails the lease runs out and the alert is sent again, so say so. */
async function record(deps: AlertDeps, delivery: AlertDelivery, delivered: boolean, message?: string): Promise<void> {
  const { error } = await deps.supabase.rpc('alert_delivery_result', {
    p_id: delivery.id,
    p_delivered: delivered,
    ...(message !== undefined ? { p_error: message } : {}),
  });
  if (error) {
    deps.log.error({ alert: delivery.alert, delivered, code: error.code }, 'could not record the alert delivery; it may be sent again');
  }
}

/** Delivers every due alert transition; never throws for a delivery failure. */
export async function deliverPendingAlerts(deps: AlertDeps): Promise<{ delivered: number; failed: number }> {
  let delivered = 0;
  let failed = 0;
  if (!deps.webhookUrl) return { delivered, failed };
  const { data, error } = await deps.supabase.rpc('alert_deliveries_claim', { p_limit: 20, p_lease_seconds: 60 });
  if (error) {
    deps.log.error({ code: error.code }, 'could not claim alert deliveries');
    return { delivered, failed };
  }
  for (const delivery of data as AlertDelivery[]) {
    try {
      await post(deps, delivery);
      delivered++;
      deps.log.info({ alert: delivery.alert, state: delivery.state, attempt: delivery.attempt }, 'alert delivered');
      await record(deps, delivery, true);
    } catch (error) {
      failed++;
      const cause = error instanceof RetryExhausted ? error.lastError : error;
      const message = cause instanceof Error ? cause.message : String(cause);
      deps.log.error({ alert: delivery.alert, state: delivery.state, attempt: delivery.attempt, err: message }, 'alert delivery failed');
      await record(deps, delivery, false, message);
    }
  }
  return { delivered, failed };
}

/** evaluate_alerts() then deliver whatever is due (new transitions and earlier failures). */
export async function evaluateAndDeliverAlerts(deps: AlertDeps): Promise<AlertRun> {
  const { data, error } = await deps.supabase.rpc('evaluate_alerts');
  if (error) {
    deps.log.error({ code: error.code }, 'could not evaluate alerts');
    return { status: null, transitions: [], delivered: 0, failed: 0, undelivered: !deps.webhookUrl };
  }
  const evaluation = data as { status: string; transitions: Array<{ name: string; state: string }> };
  for (const t of evaluation.transitions) deps.log.warn({ alert: t.name, state: t.state }, 'alert transition');
  const { delivered, failed } = await deliverPendingAlerts(deps);
  return { status: evaluation.status, transitions: evaluation.transitions, delivered, failed, undelivered: !deps.webhookUrl };
}
