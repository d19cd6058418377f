/** Progress for long steps goes to stderr, so stdout keeps only the method, the summary and the JSON line. */
import { performance } from 'node:perf_hooks';

const t0 = performance.now();

export function progress(part: string, message: string): void {
  const s = ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${s}s] ${part}: ${message}\n`);
}

/** Calls `progress` at most every `everyMs`, for loops that report often. */
export function throttled(part: string, everyMs = 2000): (message: () => string, force?: boolean) => void {
  let last = 0;
  return (message, force = false) => {
    const now = performance.now();
    if (!force && now - last < everyMs) return;
    last = now;
    progress(part, message());
  };
}

export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
