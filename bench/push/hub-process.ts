/**
 * The hub of the push benchmark, in its own process: `startHub` with the REST API and the CoAP endpoint
 * on free loopback ports, seeded with devices bound to the push schema and one group over them. It stamps
 * every durable batch (the store's write resolving, i.e. after the fsync) on the machine-wide monotonic
 * clock, so the parent can measure from the commit of a change. Run with --expose-gc for the memory figure.
 *
 * IPC with bench/push/run.ts:
 *   parent → { type: 'start', data, devices, warmDevices, keepaliveS, secure }
 *                                   child → { type: 'ready', url, token, coapPort, startupMs, snapshotBytes, maxInflight, keys }
 *                                   (secure: the device endpoint is coaps and `keys` holds every device's key)
 *   parent → { type: 'stats', gc }  child → { type: 'stats', ...HubStats }
 *   parent → { type: 'commits', since }
 *                                   child → { type: 'commits', list: [{ at, ops, cpuUs }], notificationSends: { count, first, last } }
 *                                   (batches made durable, and notifications handed to the socket, after `since`)
 *   parent → { type: 'profile-start' }, later { type: 'profile-stop', file }
 *   parent → { type: 'close' }      child → { type: 'closed' } and exits
 */
import { Socket as DgramSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { startHub } from '../../hub/hub.ts';
import { DEFAULT_MAX_HANDSHAKES } from '../../hub/coap/dtls-session-limits.ts';
import type { RunningHub } from '../../hub/hub.ts';
import { addDevice, defineGroup, publishSchema } from '../../hub/domain/index.ts';
import type { BatchOp } from '../../hub/store/store.ts';
import { monoNow } from '../../sim/clock.ts';
import { isMessage, sendToParent } from '../lib/child.ts';
import { BENCH_GROUP, BENCH_LABEL, PUSH_SCHEMA, PUSH_SCHEMA_NAME, WARM_GROUP, WARM_LABEL, benchId, warmId } from './fixtures.ts';
import { WindowProfiler } from '../lib/profiler.ts';

export interface HubStats {
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  readonly eluIdleMs: number;
  readonly eluActiveMs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
  readonly arrayBuffersBytes: number;
  readonly observers: number;
  readonly inflight: number;
  readonly notificationsSent: number;
  readonly retransmissions: number;
  readonly datagramsReceived: number;
  readonly acksReceived: number;
  readonly seq: number;
}

export interface CommitStamp {
  /** Monotonic ms (sim/clock.ts) when the batch's write resolved, fsync included. */
  readonly at: number;
  readonly ops: number;
  /** This process's CPU (user + system) at that moment, µs; NaN for batches under BIG_BATCH ops. */
  readonly cpuUs: number;
}

/**
 * When this process handed each confirmable 2.xx (a notification) to a UDP socket: dgram's send() is
 * wrapped, and the time of the call is kept (the hub's socket resolves IP literals at once, so the
 * datagram leaves within that call).
 */
const notificationSends: number[] = [];
const MAX_SENDS = 200_000;
const originalSend = DgramSocket.prototype.send;
DgramSocket.prototype.send = function send(this: DgramSocket, ...args: unknown[]): void {
  const msg = args[0];
  if (msg instanceof Uint8Array && msg.length > 4 && ((msg[0] ?? 0) & 0x30) === 0 && (msg[1] ?? 0) >> 5 === 2) {
    if (notificationSends.length >= MAX_SENDS) notificationSends.splice(0, MAX_SENDS / 2);
    notificationSends.push(monoNow());
  }
  Reflect.apply(originalSend, this, args);
} as unknown as typeof originalSend;

/**
 * When the hub's notifications in flight fell to 0, with its CPU then: the moment it had read the CoAP
 * ACK of every notification of a fan-out. The registry's `acknowledged` is wrapped for it.
 */
export interface DrainStamp {
  readonly at: number;
  readonly cpuUs: number;
}
const drains: DrainStamp[] = [];

let hub: RunningHub | undefined;
let closing: Promise<void> | undefined;
const stamps: CommitStamp[] = [];
const MAX_STAMPS = 50_000;
/** Batches with at least this many ops get a CPU reading with their stamp. */
const BIG_BATCH = 50;

function closeHub(): Promise<void> {
  closing ??= hub ? hub.close() : Promise.resolve();
  return closing;
}

function stats(gc: boolean): HubStats {
  if (gc) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (!g) throw new Error('the hub process needs --expose-gc for the memory figure');
    g();
    g();
  }
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const mem = process.memoryUsage();
  const c = hub?.coaps ?? hub?.coap;
  return {
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    eluIdleMs: elu.idle,
    eluActiveMs: elu.active,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    externalBytes: mem.external,
    arrayBuffersBytes: mem.arrayBuffers,
    observers: c?.registry.size ?? 0,
    inflight: c?.registry.inflight ?? 0,
    notificationsSent: c?.counters.notificationsSent ?? 0,
    retransmissions: c?.counters.retransmissions ?? 0,
    datagramsReceived: c?.counters.received ?? 0,
    acksReceived: c?.counters.acksReceived ?? 0,
    seq: hub?.core.state.seq ?? 0,
  };
}

async function start(data: string, devices: number, warmDevices: number, keepaliveS: number, secure: boolean): Promise<void> {
  const device = { port: 0, host: '127.0.0.1', keepaliveS };
  // The simulator's devices all come from 127.0.0.1: the per-address handshake cap (4, for a LAN of
  // separate devices) is raised to the global one, as for devices behind one NAT address.
  const coaps = { ...device, handshakesPerAddress: DEFAULT_MAX_HANDSHAKES };
  hub = await startHub({ data, host: '127.0.0.1', port: 0, ...(secure ? { coaps } : { coap: device }) });
  const token = hub.firstToken;
  if (!token) throw new Error(`the data folder ${data} is not fresh: no first token was made`);
  const core = hub.core;
  const ctx = { actor: 'bench', reason: 'seed' };
  await publishSchema(core, ctx, PUSH_SCHEMA_NAME, PUSH_SCHEMA);
  const add = async (n: number, id: (i: number) => string, label: string): Promise<void> => {
    for (let i = 0; i < n; i += 250) {
      const adds: Array<Promise<unknown>> = [];
      for (let j = i; j < Math.min(n, i + 250); j++) adds.push(addDevice(core, ctx, { id: id(j), labels: { fleet: label }, schema: PUSH_SCHEMA_NAME }));
      await Promise.all(adds);
    }
  };
  await add(devices, benchId, BENCH_LABEL);
  await add(warmDevices, warmId, WARM_LABEL);
  if (devices > 1) await defineGroup(core, ctx, BENCH_GROUP, { selector: `fleet=${BENCH_LABEL}`, values: { interval: 60 } });
  if (warmDevices > 0) await defineGroup(core, ctx, WARM_GROUP, { selector: `fleet=${WARM_LABEL}`, values: { interval: 60 } });
  // Stamp every durable batch: the committer awaits store.write, which resolves after the fsync.
  const store = core.store;
  const write = store.write.bind(store);
  store.write = async (ops: readonly BatchOp[]): Promise<void> => {
    await write(ops);
    if (stamps.length >= MAX_STAMPS) stamps.splice(0, MAX_STAMPS / 2);
    const at = monoNow();
    // getrusage costs a few µs here: only for the large batches of group changes (the fan-out's commit).
    const cpu = ops.length >= BIG_BATCH ? process.cpuUsage() : null;
    stamps.push({ at, ops: ops.length, cpuUs: cpu ? cpu.user + cpu.system : Number.NaN });
  };
  const coap = hub.coaps ?? hub.coap;
  if (!coap) throw new Error('the hub has no CoAP endpoint');
  // coaps: every device's key, for the simulator (a benchmark's devices; never done outside of one).
  const keys: Record<string, string> = {};
  if (hub.keystore) {
    for (let i = 0; i < devices; i++) keys[benchId(i)] = (await hub.keystore.issue(benchId(i))).key;
    for (let i = 0; i < warmDevices; i++) keys[warmId(i)] = (await hub.keystore.issue(warmId(i))).key;
  }
  const registry = coap.registry;
  const acknowledged = registry.acknowledged.bind(registry);
  registry.acknowledged = (peer, mid): boolean => {
    const settled = acknowledged(peer, mid);
    if (settled && registry.inflight === 0) {
      if (drains.length >= MAX_STAMPS) drains.splice(0, MAX_STAMPS / 2);
      const cpu = process.cpuUsage();
      drains.push({ at: monoNow(), cpuUs: cpu.user + cpu.system });
    }
    return settled;
  };
  sendToParent({
    type: 'ready',
    url: hub.url,
    token,
    coapPort: hub.coapsPort ?? hub.coapPort,
    keys,
    startupMs: hub.startupMs,
    snapshotBytes: core.state.snapshots.get(benchId(0))?.bytes.length ?? 0,
    maxInflight: coap.registry.maxInflight,
  });
}

const profiler = new WindowProfiler();

const profileStart = (): Promise<void> => profiler.start(100);

async function profileStop(file: string): Promise<void> {
  if (await profiler.stop(file)) sendToParent({ type: 'profiled', file });
}

const fail = (err: unknown): never => {
  process.stderr.write(`push hub process: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
};

process.on('message', (m: unknown) => {
  if (isMessage(m, 'start')) {
    start(String(m['data']), Number(m['devices']), Number(m['warmDevices'] ?? 0), Number(m['keepaliveS']), m['secure'] === true).catch(fail);
  } else if (isMessage(m, 'stats')) {
    try {
      sendToParent({ type: 'stats', ...stats(m['gc'] === true) });
    } catch (err) {
      fail(err);
    }
  } else if (isMessage(m, 'commits')) {
    const since = Number(m['since']);
    const sends = notificationSends.filter((t) => t >= since);
    sendToParent({
      type: 'commits',
      list: stamps.filter((s) => s.at >= since),
      drains: drains.filter((d) => d.at >= since),
      notificationSends: { count: sends.length, first: sends[0] ?? null, last: sends[sends.length - 1] ?? null },
    });
  } else if (isMessage(m, 'profile-start')) {
    profileStart().then(() => sendToParent({ type: 'profiling' }), fail);
  } else if (isMessage(m, 'profile-stop')) {
    profileStop(String(m['file'])).catch(fail);
  } else if (isMessage(m, 'close')) {
    void closeHub().then(() => {
      sendToParent({ type: 'closed' });
      process.exit(0);
    });
  }
});
process.on('disconnect', () => {
  void closeHub().finally(() => process.exit(0));
});
