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
import { MessageKind, Transmission, option, parseMessage, readBlock } from '../../protocol/coap.ts';
import { Code } from '../../protocol/coap-reader.ts';
import { decodeSnapshot } from '../../protocol/snapshot.ts';


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
  /** A 2.05 carrying a whole snapshot: its version. */
  readonly version?: number;
}

/** The event a datagram is, or null if it has no CoAP header. A 2.05 carrying a whole snapshot gets its version. */
export function traceEvent(b: Uint8Array, up: boolean, dropped: boolean, t: number): TraceEvent | null {
  const [first, code, hi, lo] = [b[0], b[1], b[2], b[3]];
  if (first === undefined || code === undefined || hi === undefined || lo === undefined || first >> 6 !== 1) return null;
  const e = { t, up, type: (first >> 4) & 0x03, code, mid: (hi << 8) | lo, dropped };
  const version = code === Code.Content ? snapshotVersion(b) : undefined;
  return version === undefined ? e : { ...e, version };
}

/** The version of the snapshot a 2.05 carries whole, if it does (a first block of several, or anything else, has none). */
function snapshotVersion(b: Uint8Array): number | undefined {
  try {
    const msg = parseMessage(b);
    const block2 = option(msg, 'Block2');
    if (block2 !== undefined && readBlock(block2).more) return undefined;
    return decodeSnapshot(msg.payload).version;
  } catch {
    return undefined; // not a snapshot: the event simply has no version
  }
}

/** One transmission of an exchange, and what became of it. */
interface Attempt {
  readonly t: number;
  /** Only an answer with this message id counts (the hub settles a notification by the ACK of its newest id). */
  readonly mid: number;
  /** Dropped, or delivered with every answer to it dropped. */
  failed: boolean;
  /** The relay passed it on. */
  readonly delivered: boolean;
  /** An answer got through. */
  answered: boolean;
}

/**
 * A request (one message id) or a chain of notifications. The hub's chain ends when an ACK of its newest
 * id or an RST of any of its ids reaches the hub, when a registration from the device reaches it (the
 * relation is replaced), or after its fifth transmission (the hub gives up).
 */
interface Exchange {
  readonly up: boolean;
  /** The code of its first transmission: 1 GET (a registration), 2 POST (an ack), 69 2.05 (a notification)... */
  readonly code: number;
  readonly attempts: Attempt[];
  /** Every message id it used (a notification chain changes id with each newer snapshot). */
  readonly mids: Set<number>;
  /** When an answer to it got through, if one did. */
  settledAt: number | null;
  /**
   * When its wait ended other than by its own next transmission: the device sent another request (it
   * abandoned or gave up this one; NSTART 1), or the hub's relation was replaced or reset.
   */
  endedAt: number | null;
}

const TRANSMISSIONS = Transmission.maxRetransmit + 1;

/** Every exchange in the trace up to `until`, each transmission paired with its answers. */
function exchangesOf(events: readonly TraceEvent[], until: number): Exchange[] {
  const all: Exchange[] = [];
  const requests = new Map<number, Exchange>();
  let notifications: Exchange | null = null;
  let lastRequest: Exchange | null = null;
  for (const e of events) {
    if (e.t > until) break;
    if (e.type === MessageKind.Con && e.code !== Code.Empty) {
      let x: Exchange | null | undefined = e.up ? requests.get(e.mid) : notifications;
      if (!x) {
        x = { up: e.up, code: e.code, attempts: [], mids: new Set(), settledAt: null, endedAt: null };
        all.push(x);
        if (e.up) requests.set(e.mid, x);
        else notifications = x;
      }
      if (e.up && x !== lastRequest) {
        if (lastRequest && lastRequest.endedAt === null) lastRequest.endedAt = e.t;
        lastRequest = x;
      }
      const firstDelivery = !e.dropped && !x.attempts.some((a) => a.delivered);
      x.mids.add(e.mid);
      x.attempts.push({ t: e.t, mid: e.mid, failed: e.dropped, delivered: !e.dropped, answered: false });
      if (!e.up && x.attempts.length >= TRANSMISSIONS) notifications = null;
      // A registration reaching the hub (not a repeat it answers from its cache) replaces the relation.
      if (e.up && e.code === Code.Get && firstDelivery && notifications) {
        notifications.endedAt = e.t;
        notifications = null;
      }
      continue;
    }
    if (e.type !== MessageKind.Ack && e.type !== MessageKind.Rst) continue;
    // An answer going up answers a notification; going down, a request.
    const x = e.up ? notifications : requests.get(e.mid);
    if (!x) continue;
    if (e.up && e.type === MessageKind.Rst && !e.dropped && x.mids.has(e.mid)) {
      // An RST of any of the chain's ids ends the relation at the hub.
      x.settledAt = e.t;
      x.endedAt = e.t;
      notifications = null;
    }
    const a = x.attempts.at(-1);
    if (!a || a.mid !== e.mid) continue;
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
const MAX_TRANSMIT_WAIT_MS = Transmission.ackTimeoutMs * (2 ** (Transmission.maxRetransmit + 1) - 1) * Transmission.ackRandomFactor;
/** RFC 7252 ACK_TIMEOUT × ACK_RANDOM_FACTOR: the longest first wait for an answer. */
const MAX_FIRST_TIMEOUT_MS = Transmission.ackTimeoutMs * Transmission.ackRandomFactor;

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

/** Relay jitter and timer granularity (the hub's wheel ticks every 50 ms) on top of a wait RFC 7252 allows. */
const SLACK_MS = 100;

/**
 * Failed transmissions' waits of `x` within [from, until]: each until the exchange's next transmission,
 * at most the timeout RFC 7252 allows that transmission (ACK_TIMEOUT × ACK_RANDOM_FACTOR, doubled per
 * retransmission), so a sender that waits longer than that gets no excuse for it; the last one's also
 * ends when something else ended the exchange (Exchange.endedAt).
 */
function waits(x: Exchange, from: number, until: number, into: Array<[number, number]>): void {
  x.attempts.forEach((a, i) => {
    if (!a.failed) return;
    const allowed = a.t + MAX_FIRST_TIMEOUT_MS * 2 ** i + SLACK_MS;
    const next = x.attempts[i + 1]?.t ?? x.endedAt ?? Infinity;
    const s = Math.max(a.t, from);
    const e = Math.min(next, allowed, until);
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
  /** When the relay first passed the hub's 2.05 with the latest snapshot to the device (a notification, or a registration's answer), if it did by `until`. */
  readonly snapshotAt: number | null;
  /** How long the path spent waiting out transmissions the network failed. */
  readonly lossWaitMs: number;
}

/**
 * The exchanges a device must get through to converge after a change at `from` (its ack recorded by the
 * hub at `until`), and how long they waited out transmissions the network failed (each failed
 * transmission's wait until its exchange's next one; overlaps merged):
 *  1. until the latest snapshot (`version`) reaches the device: the hub's notifications, and the
 *     device's registrations (whose answer carries the snapshot too). Not any 2.05 will do: the hub
 *     answers a retransmitted registration with the answer it gave the first time, an older snapshot;
 *  2. from then on: the device's ack POSTs.
 * Nothing else counts: a request the device let stand in the ack's way is the device's time, not the
 * network's. What is left of `until - from` once the waits are taken off is what the clients and the hub took.
 */
export function criticalPath(events: readonly TraceEvent[], from: number, until: number, version: number): CriticalPath {
  // No bound below: a version cannot reach the device before the hub made it (its notification often
  // goes out before the change's HTTP answer, which is `from`).
  const delivered = events.find((e) => e.t <= until && !e.up && !e.dropped && e.version === version && (e.type === MessageKind.Con || e.type === MessageKind.Ack));
  const snapshotAt = delivered?.t ?? null;
  const split = Math.max(from, snapshotAt ?? until);
  const spans: Array<[number, number]> = [];
  for (const x of exchangesOf(events, until)) {
    if (!x.up || x.code === Code.Get) waits(x, from, split, spans);
    else if (x.code === Code.Post) waits(x, split, until, spans);
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
