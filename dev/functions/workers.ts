// One real Deno process per function, as Supabase's edge runtime gives each function its own
// worker: `deno run supabase/functions/<name>/index.ts` with the environment Supabase injects,
// listening on a private port (DENO_SERVE_ADDRESS sets where a bare Deno.serve() listens).
import type { ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { DENO, FUNCTION_PERMISSIONS, LOCAL_DENO_FLAGS } from '../deno.ts';
import { spawnWithLifeline, stopProcess } from '../lifeline.ts';
import { freePort } from '../postgres.ts';

export interface FunctionWorker {
  name: string;
  port: number;
  /** Null while running; the exit code or signal once the process has ended. */
  exited: () => string | null;
}

export interface WorkerPool {
  workers: Map<string, FunctionWorker>;
  stop(): Promise<void>;
}

interface WorkerOptions {
  root: string;
  env: Record<string, string>;
  log: (line: string) => void;
  /** How long a worker may take to listen before start-up fails. */
  bootTimeoutMs?: number;
}

export async function listFunctions(root: string): Promise<string[]> {
  const dir = path.join(root, 'supabase', 'functions');
  const entries = await readdir(dir, { withFileTypes: true });
  const names = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('_')) continue;
    if ((await readdir(path.join(dir, entry.name))).includes('index.ts')) names.push(entry.name);
  }
  return names.sort();
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function prefixLines(name: string, log: (line: string) => void) {
  let buffered = '';
  return (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) log(`[${name}] ${line}`);
  };
}

export async function startWorkers(options: WorkerOptions): Promise<WorkerPool> {
  const workers = new Map<string, FunctionWorker>();
  const children: ChildProcess[] = [];
  const pool: WorkerPool = {
    workers,
    async stop() {
      await Promise.all(children.map(stopProcess));
    },
  };

  try {
    for (const name of await listFunctions(options.root)) {
      const port = await freePort();
      const child = spawnWithLifeline(
        DENO,
        [
          'run',
          ...FUNCTION_PERMISSIONS,
          ...LOCAL_DENO_FLAGS,
          `supabase/functions/${name}/index.ts`,
        ],
        {
          name: `function-${name}`,
          cwd: options.root,
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '',
            DENO_NO_UPDATE_CHECK: '1',
            NO_COLOR: '1',
            ...options.env,
            DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
          },
        },
      );
      children.push(child);
      let exit: string | null = null;
      child.once('exit', (code, signal) => {
        exit = signal ?? String(code);
      });
      child.stdout?.on('data', prefixLines(name, options.log));
      child.stderr?.on('data', prefixLines(name, options.log));
      workers.set(name, { name, port, exited: () => exit });
    }
    const deadline = Date.now() + (options.bootTimeoutMs ?? 30_000);
    for (const worker of workers.values()) {
      while (!(await listening(worker.port))) {
        if (worker.exited() !== null) {
          throw new Error(`function ${worker.name} exited during boot (${worker.exited()})`);
        }
        if (Date.now() > deadline) {
          throw new Error(`function ${worker.name} did not start listening in time`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return pool;
  } catch (error) {
    await pool.stop();
    throw error;
  }
}
