// Quorum arithmetic over small voter sets (3-7 members in practice).

/**
 * The largest value v such that at least `quorum` of values[0..n) are ≥ v: the commit index
 * when the values are match indexes, the confirmed read round when they are read rounds.
 * Sorts a copy in `scratch` (insertion sort, descending): n is tiny, and nothing is allocated.
 * Precondition: 1 ≤ quorum ≤ n ≤ scratch.length.
 */
export function quorumValue(values: Float64Array, n: number, quorum: number, scratch: Float64Array): number {
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    let j = i - 1;
    while (j >= 0 && scratch[j]! < v) {
      scratch[j + 1] = scratch[j]!;
      j--;
    }
    scratch[j + 1] = v;
  }
  return scratch[quorum - 1]!;
}
