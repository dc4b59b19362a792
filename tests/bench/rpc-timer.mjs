// Preloaded into the backfill CLI by the backfill benchmark (NODE_OPTIONS=--import): times every
// RPC the CLI makes (one per batch) and samples the process's RSS, as JSON lines appended to
// $BENCH_RPC_LOG. Loaded by tsx's launcher too; lines carry the pid so the bench keeps the CLI's.
import { appendFileSync } from 'node:fs';

const file = process.env.BENCH_RPC_LOG;
if (file) {
  const write = (event) =>
    appendFileSync(file, `${JSON.stringify({ pid: process.pid, t: Date.now(), ...event })}\n`);
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const rpc = /\/rest\/v1\/rpc\/([a-z_]+)/.exec(url)?.[1];
    const started = performance.now();
    try {
      return await original(input, init);
    } finally {
      if (rpc) {
        write({
          rpc,
          ms: Math.round((performance.now() - started) * 10) / 10,
          rss: process.memoryUsage().rss,
        });
      }
    }
  };
  const timer = setInterval(() => write({ rss: process.memoryUsage().rss }), 250);
  timer.unref();
}
