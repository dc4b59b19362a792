// The flags of `npm run dashboard`, checked before anything is served: a bad one is a UsageError,
// which main() prints with the usage and exits 2 for.
import { UPSTREAM_TIMEOUT_MS } from './dashboard-server.ts';
import { intFlag, parseFlags, UsageError } from './cli-flags.ts';

const DEFAULT_PORT = 54330;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export const USAGE = `usage: npm run dashboard -- --functions-url URL [--port N]

Serves the profile-health dashboard of a hosted project on http://127.0.0.1 (Supabase shows an
Edge Function's HTML as plain text on *.supabase.co). The page fetches its figures from this
server, which relays only those requests, with the page's x-health-token, to URL/profile-health
(and waits at most ${UPSTREAM_TIMEOUT_MS / 1000} s for an answer). Open the URL it prints with your
PROFILE_HEALTH_TOKEN in place of the placeholder after #token= (the fragment never leaves the
browser), or without it and type the token into the page. Ctrl-C stops it.

  --functions-url URL  the project's functions URL, https://<project-ref>.supabase.co/functions/v1
                       (http:// only for this machine, e.g. http://127.0.0.1:54321/functions/v1)
  --port N             port on 127.0.0.1, 0-65535, 0 for any free one (default ${DEFAULT_PORT})
  --help               show this help

Exit status: 0 stopped with Ctrl-C; 1 could not serve (the port is taken…); 2 bad arguments.`;

interface DashboardOptions {
  help: boolean;
  functionsUrl: string;
  port: number;
}

/**
 * An http(s) URL without credentials, query or fragment; plain http only to this machine, since
 * the health token travels in it.
 */
function functionsUrlFlag(raw: string | undefined): string {
  if (raw === undefined || raw.trim() === '') throw new UsageError('--functions-url is required');
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new UsageError(
      `--functions-url must be an http(s) URL such as https://<project-ref>.supabase.co/functions/v1, got ${
        JSON.stringify(raw)
      }`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`--functions-url must be an http(s) URL, got a ${url.protocol} URL`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('--functions-url must not carry a user name or password');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new UsageError('--functions-url must not have a query or fragment');
  }
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    throw new UsageError(
      `--functions-url must use https:// for ${url.hostname}: the health token is sent to it`,
    );
  }
  return url.toString().replace(/\/+$/, '');
}

export function parseDashboardOptions(argv: string[]): DashboardOptions {
  const values = parseFlags(argv, {
    'functions-url': { type: 'string' },
    port: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help === true) return { help: true, functionsUrl: '', port: DEFAULT_PORT };
  return {
    help: false,
    functionsUrl: functionsUrlFlag(values['functions-url']),
    port: intFlag('port', values.port, DEFAULT_PORT, 0, 65_535)!,
  };
}
