// `npm run dashboard -- --functions-url https://<ref>.supabase.co/functions/v1`: the operator
// dashboard of a hosted project, served on 127.0.0.1 (scripts/dashboard-server.ts says why and
// how) until Ctrl-C. It takes no secret: the health token goes into the page's URL fragment.
import { CliExit, displayUrl, EXIT, onInterrupt, runMain, scrub } from './cli.ts';
import { parseDashboardOptions, USAGE } from './dashboard-options.ts';
import { startDashboardServer } from './dashboard-server.ts';

async function main(): Promise<number> {
  const options = parseDashboardOptions(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const server = await startDashboardServer({
    functionsUrl: options.functionsUrl,
    port: options.port,
    log: (line) => process.stderr.write(`${scrub(line)}\n`),
  }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE') {
      throw new CliExit(
        EXIT.failed,
        `port ${options.port} on 127.0.0.1 is taken: choose another with --port`,
      );
    }
    throw error;
  });

  let stopped!: () => void;
  const interrupted = new Promise<void>((resolve) => (stopped = resolve));
  const removeInterrupt = onInterrupt(stopped, () => process.exit(EXIT.interrupted));
  try {
    process.stderr.write(
      `relaying the dashboard's requests to ${displayUrl(options.functionsUrl)}/profile-health\n`,
    );
    // A placeholder, never a token: this process is never given one.
    process.stdout.write(`open ${server.url}#token=<your PROFILE_HEALTH_TOKEN>\n`);
    process.stderr.write('Ctrl-C stops it.\n');
    await interrupted;
    await server.close();
  } finally {
    removeInterrupt();
  }
  process.stderr.write('stopped\n');
  return EXIT.ok;
}

runMain('dashboard', USAGE, main);
