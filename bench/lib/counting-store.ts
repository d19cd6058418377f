/**
 * A Store port wrapper that counts what the core asks of the store: how many batches and ops it
 * writes (and how many of those ops hit a key already written earlier in the same batch), how many view
 * entries it reads, and whether it ever reads the log. Used to show that start-up does not replay the
 * log, and what group commit really writes.
 */
import { performance } from 'node:perf_hooks';
import type { BatchOp, LogRange, Store } from '../../hub/store/store.ts';

export class CountingStore implements Store {
  openMs = 0;
  viewEntries = 0;
  /** Time from the first view entry requested to the last one read, summed over scans. */
  viewScanMs = 0;
  logScans = 0;
  batches = 0;
  ops = 0;
  /** Ops whose key had already been written earlier in the same batch (overwritten before ever being read). */
  repeatedKeyOps = 0;
  bytes = 0;

  constructor(private readonly inner: Store) {}

  get location(): string {
    return this.inner.location;
  }

  async open(): Promise<void> {
    const t0 = performance.now();
    await this.inner.open();
    this.openMs += performance.now() - t0;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  write(ops: readonly BatchOp[]): Promise<void> {
    this.batches++;
    this.ops += ops.length;
    const seen = new Set<string>();
    for (const op of ops) {
      if (seen.has(op.key)) this.repeatedKeyOps++;
      else seen.add(op.key);
      this.bytes += op.key.length + (op.value?.length ?? 0);
    }
    return this.inner.write(ops);
  }

  async *views(): AsyncIterable<[string, string]> {
    const t0 = performance.now();
    for await (const e of this.inner.views()) {
      this.viewEntries++;
      yield e;
    }
    this.viewScanMs += performance.now() - t0;
  }

  log(range?: LogRange): AsyncIterable<[number, string]> {
    this.logScans++;
    return this.inner.log(range);
  }
}
