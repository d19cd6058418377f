/**
 * Figure a: one device, sequential changes. Each change is a PATCH of the device's `counter` through the
 * REST API; the next starts once the device's ack of this one was answered 2.04. Times come from three
 * processes on one monotonic clock: the bench (request sent, 2xx received), the hub (its batch durable)
 * and the simulator (notification received, ack sent, ack answered).
 */
import { fmt, progress, throttled } from '../lib/progress.ts';
import { round, summarize } from '../lib/stats.ts';
import type { Summary } from '../lib/stats.ts';
import { monoNow } from '../../sim/clock.ts';
import { scratchDir } from '../store/fixtures.ts';
import { benchId } from './fixtures.ts';
import { HubProcess, SimProcess } from './procs.ts';
import type { AckMessage } from './procs.ts';

export interface LatencyOptions {
  readonly changes: number;
  readonly warmup: number;
  readonly keepaliveS: number;
  /** Over coaps (DTLS 1.2 PSK) instead of plain CoAP. */
  readonly secure: boolean;
}

export const latencyOptions = (quick: boolean, keepaliveS: number, secure = false): LatencyOptions => ({ changes: quick ? 100 : 1000, warmup: quick ? 20 : 50, keepaliveS, secure });

export function latencyMethod(o: LatencyOptions): string[] {
  return [
    `a) change → applied and acked, 1 device: the hub (startHub, REST API and CoAP on free loopback ports, LevelDB with fsync)`,
    `  in one child process; one simulated device (sim/, real UDP socket) in another. ${fmt(o.changes)} sequential changes after`,
    `  ${o.warmup} untimed ones: PATCH /devices/{id}/values {"values":{"counter":k}} from this process; the next change starts once`,
    `  the device's ack POST of this one was answered 2.04. Headline interval commitToAckMs: from the hub's batch holding the`,
    `  change being durable (LevelDB write with fsync resolved, stamped in the hub process) to the simulator receiving the 2.04`,
    `  for its ack POST. It includes the notification (CON), the device's ACK, decode + version rule, the ack POST and the`,
    `  hub recording that ack durably (a second commit with fsync) before answering. Also given: from sending the PATCH and`,
    `  from receiving its 2xx (the API answers after the commit; the notification leaves before the reply is written).`,
    `  The ack's own part is split at the hub batch holding it (ackPostToDurableMs, ackDurableTo204Ms).`,
    `  Times are process.hrtime (CLOCK_MONOTONIC, one clock for all processes). Percentiles are exact (nearest rank).`,
  ];
}

interface Sample {
  readonly t0: number;
  readonly t2xx: number;
  readonly ack: AckMessage;
}

export async function runLatency(o: LatencyOptions): Promise<Record<string, unknown>> {
  const dir = await scratchDir('push-latency');
  progress('latency', 'starting the hub process (1 device) and the simulator process');
  const hub = await HubProcess.start({ data: dir.path, devices: 1, warmDevices: 0, keepaliveS: o.keepaliveS, secure: o.secure });
  const sim = SimProcess.spawn(1);
  const id = benchId(0);
  try {
    const acks = new Map<number, AckMessage>();
    let waiting: { version: number; resolve: (a: AckMessage) => void } | null = null;
    const unsubscribe = await sim.stream('lat', (a) => {
      acks.set(a.version, a);
      if (waiting && waiting.version === a.version) {
        const w = waiting;
        waiting = null;
        w.resolve(a);
      }
    });
    const started = await sim.start('lat', hub.coapAddress, [id], hub.keys);
    if (started.registration.observing !== 1) throw new Error(`the device did not register: ${JSON.stringify(started.registration)}`);
    const ackOf = (version: number): Promise<AckMessage> => {
      const have = acks.get(version);
      if (have) return Promise.resolve(have);
      return new Promise<AckMessage>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ack for version ${version} within 10 s`)), 10_000);
        waiting = {
          version,
          resolve: (a) => {
            clearTimeout(t);
            resolve(a);
          },
        };
      });
    };
    let k = 1000;
    const change = async (): Promise<Sample> => {
      const t0 = monoNow();
      const r = await hub.api.request<{ seq: number | null }>('PATCH', `/devices/${id}/values`, { values: { counter: ++k } });
      const t2xx = monoNow();
      if (r.status !== 200 || r.body.seq === null) throw new Error(`PATCH answered ${r.status}: ${JSON.stringify(r.body)}`);
      const ack = await ackOf(r.body.seq);
      acks.delete(r.body.seq);
      return { t0, t2xx, ack };
    };
    progress('latency', `${o.warmup} untimed changes`);
    for (let i = 0; i < o.warmup; i++) await change();
    const samples: Sample[] = [];
    const tick = throttled('latency');
    const sim0 = await sim.stats();
    const hub0 = await hub.metrics();
    for (let i = 0; i < o.changes; i++) {
      samples.push(await change());
      tick(() => `${fmt(i + 1)} / ${fmt(o.changes)} changes`);
    }
    unsubscribe();
    const sim1 = await sim.stats();
    const hub1 = await hub.metrics();
    const first = samples[0];
    const commits = first ? await hub.commits(first.t0) : [];
    // Sequential: the first durable batch after a change's request is that change (the previous ack's batch came before).
    // The next one, before the 2.04 reached the device, is the batch holding the device's ack.
    const commitOf: number[] = [];
    const ackCommitOf: number[] = [];
    let c = 0;
    for (const s of samples) {
      while (c < commits.length && (commits[c]?.at ?? 0) < s.t0) c++;
      const stamp = commits[c];
      if (!stamp || stamp.at > s.t2xx) throw new Error('no durable batch between a change request and its reply: commit stamps are missing');
      commitOf.push(stamp.at);
      const ackStamp = commits[c + 1];
      ackCommitOf.push(ackStamp && ackStamp.at >= s.ack.sentAt && ackStamp.at <= s.ack.at ? ackStamp.at : Number.NaN);
      c++;
    }
    const ms = (f: (s: Sample, i: number) => number): Summary => summarize(samples.map(f), 3);
    const commitToAck = ms((s, i) => s.ack.at - (commitOf[i] ?? Number.NaN));
    const result = {
      devices: 1,
      changes: samples.length,
      commitToAckMs: { what: 'hub batch with the change durable (fsync) → simulator receives 2.04 for its ack POST', ...commitToAck },
      target: 'p99 <= 5 ms (commitToAckMs)',
      met: commitToAck.p99 <= 5,
      requestToAckMs: { what: 'PATCH sent → 2.04 for the ack POST (includes HTTP, validation, the commit)', ...ms((s) => s.ack.at - s.t0) },
      apiReplyToAckMs: { what: 'PATCH 2xx received → 2.04 for the ack POST', ...ms((s) => s.ack.at - s.t2xx) },
      apiRequestMs: { what: 'PATCH sent → 2xx received', ...ms((s) => s.t2xx - s.t0) },
      commitToNotifiedMs: { what: 'hub batch durable → notification datagram read by the simulator', ...ms((s, i) => s.ack.notifiedAt - (commitOf[i] ?? Number.NaN)) },
      notifiedToAckAnsweredMs: {
        what: 'notification read → 2.04 for the ack POST (ACK, decode, ack POST, hub records the ack with fsync)',
        ...ms((s) => s.ack.at - s.ack.notifiedAt),
      },
      ackPostToDurableMs: {
        what: 'ack POST sent by the device → the hub batch holding that ack durable (decode, commit, fsync)',
        ...ms((s, i) => (ackCommitOf[i] ?? Number.NaN) - s.ack.sentAt),
      },
      ackDurableTo204Ms: { what: 'the ack durable → 2.04 read by the device', ...ms((s, i) => s.ack.at - (ackCommitOf[i] ?? Number.NaN)) },
      ackRetransmits: samples.reduce((n, s) => n + s.ack.retransmits, 0),
      hubRetransmissions: hub1.retransmissions - hub0.retransmissions,
      simRetransmissions: (sim1.counters['retransmissions'] ?? 0) - (sim0.counters['retransmissions'] ?? 0),
      simDuplicates: (sim1.counters['duplicates'] ?? 0) - (sim0.counters['duplicates'] ?? 0),
      snapshotBytes: hub.snapshotBytes,
    };
    progress('latency', `commit → acked p50 ${round(commitToAck.p50, 2)} ms, p99 ${round(commitToAck.p99, 2)} ms`);
    return result;
  } finally {
    await sim.close();
    await hub.close();
    await dir.remove();
  }
}
