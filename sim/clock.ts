/**
 * One monotonic clock for every process on this machine: `process.hrtime` reads CLOCK_MONOTONIC, which
 * all processes share, so a time taken in the hub's process and one taken in the simulator's process can
 * be subtracted. `performance.now()` is the same clock shifted by this process's start, and cheaper to
 * read, so the offset is taken once.
 */
import { performance } from 'node:perf_hooks';

const OFFSET_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** Milliseconds on the machine-wide monotonic clock (fractional, sub-microsecond resolution). */
export function monoNow(): number {
  return performance.now() + OFFSET_MS;
}
