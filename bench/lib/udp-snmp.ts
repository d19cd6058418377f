/**
 * The kernel's UDP counters from /proc/net/snmp (the `Udp:` lines): RcvbufErrors counts datagrams dropped
 * because a socket's receive buffer was full. They are counted for the whole network namespace, so
 * other programs' traffic on the machine lands in them too.
 */
import { readFileSync } from 'node:fs';

export type UdpCounters = Readonly<Record<string, number>>;

export function udpCounters(): UdpCounters | null {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Udp: '));
    const [names, values] = lines;
    if (!names || !values) return null;
    const n = names.slice(5).trim().split(/\s+/);
    const v = values.slice(5).trim().split(/\s+/).map(Number);
    const out: Record<string, number> = {};
    n.forEach((name, i) => (out[name] = v[i] ?? Number.NaN));
    return out;
  } catch {
    return null;
  }
}

/** after - before, counter by counter (null when either is unknown). */
export function udpDelta(before: UdpCounters | null, after: UdpCounters | null): Record<string, number> | null {
  if (!before || !after) return null;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}
