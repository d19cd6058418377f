/**
 * The storage port. The domain and the committer see only this; `level-store.ts` is the LevelDB adapter.
 */

/** One write in an atomic batch: a put, or a delete when `value` is null. */
export interface BatchOp {
  readonly key: string;
  readonly value: string | null;
}

export interface LogRange {
  /** First sequence number to return (inclusive). */
  readonly from?: number;
  /** Last sequence number to return (inclusive). */
  readonly to?: number;
  readonly reverse?: boolean;
}

export interface Store {
  /** Where the data lives, for messages. */
  readonly location: string;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Applies every op or none, and resolves only once the batch is on disk (fsync). */
  write(ops: readonly BatchOp[]): Promise<void>;
  /** Every view entry (everything but the log), in key order. */
  views(): AsyncIterable<[string, string]>;
  /** Raw log entries `[seq, json]` in the range, in order. */
  log(range?: LogRange): AsyncIterable<[number, string]>;
}
