/**
 * Device acks wait here for the end of the current I/O phase and are then recorded together: after a
 * fan-out thousands arrive within milliseconds, and one durable batch for every burst costs far less
 * than one commit each. Each ack is answered once its batch is durable (or refused).
 */
import type { DeviceAck } from '../domain/commands.ts';

/** The outcome of one ack: null once durable, else why it was refused. */
export type AckOutcome = Error | null;

/** Records a batch; resolves to one outcome per ack, in order, or rejects when the whole batch failed. */
export type RecordAcks = (acks: readonly DeviceAck[]) => Promise<ReadonlyArray<AckOutcome>>;

interface Pending {
  readonly ack: DeviceAck;
  readonly done: (outcome: AckOutcome) => void;
}

export class AckBatcher {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly record: RecordAcks) {}

  /** Queues an ack; `done` is called exactly once. */
  add(ack: DeviceAck, done: (outcome: AckOutcome) => void): void {
    this.pending.push({ ack, done });
    if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate runs after the poll phase: every datagram already readable joins this batch.
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    let recording: Promise<ReadonlyArray<AckOutcome>>;
    try {
      recording = this.record(batch.map((p) => p.ack));
    } catch (err) {
      recording = Promise.reject(err as Error);
    }
    recording.then(
      (outcomes) => {
        for (let i = 0; i < batch.length; i++) batch[i]?.done(outcomes[i] ?? null);
      },
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        for (const p of batch) p.done(e);
      },
    );
  }
}
