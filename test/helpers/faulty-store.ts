/**
 * Fault injection around the real LevelDB store (never a mock of it): writes can be held at a gate (a
 * disk that stops answering) and made to fail, reads of the views made to fail.
 */
import type { LevelStore } from '../../hub/store/level-store.ts';
import type { BatchOp, LogRange, Store } from '../../hub/store/store.ts';

export interface WriteRecord {
  readonly keys: readonly string[];
  done: boolean;
  failed: boolean;
}

export class FaultyStore implements Store {
  /** When set, write() throws this instead of writing. */
  failWrites: Error | null = null;
  /** When set, reading the views throws this. */
  failReads: Error | null = null;
  readonly writes: WriteRecord[] = [];
  private gate: Promise<void> | null = null;
  private releaseGate: () => void = () => undefined;

  constructor(private readonly inner: LevelStore) {}

  get location(): string {
    return this.inner.location;
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Holds every write until the returned function is called. */
  hold(): () => void {
    this.gate = new Promise<void>((r) => {
      this.releaseGate = r;
    });
    return () => {
      this.gate = null;
      this.releaseGate();
    };
  }

  /** Cleanup: no gate, no faults. */
  releaseAll(): void {
    this.failWrites = null;
    this.failReads = null;
    this.gate = null;
    this.releaseGate();
  }

  async write(ops: readonly BatchOp[]): Promise<void> {
    const rec: WriteRecord = { keys: ops.map((o) => o.key), done: false, failed: false };
    this.writes.push(rec);
    if (this.gate) await this.gate;
    if (this.failWrites) {
      rec.failed = true;
      throw this.failWrites;
    }
    await this.inner.write(ops);
    rec.done = true;
  }

  async *views(): AsyncIterable<[string, string]> {
    if (this.failReads) throw this.failReads;
    yield* this.inner.views();
  }

  log(range?: LogRange): AsyncIterable<[number, string]> {
    return this.inner.log(range);
  }
}

