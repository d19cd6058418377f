/**
 * `bench:push --dtls`: the same latency and fan-out parts again over coaps (DTLS 1.2 PSK, a session per
 * simulated device, each with its own key), and the DTLS figures of the security issue side by side with
 * the plain ones of the same run: the ratios (target: within 1.5×), handshakes, and memory per session.
 */
import { get, num } from '../lib/json.ts';
import type { Json } from '../lib/json.ts';
import { round } from '../lib/stats.ts';


export function dtlsMethod(): string[] {
  return [
    `d) --dtls: the latency and fan-out parts run a second time with the hub's device endpoint on coaps (DTLS 1.2, PSK,`,
    `  TLS_PSK_WITH_AES_128_CCM_8; OpenSSL through dtls/) and every simulated device on its own DTLS session with its own key`,
    `  (issued by the hub's keystore, passed to the simulator). Ratios DTLS / plain use the medians (p99 for latency) of`,
    `  the same run. Handshakes per second: N devices starting at once (200 registrations in flight), from the first`,
    `  ClientHello to the last registration answered, so each counts a cookie exchange, a PSK handshake and a CoAP`,
    `  registration; the hub allows 256 handshakes in progress, all of them from the simulator's one address (the`,
    `  per-address cap, 4 by default, is raised to 256 as \`--handshakes-per-address\` does for a NAT). Memory per DTLS session: the hub's RSS (and heap) per`,
    `  observing device over DTLS minus the same over plain CoAP.`,
  ];
}

export function dtlsFigures(results: Json): Json {
  const out: Json = {};
  const lp = results['latency'];
  const ld = results['latencyDtls'];
  if (lp && ld) {
    out['latencyP99'] = { plainMs: num(lp, 'commitToAckMs', 'p99'), dtlsMs: num(ld, 'commitToAckMs', 'p99'), ratio: round(num(ld, 'commitToAckMs', 'p99') / num(lp, 'commitToAckMs', 'p99'), 2) };
  }
  const fp = results['fanout'] as Json | undefined;
  const fd = results['fanoutDtls'] as Json | undefined;
  if (fp && fd) {
    for (const n of Object.keys(fd)) {
      const p = fp[n];
      const d = fd[n];
      if (!p || !d) continue;
      const ratio = (...path: string[]): number => round(num(d, ...path) / num(p, ...path), 2);
      out[`fanout${n}`] = {
        allNotifiedMs: { plain: num(p, 'fromCommit', 'allNotifiedMs', 'median'), dtls: num(d, 'fromCommit', 'allNotifiedMs', 'median'), ratio: ratio('fromCommit', 'allNotifiedMs', 'median') },
        allAckedMs: { plain: num(p, 'fromCommit', 'allAckedMs', 'median'), dtls: num(d, 'fromCommit', 'allAckedMs', 'median'), ratio: ratio('fromCommit', 'allAckedMs', 'median') },
        hubCpuUsPerNotificationInclAck: {
          plain: num(p, 'notifyOnly', 'hubCpuUsPerNotificationInclAck', 'median'),
          dtls: num(d, 'notifyOnly', 'hubCpuUsPerNotificationInclAck', 'median'),
          ratio: ratio('notifyOnly', 'hubCpuUsPerNotificationInclAck', 'median'),
        },
        handshakesPerSecond: round(Number(n) / (num(d, 'sim', 'registrationMs') / 1000), 0),
        registrationsPerSecondPlain: round(Number(n) / (num(p, 'sim', 'registrationMs') / 1000), 0),
        hubBytesPerSession: {
          rss: num(d, 'hubMemory', 'rssPerDeviceBytes') - num(p, 'hubMemory', 'rssPerDeviceBytes'),
          heap: num(d, 'hubMemory', 'heapPerDeviceBytes') - num(p, 'hubMemory', 'heapPerDeviceBytes'),
        },
        withinOneAndAHalf: ratio('fromCommit', 'allNotifiedMs', 'median') <= 1.5 && ratio('fromCommit', 'allAckedMs', 'median') <= 1.5,
      };
    }
  }
  return out;
}

export function dtlsSummary(f: Json): string[] {
  const lines: string[] = [];
  const l = f['latencyP99'];
  if (l) lines.push(`d) over DTLS: commit → acked p99 ${num(l, 'dtlsMs')} ms (plain ${num(l, 'plainMs')} ms, ×${num(l, 'ratio')})`);
  for (const [k, v] of Object.entries(f)) {
    if (!k.startsWith('fanout')) continue;
    lines.push(
      `d) N=${k.slice(6)} over DTLS: all notified ${num(v, 'allNotifiedMs', 'dtls')} ms (×${num(v, 'allNotifiedMs', 'ratio')}), all acked ${num(v, 'allAckedMs', 'dtls')} ms (×${num(v, 'allAckedMs', 'ratio')}), ` +
        `hub ${num(v, 'hubCpuUsPerNotificationInclAck', 'dtls')} µs CPU/notification incl. ACK (×${num(v, 'hubCpuUsPerNotificationInclAck', 'ratio')}); ` +
        `${num(v, 'handshakesPerSecond')} handshakes+registrations/s (plain registrations ${num(v, 'registrationsPerSecondPlain')}/s); ` +
        `hub memory per session ${num(v, 'hubBytesPerSession', 'rss')} B RSS, ${num(v, 'hubBytesPerSession', 'heap')} B heap [target within 1.5×: ${get(v, 'withinOneAndAHalf') === true ? 'meets' : 'MISSES'}]`,
    );
  }
  return lines;
}
