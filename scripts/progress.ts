// Backfill progress. On a terminal: a cli-progress bar on stderr (users scanned, created, rate,
// ETA) redrawn in place. Elsewhere (CI, a pipe, a log file): one plain line every few batches, so
// a log shows the run moving without a line per batch.
import cliProgress from 'cli-progress';
import { formatDuration } from './cli.ts';

export interface ProgressState {
  /** Users scanned by the whole run (a resumed run starts from the checkpoint's count). */
  scanned: number;
  missing: number;
  created: number;
  failed: number;
  /** Users scanned by this process, and since when: the rate. */
  scannedHere: number;
  startedAt: number;
  batches: number;
}

export interface Progress {
  update(state: ProgressState): void;
  /** Ends the display; later updates are ignored. */
  stop(): void;
}

/** Users per second scanned by this process. */
export function rate(
  state: Pick<ProgressState, 'scannedHere' | 'startedAt'>,
  now = Date.now(),
): number {
  const seconds = (now - state.startedAt) / 1000;
  return seconds > 0 ? state.scannedHere / seconds : 0;
}

function eta(state: ProgressState, total: number | null): string {
  const perSecond = rate(state);
  if (total === null || perSecond === 0) return 'unknown';
  return formatDuration((Math.max(0, total - state.scanned) / perSecond) * 1000);
}

// The ETA follows the last 20 updates (batches): one slow batch does not swing it, and a lasting
// change of speed shows within a minute or so of batches.
const ETA_BATCHES = 20;
// Redraws per second: smooth to the eye, and cheap on a slow terminal or over SSH.
const REDRAWS_PER_SECOND = 5;

export function barProgress(
  total: number | null,
  initial: ProgressState,
  dryRun: boolean,
): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format:
        `{bar} {percentage}% | {value}/{total} users scanned | {missing} missing | {created} ${
          dryRun ? 'would be created' : 'created'
        } | {failed} failed | {rate} users/s | ETA {eta_text}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: ETA_BATCHES,
      fps: REDRAWS_PER_SECOND,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (state: ProgressState) => ({
    missing: state.missing,
    created: dryRun ? state.missing : state.created,
    failed: state.failed,
    rate: Math.round(rate(state)),
    eta_text: eta(state, total),
  });
  bar.start(Math.max(total ?? 0, initial.scanned, 1), initial.scanned, payload(initial));
  let stopped = false;
  return {
    update(state) {
      if (stopped) return;
      if (state.scanned > bar.getTotal()) bar.setTotal(state.scanned);
      bar.update(state.scanned, payload(state));
    },
    // Idempotent: Ctrl-C stops the bar before saying anything, so lines are not drawn over.
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

/** One line every `every` batches to write (stdout, or stderr under --json). */
export function lineProgress(
  total: number | null,
  every: number,
  write: (line: string) => void,
): Progress {
  return {
    update(state) {
      if (state.batches % every !== 0) return;
      const of = total === null
        ? ''
        : `/${total} (${
          total === 0 ? 100 : Math.min(100, Math.floor((state.scanned / total) * 100))
        }%)`;
      write(
        `progress: ${state.scanned}${of} users scanned, missing ${state.missing}, created ${state.created}, failed ${state.failed}, ` +
          `${Math.round(rate(state))} users/s, ETA ${eta(state, total)}`,
      );
    },
    stop() {},
  };
}
