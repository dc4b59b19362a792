// "Perhaps you meant …" hints. PostgREST uses a fuzzy set (minimum score 0.75 for names); a
// normalised Levenshtein similarity gives the same kind of suggestion for typos.
function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

function similarity(a: string, b: string): number {
  const longest = Math.max(a.length, b.length);
  return longest === 0 ? 1 : 1 - levenshtein(a.toLowerCase(), b.toLowerCase()) / longest;
}

/** The candidate most similar to `target`, if at least `minScore` similar (and not `target` itself). */
export function closest(
  target: string,
  candidates: Iterable<string>,
  minScore: number,
): string | null {
  let best: string | null = null;
  let bestScore = minScore;
  for (const candidate of candidates) {
    if (candidate === target) continue;
    const score = similarity(target, candidate);
    if (score > bestScore || (best === null && score >= minScore)) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}
