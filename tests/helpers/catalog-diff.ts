// The differences between two catalog descriptions (tests/helpers/catalog.ts), written for a
// reviewer: an object on one side only is listed whole, and an object described differently on
// both sides (a function body, an ACL, a constraint's NOT VALID) shows only the lines that
// differ, with a little context, as a unified diff does.
import type { CatalogEntry } from './catalog.ts';

const CONTEXT = 2;

function byKey(entries: readonly CatalogEntry[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const { key, text } of entries) {
    map.set(key, map.has(key) ? `${map.get(key)}\n${text}` : text);
  }
  return map;
}

type Op = { kind: ' ' | '-' | '+'; line: string };

/** Line diff by longest common subsequence; descriptions are short (a function at most). */
function diffLines(a: string[], b: string[]): Op[] {
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j]
        ? lcs[i + 1]![j + 1]! + 1
        : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]! });
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      ops.push({ kind: '-', line: a[i]! });
      i++;
    } else {
      ops.push({ kind: '+', line: b[j]! });
      j++;
    }
  }
  return ops;
}

/** The changed lines of one object, each hunk headed by its line numbers on both sides. */
function hunks(ops: Op[]): string[] {
  const out: string[] = [];
  const changed = ops.map((op) => op.kind !== ' ');
  let index = 0;
  while (index < ops.length) {
    if (!changed[index]) {
      index++;
      continue;
    }
    const start = Math.max(0, index - CONTEXT);
    let end = index;
    // Extend while the next change is within twice the context.
    while (end < ops.length) {
      let next = end + 1;
      while (next < ops.length && !changed[next]) next++;
      if (next < ops.length && next - end <= 2 * CONTEXT) end = next;
      else break;
    }
    const stop = Math.min(ops.length, end + CONTEXT + 1);
    const lineA = ops.slice(0, start).filter((op) => op.kind !== '+').length + 1;
    const lineB = ops.slice(0, start).filter((op) => op.kind !== '-').length + 1;
    out.push(`  @@ line ${lineA} / line ${lineB} @@`);
    for (const op of ops.slice(start, stop)) out.push(`  ${op.kind} ${op.line}`);
    index = stop;
  }
  return out;
}

/**
 * '' when both sides describe the same objects alike; otherwise every difference, `-` for the
 * `expected` side and `+` for the `actual` side, named in the first line.
 */
export function diffCatalogs(
  expected: readonly CatalogEntry[],
  actual: readonly CatalogEntry[],
  labels: { expected: string; actual: string },
): string {
  const a = byKey(expected);
  const b = byKey(actual);
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: string[] = [];
  for (const key of keys) {
    const left = a.get(key);
    const right = b.get(key);
    if (left === right) continue;
    if (right === undefined) {
      out.push(`- ${key}`, ...(left ? left.split('\n').map((line) => `-   ${line}`) : []));
    } else if (left === undefined) {
      out.push(`+ ${key}`, ...(right ? right.split('\n').map((line) => `+   ${line}`) : []));
    } else {
      out.push(`~ ${key}`, ...hunks(diffLines(left.split('\n'), right.split('\n'))));
    }
  }
  if (out.length === 0) return '';
  return [`--- ${labels.expected}`, `+++ ${labels.actual}`, ...out].join('\n') + '\n';
}
