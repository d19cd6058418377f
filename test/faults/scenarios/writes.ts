/**
 * Writes the fault scenarios made through the REST API, and the check that the hub kept exactly what it
 * promised: every write answered 2xx is stored byte for byte; a write refused (4xx/5xx) is not stored;
 * a write with no answer (the hub died) may be stored or not, but whole (both keys of a PATCH or neither).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Value } from './values.ts';

export interface Write {
  readonly device: string;
  readonly values: Readonly<Record<string, Value>>;
  readonly outcome: 'acked' | 'refused' | 'unanswered';
}

export interface Check {
  readonly lost: number;
  readonly altered: number;
  readonly torn: number;
  /** Refused writes found stored: the hub said "nothing was kept" and kept something. */
  readonly refusedKept: number;
  readonly unansweredPresent: number;
  readonly problems: string[];
}

/** Reads every device's values once and checks every write so far against them. */
export async function checkWrites(url: string, token: string, writes: readonly Write[]): Promise<Check> {
  const devices = new Map<string, Record<string, Value> | null>();
  for (const w of writes) {
    if (devices.has(w.device)) continue;
    const res = await fetch(`${url}/devices/${w.device}/values`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { values?: Record<string, Value> };
    devices.set(w.device, res.status === 200 && body.values ? body.values : null);
  }
  let lost = 0;
  let altered = 0;
  let torn = 0;
  let refusedKept = 0;
  let unansweredPresent = 0;
  const problems: string[] = [];
  const note = (p: string): void => void (problems.length < 10 && problems.push(p));
  for (const w of writes) {
    const stored = devices.get(w.device) ?? null;
    const keys = Object.keys(w.values);
    const present = keys.filter((k) => stored !== null && Object.hasOwn(stored, k));
    const same = present.filter((k) => isDeepStrictEqual(stored?.[k], w.values[k]));
    const shown = (): string => JSON.stringify(keys.map((k) => stored?.[k]));
    if (w.outcome === 'acked') {
      if (present.length < keys.length) {
        lost++;
        note(`lost: ${w.device} ${JSON.stringify(w.values)} was answered 2xx but is not stored`);
      } else if (same.length < keys.length) {
        altered++;
        note(`altered: ${w.device} sent ${JSON.stringify(w.values)}, stored ${shown()}`);
      }
    } else if (w.outcome === 'refused') {
      // A later write may set the same key only in the crash scenario, which never refuses; here any trace counts.
      if (same.length > 0) {
        refusedKept++;
        note(`refused but kept: ${w.device} ${JSON.stringify(w.values)}`);
      }
    } else {
      if (present.length > 0) unansweredPresent++;
      if (present.length !== 0 && present.length !== keys.length) {
        torn++;
        note(`torn: ${w.device} ${JSON.stringify(w.values)}: only ${present.join(', ')} stored`);
      } else if (same.length !== present.length) {
        altered++;
        note(`altered (unanswered): ${w.device} sent ${JSON.stringify(w.values)}, stored ${shown()}`);
      }
    }
  }
  return { lost, altered, torn, refusedKept, unansweredPresent, problems };
}
