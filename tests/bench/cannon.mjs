// autocannon in its own process, so the load generator does not share the event loop of the
// stack it measures. Standard input is JSON: {url, connections, duration?, amount?, headers, method,
// mode: "get" | "ensure" | "register", ids?: string[] (ensure), prefix?: string (register)}.
// Prints one JSON line: requests/s, status counts and latency percentiles from every response.
import autocannon from 'autocannon';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const config = JSON.parse(input);
let counter = 0;
const latencies = [];
const statuses = {};
const failures = [];

function body() {
  const n = counter++;
  if (config.mode === 'ensure') {
    return JSON.stringify({
      user_id: config.ids[n % config.ids.length],
      ...(config.table ? { created_via: 'ensure' } : {}),
    });
  }
  if (config.mode === 'ensure-rpc') {
    return JSON.stringify({ p_user_id: config.ids[n % config.ids.length], p_source: 'ensure' });
  }
  if (config.mode === 'register') {
    return JSON.stringify({
      email: `${config.prefix}-${n}@example.test`,
      password: 'correct-horse-battery-staple',
      full_name: `Bench ${n}`,
    });
  }
  return undefined;
}

const instance = autocannon({
  url: config.url,
  connections: config.connections,
  ...(config.amount ? { amount: config.amount } : { duration: config.duration }),
  timeout: 30,
  requests: [{
    method: config.method ?? 'GET',
    headers: config.headers ?? {},
    setupRequest: (request) => {
      const b = body();
      return b === undefined ? request : { ...request, body: b };
    },
    onResponse: (status, responseBody) => {
      if (status >= 300 && failures.length < 3) {
        failures.push(`${status} ${String(responseBody).slice(0, 300)}`);
      }
    },
  }],
});
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  latencies.push(responseTime);
  statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
});
const r1 = (v) => (v === null ? null : Math.round(v * 10) / 10);
instance.on('done', (result) => {
  latencies.sort((a, b) => a - b);
  const pct = (p) =>
    latencies.length
      ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]
      : null;
  const seconds = result.duration;
  process.stdout.write(`${
    JSON.stringify({
      requests: latencies.length,
      seconds,
      rps: Math.round((latencies.length / seconds) * 10) / 10,
      p50: r1(pct(50)),
      p95: r1(pct(95)),
      p99: r1(pct(99)),
      max: r1(latencies[latencies.length - 1] ?? null),
      failures,
      statuses,
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      requests_built: counter,
    })
  }\n`);
});
