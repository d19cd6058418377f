/**
 * The hub's domain core: commands validate against the in-memory views, become events, move the views
 * forward through the reducer and go to disk with group commit; queries read the in-memory views.
 * Storage sits behind the Store port; this file imports no LevelDB and no socket.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { channel } from 'node:diagnostics_channel';
import { InternalError, StoreUnavailableError } from '../errors.ts';
import { GroupCommitter } from '../store/committer.ts';
import type { BatchOp, Store } from '../store/store.ts';
import { EventType } from './events.ts';
import type { EventData, HengeEvent } from './events.ts';
import { HubState, Touched } from './state.ts';
import { logKey } from './views.ts';

/** Who asks and why; recorded with every event. */
export interface CommandContext {
  readonly actor: string;
  readonly reason?: string;
}

export interface CommitResult {
  /** Sequence number of the last event written, or null when the command changed nothing. */
  readonly seq: number | null;
  readonly events: readonly HengeEvent[];
}

export interface Committed {
  readonly events: readonly HengeEvent[];
  /** Devices whose snapshot has a new version: what the push path must notify. */
  readonly changedSnapshots: ReadonlySet<string>;
}

export interface HubObserver {
  /** A command is durable; `ms` from submit to fsync done. */
  commandCommitted?(ms: number): void;
  commandFailed?(err: Error): void;
  batchWritten?(commands: number, ms: number): void;
  /** The views were reloaded from the store after a failed write. */
  reloaded?(err: Error | null): void;
}

/** Fired after every durable commit; free when nobody subscribes. */
export const commitChannel = channel('henge:commit');

export class HubCore {
  private reloading: Promise<void> | null = null;
  /** Set when a reload from the store failed: commands are refused until one succeeds. */
  private brokenBy: Error | null = null;
  /** Set when the last batch failed; cleared by the next durable batch. */
  private writeError: Error | null = null;
  private readonly listeners = new Set<(c: Committed) => void>();
  private readonly committer: GroupCommitter;

  private constructor(
    readonly store: Store,
    public state: HubState,
    private readonly observer: HubObserver,
  ) {
    this.committer = new GroupCommitter(store, {
      onBatch: (n, ms) => {
        this.writeError = null;
        observer.batchWritten?.(n, ms);
      },
      onFailure: (err) => {
        this.writeError = err;
        return this.startReload(err);
      },
    });
  }

  /** Opens the store, loads the views (no log replay) and initializes a new hub on first start. */
  static async open(store: Store, observer: HubObserver = {}): Promise<HubCore> {
    await store.open();
    const core = new HubCore(store, await loadState(store), observer);
    if (!core.state.meta) {
      await core.commit({ actor: 'hub' }, [
        { type: EventType.HubInitialized, data: { hubId: randomBytes(6).toString('hex'), incarnation: randomBytes(8).toString('hex') } },
      ]);
    }
    return core;
  }

  async close(): Promise<void> {
    await this.committer.drain();
    await this.store.close();
  }

  /** Why writes are not going through right now, or null when the store is healthy. */
  get problem(): Error | null {
    return this.brokenBy ?? this.writeError;
  }

  onCommit(listener: (c: Committed) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Waits out a reload in progress. Commands call this first and then run synchronously up to
   * `commit`, so no command can be validated against state that a failed batch is about to discard.
   */
  async ready(): Promise<void> {
    while (this.reloading) await this.reloading;
    if (this.brokenBy) {
      // The last reload failed too: try again now rather than serve commands on unknown state.
      await this.startReload(this.brokenBy);
      if (this.brokenBy) {
        throw new StoreUnavailableError(`the store at ${this.store.location} cannot be read: ${this.brokenBy.message}`, {}, { cause: this.brokenBy });
      }
    }
  }

  /**
   * Appends `datas` as events, applies them, and resolves once they are on disk. Must be called
   * synchronously after validation (no await in between).
   */
  commit(ctx: CommandContext, datas: readonly EventData[]): Promise<CommitResult> {
    return this.commitAll([{ ctx, datas }]);
  }

  /**
   * Several commands in one durable batch, each event keeping its own command's actor and reason: what
   * many devices report at once (their acks) costs one commit, not one each. Same rules as `commit`.
   */
  commitAll(commands: ReadonlyArray<{ readonly ctx: CommandContext; readonly datas: readonly EventData[] }>): Promise<CommitResult> {
    const time = Date.now();
    const t = new Touched();
    const events: HengeEvent[] = [];
    const state = this.state;
    try {
      for (const { ctx, datas } of commands) {
        for (const d of datas) {
          const e = { seq: state.seq + 1, time, actor: ctx.actor, ...(ctx.reason ? { reason: ctx.reason } : {}), ...d } as HengeEvent;
          // Snapshots move one event at a time, exactly as --verify replays them.
          t.devices.clear();
          state.apply(e, t);
          state.refreshSnapshots(t, e.seq);
          events.push(e);
        }
      }
    } catch (cause) {
      // A command passed validation but the reducer refused it: a bug. The state may be half-moved.
      void this.startReload(cause as Error);
      return Promise.reject(new InternalError('the hub could not apply this change; nothing was written', {}, { cause }));
    }
    if (events.length === 0) return Promise.resolve({ seq: null, events: [] });
    const ops: BatchOp[] = events.map((e) => ({ key: logKey(e.seq), value: JSON.stringify(e) }));
    for (const k of t.keys) ops.push({ key: k, value: state.viewValue(k) ?? null });
    const t0 = performance.now();
    return this.committer.submit(ops).then(
      () => {
        this.observer.commandCommitted?.(performance.now() - t0);
        const committed: Committed = { events, changedSnapshots: t.changedSnapshots };
        for (const l of this.listeners) l(committed);
        if (commitChannel.hasSubscribers) commitChannel.publish(committed);
        return { seq: events[events.length - 1]?.seq ?? null, events };
      },
      (err: Error) => {
        this.observer.commandFailed?.(err);
        throw err;
      },
    );
  }

  /** Reloads the views from the store; commands wait for it (see ready()). Never rejects. */
  private startReload(cause: Error): Promise<void> {
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      try {
        this.state = await loadState(this.store);
        this.brokenBy = null;
        this.observer.reloaded?.(cause);
      } catch (err) {
        this.brokenBy = err as Error;
        this.observer.reloaded?.(err as Error);
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }
}

export async function loadState(store: Store): Promise<HubState> {
  const entries: Array<[string, string]> = [];
  for await (const e of store.views()) entries.push(e);
  return HubState.fromViews(entries);
}
