/** Handles on the push benchmark's child processes: the hub (hub-process.ts) and the devices (sim-process.ts). */
import type { ChildProcess } from 'node:child_process';
import { exited, isMessage, nextMessage } from '../lib/child.ts';
import { JsonClient } from '../lib/http-json.ts';
import { httpGet } from '../lib/http.ts';
import { spawnTsWith } from '../lib/spawn.ts';
import { parsePromValue } from '../lib/stats.ts';
import type { AckStatus } from '../../protocol/ack.ts';
import type { CommitStamp, DrainStamp, HubStats } from './hub-process.ts';
import type { FanoutReport } from './sim-process.ts';

const HUB_FILE = new URL('./hub-process.ts', import.meta.url).pathname;
const SIM_FILE = new URL('./sim-process.ts', import.meta.url).pathname;

function ask<T>(child: ChildProcess, message: object, reply: string, timeoutMs = 120_000): Promise<T> {
  const p = nextMessage(child, (m) => (isMessage(m, reply) ? (m as unknown as T) : undefined), timeoutMs);
  child.send(message);
  return p;
}

async function end(child: ChildProcess, closeMessage: object | null, closedType: string | null): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.connected && closeMessage && closedType) {
    const closed = nextMessage(child, (m) => (isMessage(m, closedType) ? true : undefined), 30_000).catch(() => false);
    child.send(closeMessage);
    await closed;
  }
  const done = await Promise.race([exited(child).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
  if (!done) {
    child.kill();
    await exited(child);
  }
}

/** The CoAP counters the hub's /metrics gives (gauges, since start). */
export interface HubMetrics {
  readonly notificationsSent: number;
  readonly retransmissions: number;
  readonly acksReceived: number;
  readonly datagramsReceived: number;
}

export class HubProcess {
  readonly api: JsonClient;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly token: string,
    readonly coapPort: number,
    readonly startupMs: number,
    readonly snapshotBytes: number,
    readonly maxInflight: number,
    /** coaps: every device's key; empty on plain CoAP. */
    readonly keys: Readonly<Record<string, string>>,
  ) {
    this.api = new JsonClient(url, token);
  }

  static async start(o: { data: string; devices: number; warmDevices: number; keepaliveS: number; secure?: boolean }): Promise<HubProcess> {
    const child = spawnTsWith(HUB_FILE, [], { nodeArgs: ['--expose-gc'] });
    const r = await ask<Record<string, unknown>>(child, { type: 'start', ...o }, 'ready', 180_000);
    return new HubProcess(
      child,
      String(r['url']),
      String(r['token']),
      Number(r['coapPort']),
      Number(r['startupMs']),
      Number(r['snapshotBytes']),
      Number(r['maxInflight']),
      (r['keys'] ?? {}) as Record<string, string>,
    );
  }

  get coapAddress(): string {
    return `127.0.0.1:${this.coapPort}`;
  }

  stats(gc = false): Promise<HubStats> {
    return ask<HubStats>(this.child, { type: 'stats', gc }, 'stats', 30_000);
  }

  async commits(since: number): Promise<CommitStamp[]> {
    return (await this.commitsAndSends(since)).list;
  }

  /** Durable batches after `since`, and the first and last notification this hub handed to its socket. */
  commitsAndSends(since: number): Promise<{ list: CommitStamp[]; drains: DrainStamp[]; notificationSends: { count: number; first: number | null; last: number | null } }> {
    return ask(this.child, { type: 'commits', since }, 'commits', 30_000);
  }

  async metrics(): Promise<HubMetrics> {
    const r = await httpGet(`${this.url}/metrics`, { authorization: `Bearer ${this.token}` });
    if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}`);
    return {
      notificationsSent: parsePromValue(r.text, 'henge_coap_notifications_sent'),
      retransmissions: parsePromValue(r.text, 'henge_coap_retransmissions'),
      acksReceived: parsePromValue(r.text, 'henge_coap_acks_received'),
      datagramsReceived: parsePromValue(r.text, 'henge_coap_datagrams_received'),
    };
  }

  async profileStart(): Promise<void> {
    await ask(this.child, { type: 'profile-start' }, 'profiling', 30_000);
  }

  async profileStop(file: string): Promise<void> {
    await ask(this.child, { type: 'profile-stop', file }, 'profiled', 60_000);
  }

  async close(): Promise<void> {
    this.api.close();
    await end(this.child, { type: 'close' }, 'closed');
  }
}

export interface Started {
  readonly registration: { devices: number; observing: number; failed: number; ms: number };
  readonly openSocketsMs: number;
  readonly readyMs: number;
  readonly idle: number;
  readonly openFiles: number | null;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
}

export interface SimStatsReply {
  readonly counters: Record<string, number>;
  readonly cpuUs: number;
  readonly rssBytes: number;
  readonly idle: number;
  readonly devices: number;
}

export interface AckMessage {
  readonly device: string;
  readonly version: number;
  readonly code: string;
  readonly notifiedAt: number;
  readonly sentAt: number;
  readonly at: number;
  readonly retransmits: number;
}

export class SimProcess {
  private constructor(readonly child: ChildProcess) {}

  /** The simulated devices' process; its open-file limit is raised for `devices` sockets. */
  static spawn(devices: number): SimProcess {
    return new SimProcess(spawnTsWith(SIM_FILE, [], { nodeArgs: ['--expose-gc'], openFiles: Math.max(65_536, devices * 2 + 1024) }));
  }

  /** Starts simulator `name`; with `keys` (coaps) each device uses its own key. */
  start(name: string, hub: string, ids: readonly string[], keys: Readonly<Record<string, string>> = {}): Promise<Started> {
    const mine: Record<string, string> = {};
    for (const id of ids) if (keys[id] !== undefined) mine[id] = keys[id];
    return ask<Started>(this.child, { type: 'start', name, hub, ids, keys: mine }, 'started', 300_000);
  }

  /** Arms the fan-out collector; resolves once armed, with the promise of its report. Without `acks` the report comes once all are notified. */
  async arm(name: string, id: number, expect: number, acks = true): Promise<{ report: Promise<FanoutReport> }> {
    const report = nextMessage(this.child, (m) => (isMessage(m, 'fanout') && m['id'] === id ? (m as unknown as FanoutReport) : undefined), 60_000);
    await ask(this.child, { type: 'arm', name, id, expect, acks }, 'armed', 30_000);
    return { report };
  }

  /** The status simulator `name`'s devices ack with; null: they apply but send no ack POST. */
  async ackStatus(name: string, status: AckStatus | null): Promise<void> {
    await ask(this.child, { type: 'ack-status', name, status }, 'ack-status', 30_000);
  }

  /** Streams every answered ack of simulator `name` to `onAck`. */
  async stream(name: string, onAck: (a: AckMessage) => void): Promise<() => void> {
    const listener = (m: unknown): void => {
      if (isMessage(m, 'ack')) onAck(m as unknown as AckMessage);
    };
    this.child.on('message', listener);
    await ask(this.child, { type: 'stream', name, on: true }, 'streaming', 30_000);
    return () => {
      this.child.off('message', listener);
    };
  }

  async profileStart(): Promise<void> {
    await ask(this.child, { type: 'profile-start' }, 'profiling', 30_000);
  }

  async profileStop(file: string): Promise<void> {
    await ask(this.child, { type: 'profile-stop', file }, 'profiled', 60_000);
  }

  stats(): Promise<SimStatsReply> {
    return ask<SimStatsReply>(this.child, { type: 'stats' }, 'stats', 30_000);
  }

  async stop(name: string, deregister: boolean): Promise<void> {
    await ask(this.child, { type: 'stop', name, deregister }, 'stopped', 30_000);
  }

  async close(): Promise<void> {
    if (this.child.connected) this.child.disconnect();
    await end(this.child, null, null);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the hub has no notification in flight and every simulated device is idle (or `timeoutMs` passes). */
export async function quiesce(hub: HubProcess, sim: SimProcess, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [h, s] = await Promise.all([hub.stats(), sim.stats()]);
    if (h.inflight === 0 && s.idle === s.devices) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}
