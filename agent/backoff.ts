/**
 * Exponential backoff with full jitter (each delay is uniform in [0, min(cap, base * 2^attempt)]), so that a
 * fleet that lost its hub at the same moment does not come back in lockstep.
 */

export interface BackoffOptions {
  /** First ceiling, ms. */
  readonly baseMs?: number;
  /** Largest ceiling, ms (`--backoff-max`). */
  readonly capMs: number;
  /** Uniform in [0, 1); Math.random by default. */
  readonly random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 500;

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly random: () => number;

  constructor(private readonly opts: BackoffOptions) {
    this.baseMs = opts.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.random = opts.random ?? Math.random;
    if (!(opts.capMs >= 0) || !(this.baseMs > 0)) throw new RangeError('backoff needs a cap >= 0 and a base > 0');
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The ceiling of the next delay, ms. */
  ceiling(): number {
    // 2^attempt overflows to Infinity for large attempts; min() keeps the cap.
    return Math.min(this.opts.capMs, this.baseMs * 2 ** Math.min(this.attempt, 1024));
  }

  /** The delay before the next attempt, ms; counts one failure. */
  next(): number {
    const delay = Math.floor(this.random() * this.ceiling());
    this.attempt++;
    return delay;
  }

  /** After a success: the next failure starts from the base again. */
  reset(): void {
    this.attempt = 0;
  }
}
