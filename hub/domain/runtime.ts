/**
 * Liveness and telemetry of devices: volatile, in memory only (a restart starts everyone offline until
 * they re-register, which they do within one keepalive). What devices report about applying config is
 * history and goes through the log (acks, duplicate identities: see state.ts `reports`).
 */
import type { ConfigValue } from '../../protocol/snapshot.ts';
import type { HubCore } from './core.ts';

export const DEFAULT_KEEPALIVE_S = 60;
/** A device is offline after this many keepalive intervals without hearing from it. */
export const MISSED_KEEPALIVES = 3;

export interface Liveness {
  /** Last datagram from the device, ms since the epoch. */
  lastSeen: number;
  /** `address%port` it was last seen from. */
  endpoint: string;
  /** An observe relation is live (registered, not ended by RST or timeout). */
  observing: boolean;
}

export interface Telemetry {
  values: Record<string, ConfigValue>;
  reports: number;
  lastAt: number;
}

export class DeviceRuntime {
  private readonly liveness = new Map<string, Liveness>();
  private readonly telemetry = new Map<string, Telemetry>();
  /** When each device's current snapshot version was committed (for change -> ack latency). */
  private readonly committedAt = new Map<string, { version: number; time: number }>();

  constructor(readonly keepaliveS: number = DEFAULT_KEEPALIVE_S) {}

  seen(device: string, endpoint: string, now = Date.now()): void {
    const l = this.liveness.get(device);
    if (l) {
      l.lastSeen = now;
      l.endpoint = endpoint;
    } else this.liveness.set(device, { lastSeen: now, endpoint, observing: false });
  }

  setObserving(device: string, observing: boolean): void {
    const l = this.liveness.get(device);
    if (l) l.observing = observing;
  }

  online(device: string, now = Date.now()): boolean {
    const l = this.liveness.get(device);
    return l !== undefined && now - l.lastSeen < this.keepaliveS * 1000 * MISSED_KEEPALIVES;
  }

  get(device: string): Readonly<Liveness> | undefined {
    return this.liveness.get(device);
  }

  recordTelemetry(device: string, values: Readonly<Record<string, ConfigValue>>, now = Date.now()): void {
    const t = this.telemetry.get(device) ?? { values: {}, reports: 0, lastAt: now };
    Object.assign(t.values, values);
    t.reports++;
    t.lastAt = now;
    this.telemetry.set(device, t);
  }

  telemetryOf(device: string): Readonly<Telemetry> | undefined {
    return this.telemetry.get(device);
  }

  committed(device: string, version: number, time: number): void {
    this.committedAt.set(device, { version, time });
  }

  /**
   * Follows the hub's commits: when each device's snapshot version moved (for change → ack latency), and
   * forgets removed devices. Once per hub, however many device endpoints notify from the same commits.
   */
  follow(core: HubCore): () => void {
    return core.onCommit((c) => {
      const now = Date.now();
      for (const device of c.changedSnapshots) {
        const snap = core.state.snapshots.get(device);
        if (snap) this.committed(device, snap.snapshot.version, now);
        else this.forget(device);
      }
    });
  }

  /** ms from the commit of `version` to now, when that is the version the hub last committed. */
  latencyOf(device: string, version: number, now = Date.now()): number | undefined {
    const c = this.committedAt.get(device);
    return c && c.version === version ? now - c.time : undefined;
  }

  forget(device: string): void {
    this.liveness.delete(device);
    this.telemetry.delete(device);
    this.committedAt.delete(device);
  }

  /** Devices seen at least once, for the fleet table. */
  known(): IterableIterator<string> {
    return this.liveness.keys();
  }
}
