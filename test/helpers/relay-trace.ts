/**
 * What the lossy relay (lossy-relay.ts) did to one device's datagrams, and what that explains. The relay
 * records every datagram of a device endpoint as a TraceEvent; each transmission of a confirmable exchange
 * is paired with the answers to it, both ways:
 *  - a request up (the device's CON, one exchange per message id) is answered by the hub's ACK or RST
 *    with that message id (a piggybacked response, or an empty ACK);
 *  - a notification down (the hub's CON) is answered by the device's empty ACK or RST with its message
 *    id. The hub's notifications to a device form one chain: a newer snapshot goes out as the next
 *    retransmission under a new message id and keeps the counter (RFC 7641 §4.5.2).
 * A transmission failed through the network when the relay dropped it, or delivered it and dropped
 * every answer that came back before the next transmission. A transmission that was delivered and got
 * no answer at all is the peer's doing, not the network's: it ends a run of failures like a success does.
 */

/** One datagram through the relay: when (wall-clock ms), which way, CoAP type and code, message id, dropped or not. */
export interface TraceEvent {
  readonly t: number;
  readonly up: boolean;
  /** 0 CON, 1 NON, 2 ACK, 3 RST. */
  readonly type: number;
  /** The code byte (class << 5 | detail): 0 empty, 2 POST, 69 2.05... */
  readonly code: number;
  readonly mid: number;
  readonly dropped: boolean;
}

const CON = 0;
const ACK = 2;
const RST = 3;

/** The event a datagram is, or null if it has no CoAP header. */
export function traceEvent(b: Uint8Array, up: boolean, dropped: boolean, t: number): TraceEvent | null {
  const [first, code, hi, lo] = [b[0], b[1], b[2], b[3]];
  if (first === undefined || code === undefined || hi === undefined || lo === undefined || first >> 6 !== 1) return null;
  return { t, up, type: (first >> 4) & 0x03, code, mid: (hi << 8) | lo, dropped };
}

/** One transmission of an exchange, and what became of it. */
interface Attempt {
  readonly t: number;
  /** Only an answer with this message id counts (the hub settles a notification by the ACK of its newest id). */
  readonly mid: number;
  /** Dropped, or delivered with every answer to it dropped. */
  failed: boolean;
  /** An answer got through. */
  answered: boolean;
  /** An answer came back at all. */
  answeredAtAll: boolean;
}

/** A request (one message id) or a chain of notifications (until one is acknowledged). */
interface Exchange {
  readonly up: boolean;
  /** The code of its first transmission: 1 GET (a registration), 2 POST (an ack), 69 2.05 (a notification)... */
  readonly code: number;
  readonly attempts: Attempt[];
  /** When an answer to it got through, if one did. */
  settledAt: number | null;
}

/** Every exchange in the trace up to `until`, each transmission paired with its answers. */
function exchangesOf(events: readonly TraceEvent[], until: number): Exchange[] {
  const all: Exchange[] = [];
  const requests = new Map<number, Exchange>();
  let notifications: Exchange | null = null;
  for (const e of events) {
    if (e.t > until) break;
    if (e.type === CON && e.code !== 0) {
      let x: Exchange | null | undefined = e.up ? requests.get(e.mid) : notifications;
      if (!x) {
        x = { up: e.up, code: e.code, attempts: [], settledAt: null };
        all.push(x);
        if (e.up) requests.set(e.mid, x);
        else notifications = x;
      }
      x.attempts.push({ t: e.t, mid: e.mid, failed: e.dropped, answered: false, answeredAtAll: false });
      continue;
    }
    if (e.type !== ACK && e.type !== RST) continue;
    // An answer going up answers a notification; going down, a request.
    const x = e.up ? notifications : requests.get(e.mid);
    const a = x?.attempts.at(-1);
    if (!x || !a || a.mid !== e.mid) continue;
    a.answeredAtAll = true;
    if (e.dropped) {
      if (!a.answered) a.failed = true;
      continue;
    }
    a.answered = true;
    a.failed = false;
    x.settledAt = e.t;
    // Settled: the hub's next notification starts a new chain; a request's id is done.
    if (e.up) notifications = null;
    else requests.delete(e.mid);
  }
  return all;
}

export interface CutReport {
  /** The most transmissions of one exchange that failed through the network in a row. */
  readonly maxRun: number;
  /** When that run's exchange last sent (wall-clock ms), and which way it went ('up': a request). */
  readonly at: number;
  readonly direction: 'up' | 'down' | null;
}

/** RFC 7252 §4.8.2, default parameters: an exchange's first transmission to its sender giving up. */
const MAX_TRANSMIT_WAIT_MS = 93_000;
/** RFC 7252 ACK_TIMEOUT × ACK_RANDOM_FACTOR: the longest first wait for an answer. */
const MAX_FIRST_TIMEOUT_MS = 3_000;

/**
 * The most transmissions of one confirmable exchange the network failed in a row (see the top of this
 * file), among the exchanges live in [from, until]: one with a transmission in it, or one unsettled at
 * `from` and at most MAX_TRANSMIT_WAIT old. Nothing after `until` is read. 4 means the exchange needed its
 * fifth and last transmission (RFC 7252: 30-45 s after its first with the default parameters), 5 that it
 * was cut entirely.
 */
export function cutAttempts(events: readonly TraceEvent[], from = -Infinity, until = Infinity): CutReport {
  let best: CutReport = { maxRun: 0, at: 0, direction: null };
  for (const x of exchangesOf(events, until)) {
    const first = x.attempts[0]?.t ?? -Infinity;
    const last = x.attempts.at(-1)?.t ?? -Infinity;
    const unsettledAtFrom = x.settledAt === null || x.settledAt >= from;
    if (!(last >= from || (unsettledAtFrom && first >= from - MAX_TRANSMIT_WAIT_MS))) continue;
    let run = 0;
    for (const a of x.attempts) {
      // A transmission delivered and never answered is the peer's doing: it ends a run like a success.
      run = a.failed ? run + 1 : 0;
      if (run > best.maxRun) best = { maxRun: run, at: last, direction: x.up ? 'up' : 'down' };
    }
  }
  return best;
}

const GET = 1;
const POST = 2;
const CONTENT = 69;

/** Failed transmissions' waits of `x` within [from, until]: each until the exchange's next transmission, the last one's until giving up. */
function waits(x: Exchange, from: number, until: number, into: Array<[number, number]>): void {
  const first = x.attempts[0];
  const second = x.attempts[1];
  const firstTimeout = first && second ? second.t - first.t : MAX_FIRST_TIMEOUT_MS;
  x.attempts.forEach((a, i) => {
    if (!a.failed) return;
    // After the last transmission RFC 7252 waits twice the previous timeout before giving up.
    const end = x.attempts[i + 1]?.t ?? a.t + firstTimeout * 2 ** i;
    const s = Math.max(a.t, from);
    const e = Math.min(end, until);
    if (e > s) into.push([s, e]);
  });
}

/** The length of the union of `spans`. */
function covered(spans: Array<[number, number]>): number {
  spans.sort((p, q) => p[0] - q[0]);
  let total = 0;
  let reach = -Infinity;
  for (const [s, e] of spans) {
    if (e <= reach) continue;
    total += e - Math.max(s, reach);
    reach = e;
  }
  return total;
}

export interface CriticalPath {
  /** When the relay first passed the hub's 2.05 to the device after `from` (a notification, or a registration's answer), if it did. */
  readonly snapshotAt: number | null;
  /** How long the path spent waiting out transmissions the network failed. */
  readonly lossWaitMs: number;
}

/**
 * The exchanges a device must get through to converge after a change at `from` (its ack recorded by the
 * hub at `until`), and how long they waited out transmissions the network failed (each failed
 * transmission's wait until its exchange's next one; overlaps merged):
 *  1. until the latest snapshot reaches the device: the hub's notifications, and the device's
 *     registrations (whose answer carries the snapshot too). Every 2.05 the hub sends after the change
 *     carries the latest snapshot;
 *  2. from then on: the device's ack POSTs.
 * Nothing else counts: a request the device let stand in the ack's way is the device's time, not the
 * network's. What is left of `until - from` once the waits are taken off is what the clients and the hub took.
 */
export function criticalPath(events: readonly TraceEvent[], from: number, until: number): CriticalPath {
  const delivered = events.find((e) => e.t >= from && e.t <= until && !e.up && !e.dropped && e.code === CONTENT && (e.type === CON || e.type === ACK));
  const snapshotAt = delivered?.t ?? null;
  const split = snapshotAt ?? until;
  const spans: Array<[number, number]> = [];
  for (const x of exchangesOf(events, until)) {
    if (!x.up || x.code === GET) waits(x, from, split, spans);
    else if (x.code === POST) waits(x, split, until, spans);
  }
  return { snapshotAt, lossWaitMs: covered(spans) };
}

const TYPES = ['CON', 'NON', 'ACK', 'RST'] as const;

/** One line per datagram from `since` on, timed from `origin`, for a test's diagnostics: "  12034 ms up   CON 0.02 mid 4711 dropped". */
export function formatTrace(events: readonly TraceEvent[], origin = 0, since = origin): string {
  return events
    .filter((e) => e.t >= since)
    .map((e) => {
      const code = e.code === 0 ? 'empty' : `${e.code >> 5}.${String(e.code & 0x1f).padStart(2, '0')}`;
      return `${String(e.t - origin).padStart(7)} ms ${e.up ? 'up  ' : 'down'} ${TYPES[e.type] ?? '?'} ${code.padEnd(5)} mid ${String(e.mid).padStart(5)}${e.dropped ? ' dropped' : ''}`;
    })
    .join('\n');
}
