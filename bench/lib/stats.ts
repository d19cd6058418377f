/** Small statistics helpers for the benchmarks: exact percentiles and Prometheus histogram diffs. */

export interface Summary {
  readonly n: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly min: number;
}

/** Nearest-rank percentile of an ascending array (`p` in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

/** p50/p90/p99/max of samples, rounded to `digits` decimals. */
export function summarize(samples: ArrayLike<number>, digits = 3): Summary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const r = (v: number): number => round(v, digits);
  return {
    n: sorted.length,
    mean: r(sorted.length > 0 ? sum / sorted.length : Number.NaN),
    p50: r(percentile(sorted, 50)),
    p90: r(percentile(sorted, 90)),
    p99: r(percentile(sorted, 99)),
    max: r(sorted.length > 0 ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN),
    min: r(sorted.length > 0 ? (sorted[0] ?? Number.NaN) : Number.NaN),
  };
}

export function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function median(values: readonly number[]): number {
  return percentile(Float64Array.from(values).sort(), 50);
}

/** One Prometheus histogram as scraped: cumulative bucket counts by upper bound, sum and count. */
export interface PromHistogram {
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
  readonly sum: number;
  readonly count: number;
}

/** Extracts a histogram (no labels other than `le`) from Prometheus text exposition. */
export function parsePromHistogram(text: string, name: string): PromHistogram | undefined {
  const buckets: Array<{ le: number; count: number }> = [];
  let sum = Number.NaN;
  let count = Number.NaN;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_bucket{`)) {
      const m = /le="([^"]+)"\}\s+(\S+)/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) buckets.push({ le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), count: Number(m[2]) });
    } else if (line.startsWith(`${name}_sum `)) {
      sum = Number(line.slice(name.length + 5));
    } else if (line.startsWith(`${name}_count `)) {
      count = Number(line.slice(name.length + 7));
    }
  }
  if (buckets.length === 0) return undefined;
  buckets.sort((a, b) => a.le - b.le);
  return { buckets, sum, count };
}

/** A counter's value for one label set, e.g. `henge_writes_total{result="ok"}`. */
export function parsePromValue(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

/** What was observed between two scrapes of the same histogram. */
export function diffHistogram(before: PromHistogram, after: PromHistogram): PromHistogram {
  return {
    buckets: after.buckets.map((b, i) => ({ le: b.le, count: b.count - (before.buckets[i]?.count ?? 0) })),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/**
 * Quantile by linear interpolation inside the bucket that holds it, as Prometheus' histogram_quantile
 * does. The true value lies somewhere in that bucket; the bucket bounds are reported beside it.
 */
export function histogramQuantile(h: PromHistogram, q: number): { value: number; bucket: [number, number] } {
  const total = h.buckets[h.buckets.length - 1]?.count ?? 0;
  if (total === 0) return { value: Number.NaN, bucket: [Number.NaN, Number.NaN] };
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of h.buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return { value: prevLe, bucket: [prevLe, b.le] };
      const inBucket = b.count - prevCount;
      const value = inBucket > 0 ? prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket : b.le;
      return { value, bucket: [prevLe, b.le] };
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return { value: prevLe, bucket: [prevLe, Number.POSITIVE_INFINITY] };
}
