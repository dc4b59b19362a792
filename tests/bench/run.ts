// `npm run bench [-- signup signup-instructions backfill http health census cold-start adoption]`: runs the benchmarks (all by default), each
// naive baseline and ours in the same run, prints the result tables as Markdown on stdout and
// writes everything measured to .data/bench/results-<time>.json. Timings never fail the run.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { adoptionBench } from './adoption.ts';
import { backfillBench } from './backfill.ts';
import { censusBench } from './census.ts';
import { coldStartBench } from './cold-start.ts';
import { healthBench } from './health.ts';
import { httpBench } from './http.ts';
import { log, machine, markdownTable, type ResultRow } from './lib.ts';
import { signupInstructionsBench } from './signup-instructions.ts';
import { signupBench } from './signup.ts';

type Bench = () => Promise<{ rows: ResultRow[]; details: Record<string, unknown> }>;
const BENCHES: Record<string, Bench> = {
  signup: signupBench,
  'signup-instructions': signupInstructionsBench,
  backfill: backfillBench,
  http: httpBench,
  health: healthBench,
  census: censusBench,
  'cold-start': coldStartBench,
  adoption: adoptionBench,
};

async function main(): Promise<void> {
  const asked = process.argv.slice(2).filter((a) => a !== '--');
  const unknown = asked.filter((name) => !(name in BENCHES));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown benchmark(s): ${unknown.join(', ')}; choose from ${
        Object.keys(BENCHES).join(', ')
      }\n`,
    );
    process.exit(2);
  }
  const names = asked.length > 0 ? asked : Object.keys(BENCHES);
  const started = Date.now();
  const report: Record<string, unknown> = {
    started_at: new Date(started).toISOString(),
    machine: machine(),
    benchmarks: {},
  };
  const rows: ResultRow[] = [];
  for (const name of names) {
    const t0 = Date.now();
    log(`== ${name}`);
    const result = await BENCHES[name]!();
    rows.push(...result.rows);
    (report.benchmarks as Record<string, unknown>)[name] = {
      seconds: Math.round((Date.now() - t0) / 1000),
      ...result.details,
    };
    log(`== ${name} done in ${Math.round((Date.now() - t0) / 1000)} s`);
    process.stdout.write(`\n### ${name}\n\n${markdownTable(result.rows)}\n`);
  }
  report.seconds = Math.round((Date.now() - started) / 1000);
  report.rows = rows;
  const dir = path.join('.data', 'bench');
  await mkdir(dir, { recursive: true });
  const file = path.join(
    dir,
    `results-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`,
  );
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `\n### all\n\n${markdownTable(rows)}\n\ntotal ${report.seconds} s; details in ${file}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
