// Latency samples, kept exactly (a benchmark of a few seconds records at most a few
// million, 8 bytes each), with quantiles by sorting once at the end.

/** Most samples one recorder keeps (64 MiB of float64); later ones are counted, not kept. */
const MAX_SAMPLES = 8 * 1024 * 1024;

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export class Latencies {
  private samples = new Float64Array(1024);
  private n = 0;
  /** Samples beyond MAX_SAMPLES: counted in `count`, left out of the quantiles. */
  private dropped = 0;

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    if (this.n === this.samples.length) {
      if (this.n >= MAX_SAMPLES) {
        this.dropped++;
        return;
      }
      const bigger = new Float64Array(Math.min(MAX_SAMPLES, this.n * 2));
      bigger.set(this.samples);
      this.samples = bigger;
    }
    this.samples[this.n++] = ms;
  }

  get count(): number {
    return this.n + this.dropped;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.n).sort();
    let sum = 0;
    for (let i = 0; i < sorted.length; i++) sum += sorted[i]!;
    return {
      count: this.count,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      p999: quantile(sorted, 0.999),
      max: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
      mean: sorted.length > 0 ? sum / sorted.length : Number.NaN,
    };
  }
}

/**
 * The q-quantile of ascending `sorted` by the nearest-rank method: the smallest sample
 * with at least q of all samples at or below it: rank ceil(q × n), 1-based (p99.9 of 1000
 * samples is rank 999, sorted[998], the second largest).
 */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}
