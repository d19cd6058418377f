/** LevelDB adapter for the Store port (`level`, i.e. classic-level on Node). */
import { Level } from 'level';
import { StoreLockedError, StoreUnavailableError } from '../errors.ts';
import { LOG_PREFIX, logKey, seqOfLogKey } from '../domain/views.ts';
import type { BatchOp, LogRange, Store } from './store.ts';

/** The first key after every log key ('!' + 1 = '"'). */
const AFTER_LOG = 'l"';

interface LevelErrorLike {
  code?: string;
  cause?: { code?: string; message?: string };
}

export class LevelStore implements Store {
  private readonly db: Level<string, string>;

  constructor(readonly location: string) {
    this.db = new Level<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  }

  async open(): Promise<void> {
    try {
      await this.db.open();
    } catch (err) {
      const e = err as LevelErrorLike;
      if (e.cause?.code === 'LEVEL_LOCKED' || e.code === 'LEVEL_LOCKED') {
        throw new StoreLockedError(`the data folder ${this.location} is in use by another henge process`, { location: this.location }, { cause: err });
      }
      // level's own message is "Database failed to open"; the reason (e.g. a read-only file system) is in its cause.
      const why = e.cause?.message ?? (err as Error).message;
      throw new StoreUnavailableError(`cannot open the store at ${this.location}: ${why}`, { location: this.location }, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  async write(ops: readonly BatchOp[]): Promise<void> {
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.value === null) batch.del(op.key);
      else batch.put(op.key, op.value);
    }
    await batch.write({ sync: true });
  }

  async *views(): AsyncIterable<[string, string]> {
    yield* this.db.iterator({ lt: LOG_PREFIX });
    yield* this.db.iterator({ gte: AFTER_LOG });
  }

  async *log(range: LogRange = {}): AsyncIterable<[number, string]> {
    // Only the bounds that apply: abstract-level treats a present-but-undefined bound as given.
    const it = this.db.iterator({
      gte: range.from !== undefined ? logKey(range.from) : LOG_PREFIX,
      ...(range.to !== undefined ? { lte: logKey(range.to) } : { lt: AFTER_LOG }),
      reverse: range.reverse ?? false,
    });
    for await (const [key, value] of it) yield [seqOfLogKey(key), value];
  }
}
