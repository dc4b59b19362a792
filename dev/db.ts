// `npm run db`: a local PostgreSQL 17 with the Supabase bootstrap and every migration applied.
// Data is kept in .data/postgres (git-ignored; see localDataDir for root), so a restart finds it and applies only the
// migrations it has not seen. Ctrl-C stops the server and exits.
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { migrateDatabase } from './migrate.ts';
import { localDataDir, startEmbeddedCluster } from './postgres.ts';

// The Supabase CLI's local database port.
const DEFAULT_PORT = 54322;
const USAGE = `usage: npm run db -- [--port N] [--data-dir DIR]

  --port N        port to listen on, on 127.0.0.1 (default ${DEFAULT_PORT})
  --data-dir DIR  where the cluster keeps its files (default .data/postgres; as root in a folder
                  the postgres user cannot enter, /var/tmp/supabase-profile-guard/data-<id>)`;

function parseOptions(argv: string[]): { port: number; dataDir: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`--port must be a port number, got ${values.port}`);
  }
  return { port, dataDir: values['data-dir'] ? path.resolve(values['data-dir']) : localDataDir() };
}

async function main(): Promise<void> {
  let options: { port: number; dataDir: string };
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }

  const cluster = await startEmbeddedCluster({
    dataDir: options.dataDir,
    persistent: true,
    port: options.port,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping PostgreSQL (data kept in ${options.dataDir})`);
    await cluster.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  try {
    const applied = await migrateDatabase(cluster.url, { log: (line) => console.log(line) });
    // Log in as `postgres`, the role Supabase gives you: local-only password, as the Supabase CLI.
    const client = new pg.Client({ connectionString: cluster.url });
    await client.connect();
    await client.query(`alter role postgres with password 'postgres'`);
    await client.end();
    console.log(`${applied.length} migration(s) applied`);
  } catch (error) {
    console.error(`could not prepare the database: ${(error as Error).message}`);
    await cluster.stop();
    process.exit(1);
  }

  console.log(`PostgreSQL data: ${options.dataDir}`);
  console.log(`DB URL: postgresql://postgres:postgres@127.0.0.1:${cluster.port}/postgres`);
  console.log('Ready. Press Ctrl-C to stop.');
}

main().catch((error: unknown) => {
  console.error(`npm run db failed: ${(error as Error).message}`);
  process.exit(1);
});
