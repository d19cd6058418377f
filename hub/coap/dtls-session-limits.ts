/**
 * How many DTLS handshakes may run, in all and per IP address, and how many may fail per address: the
 * bookkeeping of the DTLS transport's admission checks (dtls-transport.ts), with no socket of its own.
 */
import { FailureBudget } from '../security/failure-budget.ts';

export const DEFAULT_MAX_HANDSHAKES = 256;
export const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS = 4;
export const DEFAULT_FAILED_HANDSHAKES_PER_MINUTE = 20;

export interface HandshakeLimitOptions {
  readonly maxHandshakes?: number;
  readonly maxHandshakesPerAddress?: number;
  readonly failedHandshakesPerMinute?: number;
}

export class HandshakeLimits {
  readonly max: number;
  readonly maxPerAddress: number;
  private readonly budget: FailureBudget;
  /** Handshakes in progress per IP address (any port); an address with none has no entry. */
  private readonly perAddress = new Map<string, number>();
  private total = 0;

  constructor(opts: HandshakeLimitOptions, now: () => number = Date.now) {
    this.max = opts.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES;
    this.maxPerAddress = opts.maxHandshakesPerAddress ?? DEFAULT_MAX_HANDSHAKES_PER_ADDRESS;
    this.budget = new FailureBudget(opts.failedHandshakesPerMinute ?? DEFAULT_FAILED_HANDSHAKES_PER_MINUTE, now);
  }

  /** Handshakes in progress. */
  get inProgress(): number {
    return this.total;
  }

  get full(): boolean {
    return this.total >= this.max;
  }

  /** The address failed too many handshakes this minute. */
  overBudget(address: string): boolean {
    return this.budget.waitMs(address) > 0;
  }

  /** The address has maxPerAddress handshakes in progress already. */
  addressFull(address: string): boolean {
    return (this.perAddress.get(address) ?? 0) >= this.maxPerAddress;
  }

  started(address: string): void {
    this.total++;
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
  }

  /** A handshake of `address` ended; a failed one counts against the address's budget. */
  ended(address: string, failed: boolean): void {
    this.total--;
    const n = (this.perAddress.get(address) ?? 0) - 1;
    if (n > 0) this.perAddress.set(address, n);
    else this.perAddress.delete(address);
    if (failed) this.budget.fail(address);
  }
}
