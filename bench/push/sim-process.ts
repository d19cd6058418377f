/**
 * The simulated devices of the push benchmark, in their own process (never on the hub's event loop):
 * one or more named `Simulator`s (sim/), a collector that times one fan-out, and a stream of ack events
 * for the latency figure. Every time is taken here, on the machine-wide monotonic clock (sim/clock.ts).
 *
 * IPC with bench/push/run.ts:
 *   parent → { type: 'start', name, hub, ids, keys } child → { type: 'started', name, registration, openFiles, rss/heap before and after }
 *   parent → { type: 'arm', name, id, expect, acks }  child → { type: 'armed', id }, later { type: 'fanout', ...FanoutReport }
 *                                                 (acks false: the report comes once all `expect` are notified)
 *   parent → { type: 'ack-status', name, status } child → { type: 'ack-status' }  (status null: apply, send no ack POST)
 *   parent → { type: 'stream', name, on }         child → { type: 'ack', version, notifiedAt, sentAt, at, code } per ack answered
 *   parent → { type: 'stats' }                    child → { type: 'stats', counters, cpuUs, rssBytes, idle, devices }
 *   parent → { type: 'stop', name, deregister }   child → { type: 'stopped', name }
 *   parent → { type: 'profile-start' }, later { type: 'profile-stop', file }   (a CPU profile of the span)
 */
import { performance } from 'node:perf_hooks';
import type { AckStatus } from '../../protocol/ack.ts';
import { Simulator } from '../../sim/index.ts';
import type { AckedEvent, NotifiedEvent, SimCounters } from '../../sim/index.ts';
import { isMessage, sendToParent } from '../lib/child.ts';
import { openFileLimit } from '../lib/spawn.ts';
import { WindowProfiler } from '../lib/profiler.ts';

export interface FanoutReport {
  readonly id: number;
  readonly expect: number;
  readonly notified: number;
  readonly acked: number;
  /** Acks answered with something else than 2.04. */
  readonly ackErrors: number;
  readonly firstNotifiedAt: number;
  readonly lastNotifiedAt: number;
  readonly lastAckedAt: number;
  readonly versions: number[];
  readonly complete: boolean;
  /** CPU this process used from arming to the report, ms. */
  readonly simCpuMs: number;
}

interface Armed {
  readonly id: number;
  readonly sim: string;
  readonly expect: number;
  /** Wait for the acks too (else report once all are notified). */
  readonly acks: boolean;
  readonly seen: Map<string, { version: number; acked: boolean }>;
  notified: number;
  acked: number;
  ackErrors: number;
  first: number;
  last: number;
  lastAck: number;
  readonly cpu0: NodeJS.CpuUsage;
  readonly timer: NodeJS.Timeout;
}

const FANOUT_TIMEOUT_MS = 30_000;
const sims = new Map<string, Simulator>();
let armed: Armed | null = null;
const streaming = new Set<string>();
/** Counters of simulators already stopped, so totals never go down. */
const retired: Record<string, number> = {};

function gcAndMemory(): { rssBytes: number; heapUsedBytes: number } {
  const g = (globalThis as { gc?: () => void }).gc;
  g?.();
  g?.();
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed };
}

function report(a: Armed, complete: boolean): void {
  clearTimeout(a.timer);
  armed = null;
  const cpu = process.cpuUsage(a.cpu0);
  const versions = [...new Set([...a.seen.values()].map((s) => s.version))].sort((x, y) => x - y);
  const r: FanoutReport = {
    id: a.id,
    expect: a.expect,
    notified: a.notified,
    acked: a.acked,
    ackErrors: a.ackErrors,
    firstNotifiedAt: a.first,
    lastNotifiedAt: a.last,
    lastAckedAt: a.lastAck,
    versions,
    complete,
    simCpuMs: (cpu.user + cpu.system) / 1000,
  };
  sendToParent({ type: 'fanout', ...r });
}

function onNotified(name: string, e: NotifiedEvent): void {
  const a = armed;
  if (!a || a.sim !== name || !e.applied || a.seen.has(e.device)) return;
  a.seen.set(e.device, { version: e.version, acked: false });
  a.notified++;
  if (a.notified === 1) a.first = e.at;
  if (e.at > a.last) a.last = e.at;
  if (!a.acks && a.notified === a.expect) report(a, true);
}

function onAcked(name: string, e: AckedEvent): void {
  if (streaming.has(name)) {
    sendToParent({ type: 'ack', device: e.device, version: e.version, code: e.code, notifiedAt: e.notifiedAt, sentAt: e.sentAt, at: e.at, retransmits: e.retransmits });
  }
  const a = armed;
  if (!a || a.sim !== name) return;
  const s = a.seen.get(e.device);
  if (!s || s.acked || s.version !== e.version) return;
  s.acked = true;
  a.acked++;
  if (e.code !== '2.04') a.ackErrors++;
  if (e.at > a.lastAck) a.lastAck = e.at;
  if (a.acked === a.expect && a.notified === a.expect) report(a, true);
}

async function start(name: string, hub: string, ids: string[], keys: Readonly<Record<string, string>>): Promise<void> {
  const before = gcAndMemory();
  const secure = Object.keys(keys).length > 0;
  const sim = new Simulator({ hub, ...(secure ? { keyOf: (id: string) => keys[id] } : {}) });
  sims.set(name, sim);
  sim.on('notified', (e) => onNotified(name, e));
  sim.on('acked', (e) => onAcked(name, e));
  const t0 = performance.now();
  await sim.start(ids);
  const openMs = performance.now() - t0;
  const registration = await sim.registration();
  // Each device acks the snapshot its registration carried: wait until those exchanges are done too.
  const deadline = performance.now() + 60_000;
  while (sim.stats().idle < sim.size && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const after = gcAndMemory();
  sendToParent({
    type: 'started',
    name,
    registration,
    openSocketsMs: openMs,
    readyMs: performance.now() - t0,
    idle: sim.stats().idle,
    openFiles: openFileLimit(),
    rssBefore: before.rssBytes,
    rssAfter: after.rssBytes,
    heapBefore: before.heapUsedBytes,
    heapAfter: after.heapUsedBytes,
  });
}

function mustSim(name: string): Simulator {
  const s = sims.get(name);
  if (!s) throw new Error(`no simulator named ${name}`);
  return s;
}

function counters(): SimCounters | Record<string, number> {
  const total: Record<string, number> = { ...retired };
  for (const s of sims.values()) for (const [k, v] of Object.entries(s.counters)) total[k] = (total[k] ?? 0) + v;
  return total;
}

const profiler = new WindowProfiler();

const profileStart = (): Promise<void> => profiler.start(100);

async function profileStop(file: string): Promise<void> {
  await profiler.stop(file);
}

const fail = (err: unknown): never => {
  process.stderr.write(`push sim process: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
};

process.on('message', (m: unknown) => {
  try {
    if (isMessage(m, 'start')) {
      start(String(m['name']), String(m['hub']), m['ids'] as string[], (m['keys'] ?? {}) as Record<string, string>).catch(fail);
    } else if (isMessage(m, 'arm')) {
      const name = String(m['name']);
      mustSim(name);
      const id = Number(m['id']);
      const expect = Number(m['expect']);
      const a: Armed = {
        id,
        sim: name,
        expect,
        acks: m['acks'] !== false,
        seen: new Map(),
        notified: 0,
        acked: 0,
        ackErrors: 0,
        first: 0,
        last: 0,
        lastAck: 0,
        cpu0: process.cpuUsage(),
        timer: setTimeout(() => {
          if (armed === a) report(a, false);
        }, FANOUT_TIMEOUT_MS),
      };
      armed = a;
      sendToParent({ type: 'armed', id });
    } else if (isMessage(m, 'ack-status')) {
      const status = m['status'];
      mustSim(String(m['name'])).ackStatus = status === null ? null : (Number(status) as AckStatus);
      sendToParent({ type: 'ack-status' });
    } else if (isMessage(m, 'stream')) {
      const name = String(m['name']);
      if (m['on'] === true) streaming.add(name);
      else streaming.delete(name);
      sendToParent({ type: 'streaming', name });
    } else if (isMessage(m, 'stats')) {
      const cpu = process.cpuUsage();
      let idle = 0;
      let devices = 0;
      for (const s of sims.values()) {
        const st = s.stats();
        idle += st.idle;
        devices += st.devices;
      }
      sendToParent({ type: 'stats', counters: counters(), cpuUs: cpu.user + cpu.system, rssBytes: process.memoryUsage().rss, idle, devices });
    } else if (isMessage(m, 'profile-start')) {
      profileStart().then(() => sendToParent({ type: 'profiling' }), fail);
    } else if (isMessage(m, 'profile-stop')) {
      profileStop(String(m['file'])).then(() => sendToParent({ type: 'profiled' }), fail);
    } else if (isMessage(m, 'stop')) {
      const name = String(m['name']);
      const sim = mustSim(name);
      sim.stop({ deregister: m['deregister'] === true }).then(() => {
        for (const [k, v] of Object.entries(sim.counters)) retired[k] = (retired[k] ?? 0) + v;
        sims.delete(name);
        sendToParent({ type: 'stopped', name });
      }, fail);
    }
  } catch (err) {
    fail(err);
  }
});
process.on('disconnect', () => {
  void Promise.all([...sims.values()].map((s) => s.stop())).finally(() => process.exit(0));
});
