// `npm run example`: the example app (examples/app) on http://127.0.0.1:5173, against the local
// stack that `npm start` serves in another terminal. Its settings are the VITE_* variables of
// the environment, as in any Vite app (see examples/app/src/supabase.ts).
import { LOCAL_API_URL } from '../shared/local-stack.ts';
import { CliExit, EXIT, onInterrupt, runMain } from './cli.ts';
import { intFlag, parseFlags } from './cli-flags.ts';
import { serveExample } from './example-app.ts';

const DEFAULT_PORT = 5173;

const USAGE = `usage: npm run example -- [--port N]

Builds the supabase-profile-guard package (packages/profile-guard/dist), then serves the example
app with Vite on http://127.0.0.1:${DEFAULT_PORT} until Ctrl-C. Run \`npm start\` first: the app talks to
VITE_SUPABASE_URL (default ${LOCAL_API_URL}) with VITE_SUPABASE_PUBLISHABLE_KEY (default: the
local stack's). VITE_REGISTRATION_PATH=guarded|legacy and VITE_WHEN_REGISTRATION_DISABLED=message|legacy
choose the rollout switch.

  --port N   the port to serve on (default ${DEFAULT_PORT})
  --help     show this help`;

async function stackAnswers(url: string): Promise<boolean> {
  try {
    // Any answer will do: only a refused connection means the stack is not running.
    await fetch(`${url}/rest/v1/`, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const values = parseFlags(process.argv.slice(2), {
    port: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const port = intFlag('port', values.port, DEFAULT_PORT, 1, 65_535)!;
  const apiUrl = process.env.VITE_SUPABASE_URL ?? LOCAL_API_URL;
  if (!(await stackAnswers(apiUrl))) {
    process.stderr.write(
      `nothing answers on ${apiUrl}: start the stack with \`npm start\` first\n`,
    );
  }
  const server = await serveExample(port).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE' || /already in use/i.test(error.message)) {
      throw new CliExit(
        EXIT.failed,
        `port ${port} on 127.0.0.1 is taken: choose another with --port`,
      );
    }
    throw error;
  });
  process.stdout.write(`example app: http://127.0.0.1:${port}/ (API ${apiUrl})\n`);
  process.stderr.write('Ctrl-C stops it.\n');
  let stopped!: () => void;
  const interrupted = new Promise<void>((resolve) => (stopped = resolve));
  const removeInterrupt = onInterrupt(stopped, () => process.exit(EXIT.interrupted));
  try {
    await interrupted;
  } finally {
    removeInterrupt();
    await server.close();
  }
  return EXIT.ok;
}

runMain('example', USAGE, main);
