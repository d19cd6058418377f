/**
 * What the lossy relay (lossy-relay.ts) did to one device's datagrams, and what that explains. The relay
 * records every datagram of a device endpoint as a TraceEvent; `cutAttempts` pairs each transmission of
 * a confirmable exchange with the answers to it, both ways:
 *  - a request up (the device's CON, one exchange per message id) is answered by the hub's ACK or RST
 *    with that message id (a piggybacked response, or an empty ACK);
 *  - a notification down (the hub's CON) is answered by the device's empty ACK or RST with its message
 *    id. The hub's notifications to a device form one chain: a newer snapshot goes out as the next
 *    retransmission under a new message id and keeps the counter (RFC 7641 §4.5.2).
 * A transmission failed through the network when the relay dropped it, or delivered it and dropped
 * every answer that came back before the next transmission. A transmission that was delivered and got
 * no answer at all is the peer's doing, not the network's: it ends a run of failures like a success does.
 */

/** One datagram through the relay: ms since the trace began, direction, CoAP type and code, message id. */
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

interface Attempt {
  /** The transmission's message id: only an answer with it counts (the hub settles a notification by the ACK of its newest id). */
  readonly mid: number;
  /** A transmission dropped, or an answer to it dropped. */
  failed: boolean;
  /** An answer to it got through. */
  answered: boolean;
  /** An answer came back at all. */
  answeredAtAll: boolean;
}

interface Chain {
  /** Its first transmission (a notification chain: the first since the last one settled). */
  readonly firstAt: number;
  lastAt: number;
  current: Attempt | null;
  run: number;
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

/**
 * The most transmissions of one confirmable exchange the network failed in a row (see the top of this
 * file), among the exchanges that were live in [from, until]: one with a transmission in it, or still
 * unsettled at `from` and at most MAX_TRANSMIT_WAIT old. Events after `until` are not read. 4 means the
 * exchange needed its fifth and last transmission (RFC 7252: 30-45 s after its first with the default
 * parameters), 5 that it was cut entirely.
 */
export function cutAttempts(events: readonly TraceEvent[], from = -Infinity, until = Infinity): CutReport {
  const requests = new Map<number, Chain>();
  let notifications: Chain | null = null;
  let best: CutReport = { maxRun: 0, at: 0, direction: null };
  const close = (c: Chain): void => {
    const a = c.current;
    if (a === null) return;
    if (a.failed) c.run++;
    else if (a.answered || !a.answeredAtAll) c.run = 0;
    c.current = null;
  };
  const note = (c: Chain, run: number, direction: 'up' | 'down'): void => {
    if (run > best.maxRun) best = { maxRun: run, at: c.lastAt, direction };
  };
  const unsettled = (): Array<[Chain, 'up' | 'down']> => [...[...requests.values()].map((c): [Chain, 'up'] => [c, 'up']), ...(notifications ? [[notifications, 'down'] as [Chain, 'down']] : [])];
  let opened = false;
  /** The window opens: an exchange still unsettled then, and young enough to be retransmitting or waiting, counts. */
  const open = (): void => {
    opened = true;
    for (const [c, direction] of unsettled()) if (c.firstAt >= from - MAX_TRANSMIT_WAIT_MS) note(c, c.run + (c.current?.failed ? 1 : 0), direction);
  };
  for (const e of events) {
    if (e.t > until) break;
    if (!opened && e.t >= from) open();
    const transmission = e.type === CON && e.code !== 0;
    if (transmission) {
      let chain: Chain;
      if (e.up) {
        chain = requests.get(e.mid) ?? { firstAt: e.t, lastAt: e.t, current: null, run: 0 };
        requests.set(e.mid, chain);
      } else chain = notifications ??= { firstAt: e.t, lastAt: e.t, current: null, run: 0 };
      close(chain);
      if (e.t >= from) note(chain, chain.run, e.up ? 'up' : 'down');
      chain.lastAt = e.t;
      chain.current = { mid: e.mid, failed: e.dropped, answered: false, answeredAtAll: false };
      continue;
    }
    if (e.type !== ACK && e.type !== RST) continue;
    // An answer going up answers a notification; going down, a request.
    const chain = e.up ? notifications : (requests.get(e.mid) ?? null);
    const a = chain?.current;
    if (!chain || !a || a.mid !== e.mid) continue;
    a.answeredAtAll = true;
    if (e.dropped) {
      if (!a.answered) a.failed = true;
      continue;
    }
    a.answered = true;
    a.failed = false;
    chain.run = 0;
    // An exchange whose answer got through is settled; the hub's next notification starts a new chain.
    if (e.up) notifications = null;
    else requests.delete(e.mid);
  }
  if (!opened) open();
  // What is still unsettled at the end, if it was live in the window.
  for (const [c, direction] of unsettled()) {
    close(c);
    if (c.lastAt >= from || c.firstAt >= from - MAX_TRANSMIT_WAIT_MS) note(c, c.run, direction);
  }
  return best;
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
