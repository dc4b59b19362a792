// Child processes of the local stack (Deno workers, PostgreSQL) must not outlive it. stop()
// ends them, but a process that dies without calling it (a crashed test worker, kill -9) would
// leave them running for good, so each runs under a small sh guard that holds the read end of a
// pipe whose write end only this process has: when it closes, this process is gone and the
// guard signals its child.
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';

/**
 * $1: the command; $2: the signal sent when the owner is gone. A signal sent to the guard
 * (stop()) is passed on as itself: PostgreSQL reads SIGINT as a fast shutdown and SIGTERM as one
 * that waits for every client.
 */
const GUARD = [
  'cmd="$1"; lost="$2"; shift 2',
  'exec 3<&0',
  '"$cmd" "$@" </dev/null 3<&- &',
  'child=$!',
  "trap 'kill -TERM $child 2>/dev/null' TERM",
  "trap 'kill -INT $child 2>/dev/null' INT",
  // Explicit redirection: without job control a background list's stdin would be /dev/null.
  '(read -r _ <&3; kill -"$lost" $child 2>/dev/null) &',
  'watch=$!',
  'exec 3<&-',
  'wait $child; code=$?',
  // A trapped signal ends the first wait early (status above 128) while the child still runs:
  // wait again for the child's own end and answer its code, not the interruption's.
  'if [ $code -gt 128 ]; then wait $child 2>/dev/null; again=$?; [ $again -ne 127 ] && code=$again; fi',
  'kill $watch 2>/dev/null',
  'exit $code',
].join('\n');

interface LifelineOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Shown as the guard's process name ($0). */
  name: string;
  /** What the child gets when this process is gone. Default TERM. */
  lostSignal?: 'TERM' | 'INT';
}

/** Spawns command under the guard; stdout and stderr are pipes, stdin is the lifeline. */
export function spawnWithLifeline(
  command: string,
  args: readonly string[],
  options: LifelineOptions,
): ChildProcess {
  const { name, lostSignal = 'TERM', ...spawnOptions } = options;
  // stdin is the guard's lifeline: never written, closed only when this process ends.
  return spawn('sh', ['-c', GUARD, name, command, lostSignal, ...args], {
    ...spawnOptions,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Ends child (SIGTERM, then SIGKILL if it lingers past 3 s) and resolves once it has exited. */
export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}
