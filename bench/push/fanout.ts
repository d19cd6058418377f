/**
 * Figure b: one group change to N registered devices. For each N, a fresh hub process (N devices in one
 * group) and a fresh simulator process; a warm-up on other devices; the hub's memory with the N devices
 * known but not observing, then with all N observing; then the same group change `repeats` times.
 */
import { resolve } from 'node:path';
import { monoNow } from '../../sim/clock.ts';
import { fmt, progress } from '../lib/progress.ts';
import { median, round } from '../lib/stats.ts';
import { udpCounters, udpDelta } from '../lib/udp-snmp.ts';
import { scratchDir } from '../store/fixtures.ts';
import { BENCH_GROUP, WARM_GROUP, benchId, warmId } from './fixtures.ts';
import { notifyCpuMethod, runNotifyCpu } from './notify-cpu.ts';
import { HubProcess, SimProcess, quiesce } from './procs.ts';
import type { FanoutReport } from './sim-process.ts';

export interface FanoutOptions {
  readonly sizes: readonly number[];
  readonly repeats: number;
  /** Untimed fan-outs to all N devices before the timed ones (the hub's code paths reach steady state). */
  readonly untimed: number;
  readonly warmDevices: number;
  readonly warmChanges: number;
  readonly keepaliveS: number;
  /** Fan-outs after the timed ones in which devices send no ack POST: the hub's CPU per notification incl. its ACK. */
  readonly notifyRepeats: number;
  /** Over coaps (DTLS 1.2 PSK, a session per device) instead of plain CoAP. */
  readonly secure: boolean;
  /** Write a CPU profile of the hub over the fan-outs of the largest size here. */
  readonly profile?: string;
  /** The same for the simulator process. */
  readonly simProfile?: string;
}

export const fanoutOptions = (quick: boolean, keepaliveS: number, profile: string | undefined, simProfile: string | undefined, secure = false): FanoutOptions => ({
  secure,
  sizes: quick ? [200, 1000] : [1000, 5000],
  repeats: quick ? 3 : 10,
  untimed: quick ? 1 : 2,
  warmDevices: quick ? 50 : 100,
  warmChanges: 3,
  keepaliveS,
  notifyRepeats: quick ? 3 : 5,
  ...(profile ? { profile } : {}),
  ...(simProfile ? { simProfile } : {}),
});

export function fanoutMethod(o: FanoutOptions): string[] {
  return [
    `b) one group change to N devices, N = ${o.sizes.map(fmt).join(' and ')}: for each N a fresh hub process (N devices bound to a`,
    `  4-field schema, all in one group; keepalive ${o.keepaliveS} s so no re-registration falls in a timed window) and a fresh`,
    `  simulator process (N devices, one UDP socket each, open-file limit raised with ulimit -n). Warm-up first: ${o.warmDevices} other`,
    `  devices register, get ${o.warmChanges} group changes, ack, and deregister (JIT and code paths warm). Memory: hub RSS after gc()`,
    `  with the N devices added but none observing, then after all N registered and acked their first snapshot;`,
    `  rssPerDevice = difference / N (it includes the relation, liveness, the 247 s de-duplication cache entries of the`,
    `  registration and ack exchanges, and the ack events in LevelDB's memtable). Then ${o.untimed} untimed and ${o.repeats} timed fan-outs, each`,
    `  once the hub has nothing in flight and every device is idle: PATCH /groups/${BENCH_GROUP}/values {"values":{"interval":k}} (k new).`,
    `  Timed per fan-out, on the shared monotonic clock: from the API call's start and from the hub's commit (the batch`,
    `  durable, stamped in the hub) to the last device reading its notification (allNotified) and to the last device`,
    `  receiving 2.04 for its ack POST (allAcked). The targets are judged from the commit. Hub CPU (process.cpuUsage, user +`,
    `  system) from just before the PATCH to the moment every device had its 2.04: it covers the HTTP request, validation,`,
    `  recomputing N snapshots, the commit, N notifications, N CoAP ACKs, N ack POSTs (decode, durable commits, 2.04`,
    `  replies), divided by N. UDP drops: /proc/net/snmp Udp RcvbufErrors (and InErrors) over the same window, machine-wide.`,
    `  The hub's CPU is also split at the commit (its CPU reading is taken with the commit stamp). For context, the hub process`,
    `  records when it called dgram send() for each notification (hubFirst/LastSendCallMs; for an unconnected socket Node`,
    `  sends within that call). Retransmissions: hub /metrics henge_coap_retransmissions and the simulator's own CON`,
    `  retransmissions. The simulator reads and ACKs every ready datagram before handling the snapshots (setImmediate), so a`,
    `  device's notified time is not delayed by other devices' decode and ack POST. Median and max over the ${o.repeats} fan-outs.`,
    ...notifyCpuMethod(o.notifyRepeats),
  ];
}

interface Rep {
  readonly rep: number;
  readonly apiStatus: number;
  readonly apiMs: number;
  readonly commitAfterApiStartMs: number;
  readonly commitOps: number;
  readonly fromCommit: { readonly firstNotifiedMs: number; readonly allNotifiedMs: number; readonly allAckedMs: number };
  /** In the hub: commit → its first and last send() call for a notification, and how many it made. */
  readonly hubSends: { readonly firstMs: number; readonly lastMs: number; readonly count: number };
  readonly fromApiCall: { readonly allNotifiedMs: number; readonly allAckedMs: number };
  readonly notified: number;
  readonly acked: number;
  readonly ackErrors: number;
  readonly complete: boolean;
  readonly hubCpuMs: number;
  readonly hubCpuUsPerNotification: number;
  /** Hub CPU from the PATCH's start to its batch being durable (HTTP, validation, N snapshots, commit). */
  readonly hubCpuToCommitMs: number;
  /** Hub CPU after the commit (N notifications, N ACKs, N ack POSTs with their commits), per notification. */
  readonly hubCpuAfterCommitUsPerNotification: number;
  readonly hubEventLoopBusy: number;
  readonly simCpuMs: number;
  readonly notificationsSent: number;
  readonly hubRetransmissions: number;
  readonly simRetransmissions: number;
  readonly simDuplicates: number;
  readonly udp: { readonly RcvbufErrors: number | null; readonly InErrors: number | null; readonly SndbufErrors: number | null };
}

const r2 = (v: number): number => round(v, 2);

function stat(reps: readonly Rep[], f: (r: Rep) => number, digits = 2): { median: number; max: number; all: number[] } {
  const v = reps.map(f);
  return { median: round(median(v), digits), max: round(Math.max(...v), digits), all: v.map((x) => round(x, digits)) };
}

async function fanoutOnce(hub: HubProcess, sim: SimProcess, n: number, rep: number, group: string, simName: string, value: number): Promise<Rep> {
  if (!(await quiesce(hub, sim))) progress('fanout', `warning: hub or devices still busy before fan-out ${rep} of ${fmt(n)}`);
  const m0 = await hub.metrics();
  const s0 = await sim.stats();
  const { report } = await sim.arm(simName, rep, n);
  const h0 = await hub.stats();
  const u0 = udpCounters();
  const t0 = monoNow();
  const r = await hub.api.request('PATCH', `/groups/${group}/values`, { values: { interval: value } });
  const t2xx = monoNow();
  const f: FanoutReport = await report;
  const h1 = await hub.stats();
  const u1 = udpCounters();
  const s1 = await sim.stats();
  const m1 = await hub.metrics();
  const cs = await hub.commitsAndSends(t0);
  const commit = cs.list[0];
  const sends = cs.notificationSends;
  const commitAt = commit?.at ?? Number.NaN;
  const hubCpuMs = (h1.cpuUserUs - h0.cpuUserUs + h1.cpuSystemUs - h0.cpuSystemUs) / 1000;
  const active = h1.eluActiveMs - h0.eluActiveMs;
  const idle = h1.eluIdleMs - h0.eluIdleMs;
  const udp = udpDelta(u0, u1);
  return {
    rep,
    apiStatus: r.status,
    apiMs: r2(t2xx - t0),
    commitAfterApiStartMs: r2(commitAt - t0),
    commitOps: commit?.ops ?? 0,
    fromCommit: { firstNotifiedMs: r2(f.firstNotifiedAt - commitAt), allNotifiedMs: r2(f.lastNotifiedAt - commitAt), allAckedMs: r2(f.lastAckedAt - commitAt) },
    fromApiCall: { allNotifiedMs: r2(f.lastNotifiedAt - t0), allAckedMs: r2(f.lastAckedAt - t0) },
    hubSends: { firstMs: r2((sends.first ?? Number.NaN) - commitAt), lastMs: r2((sends.last ?? Number.NaN) - commitAt), count: sends.count },
    notified: f.notified,
    acked: f.acked,
    ackErrors: f.ackErrors,
    complete: f.complete,
    hubCpuMs: r2(hubCpuMs),
    hubCpuUsPerNotification: round((hubCpuMs * 1000) / n, 1),
    hubCpuToCommitMs: commit ? r2((commit.cpuUs - h0.cpuUserUs - h0.cpuSystemUs) / 1000) : Number.NaN,
    hubCpuAfterCommitUsPerNotification: commit ? round((h1.cpuUserUs + h1.cpuSystemUs - commit.cpuUs) / n, 1) : Number.NaN,
    hubEventLoopBusy: round(active / Math.max(1e-9, active + idle), 2),
    simCpuMs: r2(f.simCpuMs),
    notificationsSent: m1.notificationsSent - m0.notificationsSent,
    hubRetransmissions: m1.retransmissions - m0.retransmissions,
    simRetransmissions: (s1.counters['retransmissions'] ?? 0) - (s0.counters['retransmissions'] ?? 0),
    simDuplicates: (s1.counters['duplicates'] ?? 0) - (s0.counters['duplicates'] ?? 0),
    udp: { RcvbufErrors: udp?.['RcvbufErrors'] ?? null, InErrors: udp?.['InErrors'] ?? null, SndbufErrors: udp?.['SndbufErrors'] ?? null },
  };
}

async function runSize(n: number, o: FanoutOptions, profile: string | undefined, simProfile: string | undefined): Promise<Record<string, unknown>> {
  const dir = await scratchDir(`push-fanout-${n}`);
  progress('fanout', `N=${fmt(n)}: starting the hub process (adding ${fmt(n)} + ${o.warmDevices} devices) and the simulator process`);
  const hub = await HubProcess.start({ data: dir.path, devices: n, warmDevices: o.warmDevices, keepaliveS: o.keepaliveS, secure: o.secure });
  const sim = SimProcess.spawn(n);
  try {
    progress('fanout', `N=${fmt(n)}: hub ready (startHub ${Math.round(hub.startupMs)} ms, snapshot ${hub.snapshotBytes} bytes, ${hub.maxInflight} notifications in flight at most); warm-up`);
    const warmIds = Array.from({ length: o.warmDevices }, (_, i) => warmId(i));
    if (o.warmDevices > 0) {
      await sim.start('warm', hub.coapAddress, warmIds, hub.keys);
      for (let w = 0; w < o.warmChanges; w++) await fanoutOnce(hub, sim, o.warmDevices, 1000 + w, WARM_GROUP, 'warm', 100 + w);
      await sim.stop('warm', true);
    }
    const mem0 = await hub.stats(true);
    progress('fanout', `N=${fmt(n)}: registering ${fmt(n)} devices`);
    const ids = Array.from({ length: n }, (_, i) => benchId(i));
    const started = await sim.start('bench', hub.coapAddress, ids, hub.keys);
    const mem1 = await hub.stats(true);
    if (started.registration.observing !== n) {
      throw new Error(`only ${started.registration.observing} of ${n} devices registered (${started.registration.failed} failed); open-file limit ${String(started.openFiles)}`);
    }
    progress(
      'fanout',
      `N=${fmt(n)}: ${fmt(mem1.observers)} observers; registered in ${Math.round(started.registration.ms)} ms, all idle after ${Math.round(started.readyMs)} ms; ` +
        `hub RSS +${fmt((mem1.rssBytes - mem0.rssBytes) / n)} B/device`,
    );
    for (let u = 0; u < o.untimed; u++) {
      const r = await fanoutOnce(hub, sim, n, 100 + u, BENCH_GROUP, 'bench', 500 + u);
      progress('fanout', `N=${fmt(n)} untimed #${u + 1}: commit → all notified ${r.fromCommit.allNotifiedMs} ms, all acked ${r.fromCommit.allAckedMs} ms`);
    }
    const reps: Rep[] = [];
    if (profile) await hub.profileStart();
    if (simProfile) await sim.profileStart();
    for (let rep = 0; rep < o.repeats; rep++) {
      const r = await fanoutOnce(hub, sim, n, rep, BENCH_GROUP, 'bench', 1000 + rep);
      reps.push(r);
      progress(
        'fanout',
        `N=${fmt(n)} #${rep + 1}: commit → hub send() calls ${r.hubSends.firstMs}..${r.hubSends.lastMs} ms, first notified ${r.fromCommit.firstNotifiedMs} ms, all notified ${r.fromCommit.allNotifiedMs} ms, all acked ${r.fromCommit.allAckedMs} ms ` +
          `(API call → ${r.fromApiCall.allNotifiedMs} / ${r.fromApiCall.allAckedMs} ms); hub ${r.hubCpuUsPerNotification} µs CPU/notification ` +
          `(${r.hubCpuToCommitMs} ms to the commit, ${r.hubCpuAfterCommitUsPerNotification} µs/notification after); sim ${round((r.simCpuMs * 1000) / n, 1)} µs/device; ` +
          `retransmissions hub ${r.hubRetransmissions} sim ${r.simRetransmissions}; RcvbufErrors ${String(r.udp.RcvbufErrors)}${r.complete ? '' : ' INCOMPLETE'}`,
      );
    }
    if (profile) {
      await hub.profileStop(profile);
      progress('fanout', `hub CPU profile of the N=${fmt(n)} fan-outs: ${profile}`);
    }
    if (simProfile) {
      await sim.profileStop(simProfile);
      progress('fanout', `simulator CPU profile of the N=${fmt(n)} fan-outs: ${simProfile}`);
    }
    const notifyOnly = await runNotifyCpu(hub, sim, n, o.notifyRepeats);
    const simStats = await sim.stats();
    return {
      devices: n,
      repeats: reps.length,
      allComplete: reps.every((r) => r.complete && r.notified === n && r.acked === n && r.ackErrors === 0),
      fromCommit: {
        allNotifiedMs: stat(reps, (r) => r.fromCommit.allNotifiedMs),
        allAckedMs: stat(reps, (r) => r.fromCommit.allAckedMs),
        firstNotifiedMs: stat(reps, (r) => r.fromCommit.firstNotifiedMs),
        hubFirstSendCallMs: stat(reps, (r) => r.hubSends.firstMs),
        hubLastSendCallMs: stat(reps, (r) => r.hubSends.lastMs),
      },
      fromApiCall: {
        allNotifiedMs: stat(reps, (r) => r.fromApiCall.allNotifiedMs),
        allAckedMs: stat(reps, (r) => r.fromApiCall.allAckedMs),
        apiReplyMs: stat(reps, (r) => r.apiMs),
        commitMs: stat(reps, (r) => r.commitAfterApiStartMs),
      },
      hubCpuUsPerNotification: stat(reps, (r) => r.hubCpuUsPerNotification, 1),
      hubCpuMs: stat(reps, (r) => r.hubCpuMs),
      hubCpuToCommitMs: stat(reps, (r) => r.hubCpuToCommitMs),
      hubCpuAfterCommitUsPerNotification: stat(reps, (r) => r.hubCpuAfterCommitUsPerNotification, 1),
      notifyOnly,
      simCpuUsPerDevice: stat(reps, (r) => (r.simCpuMs * 1000) / n, 1),
      hubMemory: {
        rssPerDeviceBytes: Math.round((mem1.rssBytes - mem0.rssBytes) / n),
        heapPerDeviceBytes: Math.round((mem1.heapUsedBytes - mem0.heapUsedBytes) / n),
        externalPerDeviceBytes: Math.round((mem1.externalBytes - mem0.externalBytes) / n),
        rssNoObserversMiB: round(mem0.rssBytes / 2 ** 20, 1),
        rssObservingMiB: round(mem1.rssBytes / 2 ** 20, 1),
        observers: mem1.observers,
      },
      udpRcvbufErrors: stat(reps, (r) => r.udp.RcvbufErrors ?? Number.NaN, 0),
      udpInErrors: stat(reps, (r) => r.udp.InErrors ?? Number.NaN, 0),
      hubRetransmissions: stat(reps, (r) => r.hubRetransmissions, 0),
      simRetransmissions: stat(reps, (r) => r.simRetransmissions, 0),
      notificationsSentPerFanout: stat(reps, (r) => r.notificationsSent, 0),
      sim: {
        openFileLimit: started.openFiles,
        registrationMs: round(started.registration.ms, 0),
        rssPerDeviceBytes: Math.round((started.rssAfter - started.rssBefore) / n),
        heapPerDeviceBytes: Math.round((started.heapAfter - started.heapBefore) / n),
        counters: simStats.counters,
      },
      hub: { startupMs: round(hub.startupMs, 0), snapshotBytes: hub.snapshotBytes, maxInflight: hub.maxInflight },
      reps,
    };
  } finally {
    await sim.close();
    await hub.close();
    await dir.remove();
  }
}

export async function runFanout(o: FanoutOptions): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const largest = Math.max(...o.sizes);
  for (const n of o.sizes) {
    const last = n === largest;
    out[String(n)] = await runSize(n, o, last && o.profile ? resolve(o.profile) : undefined, last && o.simProfile ? resolve(o.simProfile) : undefined);
  }
  return out;
}
