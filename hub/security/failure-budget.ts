/**
 * How many failures one address may make per minute; past that, what it tries is refused unchecked until its
 * minute is over. It counts failures, not requests: a client that gets it right is never slowed down,
 * whatever the load.
 *
 * - REST API: failed authentications (and authorizations) get 429 without being checked or audited, so
 *   guessing tokens is slow and cannot flood the log. Not `@fastify/rate-limit`: that plugin limits requests
 *   per route, so it misses the not-found handler (where authentication runs too, and 401 versus 404 would
 *   tell a guess apart), and it would count every request an address makes rather than its failures.
 * - coaps (hub/coap/dtls-transport.ts): failed DTLS handshakes (a wrong key, an unknown identity, a timeout);
 *   past the budget the address's ClientHellos are dropped before the cookie exchange.
 */
export class FailureBudget {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Ms until `address` may try again, or 0 when it still has failures left this minute. */
  waitMs(address: string): number {
    const w = this.windows.get(address);
    if (!w) return 0;
    const elapsed = this.now() - w.start;
    if (elapsed >= 60_000) {
      this.windows.delete(address);
      return 0;
    }
    return w.failures >= this.perMinute ? 60_000 - elapsed : 0;
  }

  /** Counts one failure of `address`. */
  fail(address: string): void {
    const t = this.now();
    const w = this.windows.get(address);
    if (!w || t - w.start >= 60_000) {
      if (this.windows.size >= 10_000) this.prune(t);
      this.windows.set(address, { start: t, failures: 1 });
    } else {
      w.failures++;
    }
  }

  private prune(t: number): void {
    for (const [a, w] of this.windows) if (t - w.start >= 60_000) this.windows.delete(a);
    // Still full: the oldest windows go (a Map keeps insertion order).
    for (const a of this.windows.keys()) {
      if (this.windows.size < 10_000) break;
      this.windows.delete(a);
    }
  }
}
