// `npm start`: the whole product locally. Prints what `supabase status` prints and a curl that
// registers a user; Ctrl-C stops every process it started.
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import type { SelfRepairSchedule } from './scheduler.ts';
import { startStack } from './stack.ts';

const USAGE = `usage: npm start -- [--port N] [--db-port N] [--data-dir DIR] [--confirm-email]

  --port N         API port on 127.0.0.1 (default 54321)
  --db-port N      PostgreSQL port on 127.0.0.1 (default 54322)
  --data-dir DIR   where PostgreSQL keeps its files (default .data/postgres; as root in a folder
                   the postgres user cannot enter, /var/tmp/supabase-profile-guard/data-<id>)
  --confirm-email  require email confirmation (the confirmation link is printed here)

Environment: LOCAL_JWT_SECRET (≥ 32 characters) and LOCAL_SIGNING_JWK (a private ES256 JWK with
a kid) replace the fixed local keys.`;

function port(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`${flag} must be a port number, got ${value}`);
  }
  return n;
}

/** What a hosted project's pg_cron job does, done here by the local scheduler. */
function describeSelfRepair(schedule: SelfRepairSchedule | null): string {
  if (!schedule) return 'not running';
  if (!schedule.enabled) return 'switched off (private.settings.self_repair_enabled)';
  return `select public.run_self_repair() every ${schedule.period_seconds} s ` +
    `(local stand-in for the pg_cron job profile-self-repair, '${schedule.schedule}')`;
}

interface TickRun {
  reconcile: {
    ran: boolean;
    queue?: { repaired: number };
    sweep?: { created: number };
    missing_profiles?: number;
    queued?: number;
  };
  alerts: { status: string; transitions: Array<{ name: string; state: string }> };
}

/** A line for a tick that did something (repaired, alerted, failed); quiet ticks print nothing. */
function describeTick(
  tick: { run: unknown; delivered: number; failed: number } | { error: string },
): string | null {
  if ('error' in tick) return `[self-repair] tick failed: ${tick.error}`;
  const run = tick.run as TickRun;
  const repaired = (run.reconcile.queue?.repaired ?? 0) + (run.reconcile.sweep?.created ?? 0);
  const transitions = run.alerts.transitions.map((t) => `${t.name} ${t.state}`);
  if (repaired === 0 && transitions.length === 0 && tick.failed === 0) return null;
  return `[self-repair] ${repaired} profile(s) repaired; ${
    run.reconcile.missing_profiles ?? 0
  } missing, ` +
    `${run.reconcile.queued ?? 0} queued; status ${run.alerts.status}` +
    (transitions.length > 0
      ? `; alerts: ${transitions.join(', ')} (${tick.delivered} delivered, ${tick.failed} failed)`
      : '');
}

async function main(): Promise<void> {
  let options;
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        port: { type: 'string' },
        'db-port': { type: 'string' },
        'data-dir': { type: 'string' },
        'confirm-email': { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
    if (values.help) {
      console.log(USAGE);
      return;
    }
    options = {
      port: port(values.port, 54321, '--port'),
      dbPort: port(values['db-port'], 54322, '--db-port'),
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      autoconfirm: !values['confirm-email'],
    };
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }

  // The local keys are fixed so they survive restarts; a team can pick its own.
  const jwtSecret = process.env.LOCAL_JWT_SECRET;
  const signingKey = process.env.LOCAL_SIGNING_JWK;
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    console.error('LOCAL_JWT_SECRET must be at least 32 characters');
    process.exit(2);
  }
  const stack = await startStack({
    ...options,
    selfRepair: {
      onTick: (tick) => {
        const line = describeTick(tick);
        if (line) console.log(line);
      },
    },
    ...(jwtSecret ? { jwtSecret } : {}),
    ...(signingKey ? { signingKey: JSON.parse(signingKey) as JWK } : {}),
  });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the local stack`);
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const body = JSON.stringify({
    email: 'ada@example.com',
    password: 'correct-horse-battery',
    full_name: 'Ada Lovelace',
  });
  console.log(`
Started the local stack.

         API URL: ${stack.apiUrl}
   Functions URL: ${stack.apiUrl}/functions/v1
          DB URL: ${stack.dbUrl.replace(/^postgres:/, 'postgresql:')}
        anon key: ${stack.keys.anonKey}
service_role key: ${stack.keys.serviceRoleKey}
 publishable key: ${stack.keys.publishableKey}
      secret key: ${stack.keys.secretKey}
    health token: ${stack.functionSecrets.PROFILE_HEALTH_TOKEN}
     self-repair: ${describeSelfRepair(stack.selfRepair())}

Register a user:

curl -i -X POST '${stack.apiUrl}/functions/v1/register' \\
  -H 'Content-Type: application/json' \\
  -H 'apikey: ${stack.keys.anonKey}' \\
  -d '${body}'

Press Ctrl-C to stop.`);
}

main().catch((error: unknown) => {
  console.error(`npm start failed: ${(error as Error).message}`);
  process.exit(1);
});
