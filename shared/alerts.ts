// Alert delivery. evaluate_alerts() decides in SQL which alerts started or cleared and writes
// each transition to an outbox; this module leases due deliveries, posts each one's message
// (Slack-compatible JSON built in SQL, so a Slack incoming webhook works as is) to the alert
// webhook, and records each result: a failed delivery is logged, stays visible in the outbox,
// and is retried later. Where pg_net is installed, run_self_repair() posts the same outbox.
import type { Logger } from './logger.ts';
import { isTransient, retry, RetryExhausted, type RetryPolicy } from './retry.ts';
import type { AlertDelivery } from './rpc-results.ts';
import { rpcOnce, rpcResult } from './rpc.ts';
import type { SupabaseClient } from './supabase-client.ts';

// Deliveries leased per call, and how long a lease keeps others (pg_net, another instance) off
// them: longer than one webhook post with its retries.
const CLAIM_LIMIT = 20;
const DELIVERY_LEASE_SECONDS = 60;
// One webhook post without a caller's own timeout (the reconciler's): a chat webhook answers
// within a second, and even with its retries the post stays well inside the lease above.
const POST_TIMEOUT_MS = 5_000;

interface AlertDeps {
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

async function post(deps: AlertDeps, delivery: AlertDelivery): Promise<void> {
  const fetchImpl = deps.fetch ?? fetch;
  await retry(
    async () => {
      const response = await fetchImpl(deps.webhookUrl!, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(delivery.message),
        signal: AbortSignal.timeout(deps.timeoutMs ?? POST_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (!response.ok) {
        throw Object.assign(new Error(`alert webhook answered ${response.status}`), {
          status: response.status,
        });
      }
    },
    deps.retry,
    // A receiver that rate-limits us (429) is worth retrying too.
    {
      isRetryable: (e) => isTransient(e) || (e as { status?: number }).status === 429,
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
    },
  );
}

/** Stores a delivery's result; if that fails the lease runs out and the alert is sent again, so say so. */
async function record(
  deps: AlertDeps,
  delivery: AlertDelivery,
  delivered: boolean,
  message?: string,
): Promise<void> {
  const { error } = await deps.supabase.rpc('alert_delivery_result', {
    p_id: delivery.id,
    p_delivered: delivered,
    ...(message !== undefined ? { p_error: message } : {}),
  });
  if (error) {
    deps.log.error(
      { alert: delivery.alert, delivered, code: error.code },
      'could not record the alert delivery; it may be sent again',
    );
  }
}

/** Delivers every due alert transition; never throws for a delivery failure. */
export async function deliverPendingAlerts(
  deps: AlertDeps,
): Promise<{ delivered: number; failed: number }> {
  let delivered = 0;
  let failed = 0;
  if (!deps.webhookUrl) return { delivered, failed };
  const { data, error } = await rpcOnce(deps.supabase, 'alert_deliveries_claim', {
    p_limit: CLAIM_LIMIT,
    p_lease_seconds: DELIVERY_LEASE_SECONDS,
  });
  if (error) {
    deps.log.error({ code: error.code }, 'could not claim alert deliveries');
    return { delivered, failed };
  }
  for (const delivery of rpcResult('alert_deliveries_claim', data)) {
    try {
      await post(deps, delivery);
      delivered++;
      deps.log.info(
        { alert: delivery.alert, state: delivery.state, attempt: delivery.attempt },
        'alert delivered',
      );
      await record(deps, delivery, true);
    } catch (error) {
      failed++;
      const cause = error instanceof RetryExhausted ? error.lastError : error;
      const message = cause instanceof Error ? cause.message : String(cause);
      deps.log.error({
        alert: delivery.alert,
        state: delivery.state,
        attempt: delivery.attempt,
        err: message,
      }, 'alert delivery failed');
      await record(deps, delivery, false, message);
    }
  }
  return { delivered, failed };
}

/** evaluate_alerts() then deliver whatever is due (new transitions and earlier failures). */
export async function evaluateAndDeliverAlerts(deps: AlertDeps): Promise<AlertRun> {
  const { data, error } = await rpcOnce(deps.supabase, 'evaluate_alerts', {});
  if (error) {
    deps.log.error({ code: error.code }, 'could not evaluate alerts');
    return {
      status: null,
      transitions: [],
      delivered: 0,
      failed: 0,
      undelivered: !deps.webhookUrl,
    };
  }
  const evaluation = rpcResult('evaluate_alerts', data);
  for (const t of evaluation.transitions) {
    deps.log.warn({ alert: t.name, state: t.state }, 'alert transition');
  }
  const { delivered, failed } = await deliverPendingAlerts(deps);
  return {
    status: evaluation.status,
    transitions: evaluation.transitions,
    delivered,
    failed,
    undelivered: !deps.webhookUrl,
  };
}
