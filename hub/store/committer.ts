/**
 * Group commit: commands that arrive while a batch is being synced wait together and go to disk in the
 * next batch, so N concurrent writers cost about one fsync, not N. A command resolves only once the batch
 * that holds it is on disk.
 *
 * A failed batch fails every command in it and every command queued behind it: those were validated
 * against state that now will not exist. `onFailure` runs first and the rejections wait for it, so the
 * owner can block new commands and reload its views from what the store really holds: once a caller
 * hears "refused", no read shows the refused change any more.
 */
import { performance } from 'node:perf_hooks';
import { StoreUnavailableError } from '../errors.ts';
import type { BatchOp, Store } from './store.ts';

interface Pending {
  readonly ops: readonly BatchOp[];
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export interface CommitterHooks {
  /** After each durable batch: how many commands it held and how long the write took. */
  onBatch?(commands: number, ms: number): void;
  onFailure(err: StoreUnavailableError): Promise<void>;
}

export class GroupCommitter {
  private queue: Pending[] = [];
  private writing = false;
  private scheduled = false;

  constructor(
    private readonly store: Pick<Store, 'write' | 'location'>,
    private readonly hooks: CommitterHooks,
  ) {}

  /** Queues the ops of one command; resolves once they are durable. */
  submit(ops: readonly BatchOp[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when nothing is queued or being written. */
  async drain(): Promise<void> {
    while (this.writing || this.queue.length > 0 || this.scheduled) {
      await new Promise((r) => setImmediate(r));
    }
  }

  private schedule(): void {
    if (this.writing || this.scheduled) return;
    this.scheduled = true;
    // Let every request that arrived in this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const batch = this.queue;
    this.queue = [];
    // Later commands in a batch overwrite keys earlier ones wrote (m!seq always, a device's records
    // often): only the last value of each key goes to the store.
    const latest = new Map<string, string | null>();
    for (const p of batch) for (const op of p.ops) latest.set(op.key, op.value);
    const ops: BatchOp[] = [];
    for (const [key, value] of latest) ops.push({ key, value });
    const t0 = performance.now();
    try {
      await this.store.write(ops);
    } catch (cause) {
      const err = new StoreUnavailableError(
        `the store at ${this.store.location} refused a write (${(cause as Error).message}); nothing of this change was kept`,
        { location: this.store.location },
        { cause },
      );
      const behind = this.queue;
      this.queue = [];
      // Nothing new can queue meanwhile: the owner blocks commands until its reload is done.
      await this.hooks.onFailure(err).catch(() => undefined);
      this.writing = false;
      for (const p of batch) p.reject(err);
      for (const p of behind) p.reject(err);
      if (this.queue.length > 0) void this.flush();
      return;
    }
    this.hooks.onBatch?.(batch.length, performance.now() - t0);
    this.writing = false;
    for (const p of batch) p.resolve();
    // Whatever queued up during the fsync goes out now, as one batch.
    if (this.queue.length > 0) void this.flush();
  }
}
