/**
 * The answers to confirmable requests, kept so that a duplicate (a retransmission whose answer was lost)
 * gets the same answer again instead of being handled twice (RFC 7252 §4.5). An answer may be pending:
 * an ack's 2.04 waits for its durable commit, and a duplicate meanwhile gets nothing. Bounded: past
 * MAX entries the oldest tenth goes, expired or not.
 */

/** RFC 7252 EXCHANGE_LIFETIME: how long an answer is kept. */
export const ANSWER_LIFETIME_MS = 247_000;
const MAX = 20_000;

export class AnswerCache {
  private readonly answers = new Map<string, { bytes: Buffer | null; readonly at: number }>();

  /** The kept answer for `key`: its bytes, null while pending, undefined when there is none (or it expired). */
  lookup(key: string): Buffer | null | undefined {
    const prior = this.answers.get(key);
    return prior && Date.now() - prior.at < ANSWER_LIFETIME_MS ? prior.bytes : undefined;
  }

  /** Keeps `bytes` as the answer to `key` (null: pending); fills in a pending answer. */
  remember(key: string, bytes: Buffer | null): void {
    const pending = this.answers.get(key);
    if (pending && pending.bytes === null && bytes !== null) {
      pending.bytes = bytes;
      return;
    }
    if (this.answers.size >= MAX) {
      // Oldest first (a Map keeps insertion order).
      let drop = Math.ceil(MAX / 10);
      for (const k of this.answers.keys()) {
        if (drop-- <= 0) break;
        this.answers.delete(k);
      }
    }
    this.answers.delete(key);
    this.answers.set(key, { bytes, at: Date.now() });
  }
}
