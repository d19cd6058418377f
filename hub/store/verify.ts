/**
 * `henge hub --verify`: replays the whole log into a fresh, in-memory state (the scratch location; the
 * data folder is only read) and compares every view with what the store holds.
 */
import type { HengeEvent } from '../domain/events.ts';
import { HubState, Touched } from '../domain/state.ts';
import { canonicalJson } from '../domain/schema.ts';
import { logKey } from '../domain/views.ts';
import type { Store } from './store.ts';

const MAX_LISTED_GAP = 100;

export const DifferenceKind = {
  Missing: 'missing',
  Extra: 'extra',
  Different: 'different',
} as const;
export type DifferenceKind = (typeof DifferenceKind)[keyof typeof DifferenceKind];

export interface Difference {
  readonly key: string;
  readonly kind: DifferenceKind;
  /** What replaying the log gives. */
  readonly expected?: string;
  /** What the store holds. */
  readonly actual?: string;
}

export interface VerifyReport {
  readonly events: number;
  readonly views: number;
  readonly differences: readonly Difference[];
  readonly ms: number;
}

/** Key order never counts as a difference; text that is not JSON is compared as it is. */
function canonical(text: string): string {
  try {
    return canonicalJson(JSON.parse(text));
  } catch {
    return text;
  }
}

export async function verifyStore(store: Store, onProgress?: (events: number) => void): Promise<VerifyReport> {
  const t0 = performance.now();
  const rebuilt = new HubState();
  let count = 0;
  let expectedSeq = 1;
  const differences: Difference[] = [];
  for await (const [seq, json] of store.log()) {
    if (seq > expectedSeq) {
      // A gap: name each missing entry, or the range when it is long.
      if (seq - expectedSeq <= MAX_LISTED_GAP) {
        for (let n = expectedSeq; n < seq; n++) differences.push({ key: logKey(n), kind: DifferenceKind.Missing, expected: `event ${n}` });
      } else {
        differences.push({ key: `${logKey(expectedSeq)}..${logKey(seq - 1)}`, kind: DifferenceKind.Missing, expected: `events ${expectedSeq} to ${seq - 1}` });
      }
    }
    expectedSeq = seq + 1;
    const e = JSON.parse(json) as HengeEvent;
    const t = new Touched();
    rebuilt.apply(e, t);
    rebuilt.refreshSnapshots(t, e.seq);
    count++;
    if (onProgress && count % 100_000 === 0) onProgress(count);
  }
  const expected = new Map(rebuilt.viewEntries());
  let views = 0;
  for await (const [key, actual] of store.views()) {
    views++;
    const want = expected.get(key);
    expected.delete(key);
    if (want === undefined) differences.push({ key, kind: DifferenceKind.Extra, actual });
    else if (canonical(want) !== canonical(actual)) differences.push({ key, kind: DifferenceKind.Different, expected: want, actual });
  }
  for (const [key, want] of expected) differences.push({ key, kind: DifferenceKind.Missing, expected: want });
  return { events: count, views, differences, ms: performance.now() - t0 };
}
