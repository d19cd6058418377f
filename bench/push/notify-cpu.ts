/**
 * Figure b's CPU target as DESIGN.md words it: hub CPU per notification *including its ACK*. The fan-outs
 * of fanout.ts also carry each device's ack POST (decode, a durable commit, the 2.04), so here the same
 * registered devices apply the snapshot but send no ack POST (the simulator's ackStatus null), and the hub's
 * CPU is read at the commit and at the moment its last notification in flight was acknowledged.
 */
import { AckStatus } from '../../protocol/ack.ts';
import { monoNow } from '../../sim/clock.ts';
import { fmt, progress } from '../lib/progress.ts';
import { median, round } from '../lib/stats.ts';
import { udpCounters, udpDelta } from '../lib/udp-snmp.ts';
import { BENCH_GROUP } from './fixtures.ts';
import { quiesce } from './procs.ts';
import type { HubProcess, SimProcess } from './procs.ts';

export function notifyCpuMethod(repeats: number): string[] {
  return [
    `b') hub CPU per notification including its CoAP ACK (DESIGN.md's definition): after the timed fan-outs, the same N devices`,
    `  apply but send no ack POST, and ${repeats} more group changes go out. The hub's CPU (user + system) is read with the commit's`,
    `  durable stamp and again when its notifications in flight fall to 0 (the registry's acknowledged() is wrapped in the`,
    `  bench's hub process): the difference / N covers building and sending N notifications, reading N ACKs, the timer wheel,`,
    `  and the PATCH's HTTP reply. commit → hubAllAckedMs is when the hub had read the last ACK.`,
  ];
}

interface NotifyRep {
  readonly cpuUsPerNotification: number;
  readonly allNotifiedMs: number;
  readonly hubAllAckedMs: number;
  readonly rcvbufErrors: number | null;
  readonly hubRetransmissions: number;
  readonly complete: boolean;
}

async function once(hub: HubProcess, sim: SimProcess, n: number, rep: number, value: number): Promise<NotifyRep> {
  if (!(await quiesce(hub, sim))) progress('fanout', `warning: hub or devices still busy before notify-only fan-out ${rep}`);
  const m0 = await hub.metrics();
  const { report } = await sim.arm('bench', rep, n, false);
  const u0 = udpCounters();
  const t0 = monoNow();
  const r = await hub.api.request('PATCH', `/groups/${BENCH_GROUP}/values`, { values: { interval: value } });
  if (r.status !== 200) throw new Error(`PATCH /groups/${BENCH_GROUP}/values answered ${r.status}`);
  const f = await report;
  if (!(await quiesce(hub, sim))) progress('fanout', `warning: notifications still in flight after notify-only fan-out ${rep}`);
  const u1 = udpCounters();
  const m1 = await hub.metrics();
  const cs = await hub.commitsAndSends(t0);
  const commit = cs.list.find((c) => Number.isFinite(c.cpuUs));
  const drain = commit ? cs.drains.find((d) => d.at >= commit.at) : undefined;
  return {
    cpuUsPerNotification: commit && drain ? round((drain.cpuUs - commit.cpuUs) / n, 1) : Number.NaN,
    allNotifiedMs: commit ? round(f.lastNotifiedAt - commit.at, 2) : Number.NaN,
    hubAllAckedMs: commit && drain ? round(drain.at - commit.at, 2) : Number.NaN,
    rcvbufErrors: udpDelta(u0, u1)?.['RcvbufErrors'] ?? null,
    hubRetransmissions: m1.retransmissions - m0.retransmissions,
    complete: f.complete && f.notified === n && commit !== undefined && drain !== undefined,
  };
}

const summarize = (v: readonly number[], digits: number): { median: number; max: number; all: number[] } => ({
  median: round(median(v), digits),
  max: round(Math.max(...v), digits),
  all: v.map((x) => round(x, digits)),
});

/** `repeats` notify-only fan-outs to the N registered devices of simulator 'bench'; acks are back on after. */
export async function runNotifyCpu(hub: HubProcess, sim: SimProcess, n: number, repeats: number): Promise<Record<string, unknown>> {
  await sim.ackStatus('bench', null);
  const reps: NotifyRep[] = [];
  try {
    for (let rep = 0; rep < repeats; rep++) {
      const r = await once(hub, sim, n, 5000 + rep, 5000 + rep);
      reps.push(r);
      progress(
        'fanout',
        `N=${fmt(n)} notify-only #${rep + 1}: hub ${r.cpuUsPerNotification} µs CPU/notification incl. its ACK; commit → all notified ${r.allNotifiedMs} ms, ` +
          `hub read the last ACK ${r.hubAllAckedMs} ms; RcvbufErrors ${String(r.rcvbufErrors)}${r.complete ? '' : ' INCOMPLETE'}`,
      );
    }
  } finally {
    await sim.ackStatus('bench', AckStatus.Applied);
  }
  return {
    repeats: reps.length,
    allComplete: reps.every((r) => r.complete),
    hubCpuUsPerNotificationInclAck: summarize(reps.map((r) => r.cpuUsPerNotification), 1),
    fromCommit: {
      allNotifiedMs: summarize(reps.map((r) => r.allNotifiedMs), 2),
      hubAllAckedMs: summarize(reps.map((r) => r.hubAllAckedMs), 2),
    },
    udpRcvbufErrors: summarize(reps.map((r) => r.rcvbufErrors ?? Number.NaN), 0),
    hubRetransmissions: summarize(reps.map((r) => r.hubRetransmissions), 0),
  };
}
