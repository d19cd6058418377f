/**
 * Observe relations and confirmable notifications (RFC 7641 with RFC 7252 retransmission):
 * one relation per device, at most one notification in flight per device (newest wins), one timer wheel
 * for every retransmission, and a cap on notifications in flight hub-wide so that the ACKs coming back
 * fit the socket's receive buffer. Imports no socket: it sends through the DatagramTransport port.
 */
import { Transmission } from '../../protocol/coap.ts';
import type { BuiltSnapshot } from '../domain/state.ts';
import { MessageType, configResponse } from './messages.ts';
import { TimerWheel, realClock } from './timer-wheel.ts';
import type { WheelClock, WheelTimer } from './timer-wheel.ts';
import type { DatagramTransport, Peer } from './transport.ts';

export const EndReason = {
  Reset: 'reset',
  Timeout: 'timeout',
  Replaced: 'replaced',
  Deregistered: 'deregistered',
  Removed: 'removed',
} as const;
export type EndReason = (typeof EndReason)[keyof typeof EndReason];

interface Inflight {
  /** Message ids used for this notification (a newer snapshot replaces the content with a new id). */
  readonly mids: number[];
  version: number;
  retransmits: number;
  timeoutMs: number;
  timer: WheelTimer<Relation> | null;
}

export interface Relation {
  readonly device: string;
  readonly peer: Peer;
  readonly token: Buffer;
  readonly since: number;
  inflight: Inflight | null;
  /** A snapshot newer than the one in flight (or than the last one sent) is waiting. */
  dirty: boolean;
  /** Waiting for a place under the hub-wide in-flight cap. */
  queued: boolean;
}

export interface ObserverDeps {
  readonly transport: DatagramTransport;
  snapshotOf(device: string): BuiltSnapshot | undefined;
  readonly maxAgeS: number;
  onEnded(device: string, reason: EndReason): void;
  /** A notification was sent (first transmission) or retransmitted. */
  onSent?(device: string, retransmission: boolean): void;
  /** A notification was acknowledged. */
  onAcked?(device: string, version: number): void;
  readonly random?: () => number;
  readonly clock?: WheelClock;
  /** Notifications in flight hub-wide at most (default: as many ACKs as fit 3/4 of the receive queue). */
  readonly maxInflight?: number;
}

/**
 * Kernel memory one small incoming datagram (an ACK, an ack POST) takes in the receive queue, its skb
 * truesize: 832 B measured on Linux loopback; rounded up.
 */
const DATAGRAM_TRUESIZE = 1024;
/** Share of the receive queue the ACKs of notifications in flight may fill; the rest is for requests meanwhile. */
const ACK_SHARE_OF_QUEUE = 0.75;

export class ObserveRegistry {
  private readonly relations = new Map<string, Relation>();
  /** Notifications in flight by message id; ids in use are never handed out again (allocateMid). */
  private readonly byMid = new Map<number, Relation>();
  private readonly wheel: TimerWheel<Relation>;
  /** Relations waiting for a place under the in-flight cap, FIFO (`waitingHead` is the next one). */
  private waiting: Relation[] = [];
  private waitingHead = 0;
  private inflightCount = 0;
  private nextMid: number;
  private observeClock = 1;
  private readonly random: () => number;
  readonly maxInflight: number;

  constructor(private readonly deps: ObserverDeps) {
    this.random = deps.random ?? Math.random;
    this.nextMid = Math.floor(this.random() * 0x10000);
    this.wheel = new TimerWheel<Relation>(50, 512, (r) => this.retransmit(r), deps.clock ?? realClock);
    this.maxInflight = deps.maxInflight ?? Math.max(64, Math.floor((deps.transport.receiveQueueBytes * ACK_SHARE_OF_QUEUE) / DATAGRAM_TRUESIZE));
  }

  get size(): number {
    return this.relations.size;
  }

  get inflight(): number {
    return this.inflightCount;
  }

  relationOf(device: string): Relation | undefined {
    return this.relations.get(device);
  }

  /** A fresh Observe value (24-bit, growing). */
  observeValue(): number {
    this.observeClock = (this.observeClock + 1) & 0xffffff;
    return this.observeClock;
  }

  allocateMid(): number {
    // Skip ids of notifications still in flight, so an ACK always names one notification. At most
    // maxInflight × (1 + MAX_RETRANSMIT) ids are in use, far fewer than 65,536; the bound is a guard.
    for (let tries = 0; tries < 0x10000; tries++) {
      this.nextMid = (this.nextMid + 1) & 0xffff;
      if (!this.byMid.has(this.nextMid)) break;
    }
    return this.nextMid;
  }

  /** Registers (or re-registers) a device's relation; the previous one ends and gets nothing more. */
  register(device: string, peer: Peer, token: Buffer, now = Date.now()): { previous: Relation | undefined; relation: Relation } {
    const previous = this.relations.get(device);
    if (previous) this.drop(previous);
    const relation: Relation = { device, peer, token: Buffer.from(token), since: now, inflight: null, dirty: false, queued: false };
    this.relations.set(device, relation);
    return { previous, relation };
  }

  deregister(device: string, reason: EndReason): void {
    const r = this.relations.get(device);
    if (!r) return;
    this.drop(r);
    this.relations.delete(device);
    this.deps.onEnded(device, reason);
  }

  /** The device's snapshot changed: notify now, or mark the relation so the newest goes out next. */
  notify(device: string): void {
    const r = this.relations.get(device);
    if (!r) return;
    if (r.inflight || r.queued) {
      r.dirty = true;
      return;
    }
    this.sendOrQueue(r);
  }

  /** An ACK from `peer`: settles the notification it acknowledges, if any. */
  acknowledged(peer: Peer, mid: number): boolean {
    const r = this.takeByMid(peer, mid);
    if (!r?.inflight) return false;
    // A late ACK for a transmission that a newer snapshot has since replaced: the device has the older
    // one only, so the newest stays in flight until its own ACK.
    if (r.inflight.mids[r.inflight.mids.length - 1] !== mid) return true;
    const version = r.inflight.version;
    this.settle(r);
    this.deps.onAcked?.(r.device, version);
    if (r.dirty) this.sendOrQueue(r);
    return true;
  }

  /** An RST from `peer`: the device does not want this relation any more. */
  reset(peer: Peer, mid: number): boolean {
    const r = this.takeByMid(peer, mid);
    if (!r) return false;
    this.deregister(r.device, EndReason.Reset);
    return true;
  }

  close(): void {
    this.wheel.close();
    this.relations.clear();
    this.byMid.clear();
    this.waiting = [];
    this.waitingHead = 0;
    this.inflightCount = 0;
  }

  private sendOrQueue(r: Relation): void {
    if (this.inflightCount >= this.maxInflight) {
      r.dirty = true;
      if (!r.queued) {
        r.queued = true;
        this.waiting.push(r);
      }
      return;
    }
    const snap = this.deps.snapshotOf(r.device);
    if (!snap) return;
    const mid = this.allocateMid();
    const timeoutMs = Transmission.ackTimeoutMs * (1 + this.random() * (Transmission.ackRandomFactor - 1));
    r.dirty = false;
    r.inflight = { mids: [mid], version: snap.snapshot.version, retransmits: 0, timeoutMs, timer: null };
    this.inflightCount++;
    this.transmit(r, mid, snap);
    r.inflight.timer = this.wheel.schedule(timeoutMs, r);
    this.deps.onSent?.(r.device, false);
  }

  private transmit(r: Relation, mid: number, snap: BuiltSnapshot): void {
    const bytes = configResponse({
      type: MessageType.Con,
      messageId: mid,
      token: r.token,
      snapshot: snap,
      observe: this.observeValue(),
      maxAgeS: this.deps.maxAgeS,
    });
    if (!bytes) return;
    this.byMid.set(mid, r);
    this.deps.transport.send(bytes, r.peer);
  }

  private retransmit(r: Relation): void {
    const f = r.inflight;
    if (!f || this.relations.get(r.device) !== r) return;
    f.timer = null;
    if (f.retransmits >= Transmission.maxRetransmit) {
      this.deregister(r.device, EndReason.Timeout);
      return;
    }
    f.retransmits++;
    f.timeoutMs *= 2;
    const snap = this.deps.snapshotOf(r.device);
    if (!snap) {
      this.deregister(r.device, EndReason.Removed);
      return;
    }
    if (r.dirty || snap.snapshot.version !== f.version) {
      // Newest wins (RFC 7641 §4.5.2): the retransmission carries the newest snapshot, under a new
      // message id; the counter and timeout go on, and an ACK for any id of this notification settles it.
      const mid = this.allocateMid();
      f.mids.push(mid);
      f.version = snap.snapshot.version;
      r.dirty = false;
      this.transmit(r, mid, snap);
    } else {
      const mid = f.mids[f.mids.length - 1] ?? this.allocateMid();
      this.transmit(r, mid, snap);
    }
    f.timer = this.wheel.schedule(f.timeoutMs, r);
    this.deps.onSent?.(r.device, true);
  }

  private takeByMid(peer: Peer, mid: number): Relation | undefined {
    const r = this.byMid.get(mid);
    // Only the device's own endpoint can acknowledge (or reset) its notification.
    if (!r || r.peer.port !== peer.port || r.peer.address !== peer.address || r.peer.identity !== peer.identity) return undefined;
    this.byMid.delete(mid);
    return this.relations.get(r.device) === r ? r : undefined;
  }

  /** Ends the notification in flight, freeing its place under the cap. */
  private settle(r: Relation): void {
    const f = r.inflight;
    if (!f) return;
    if (f.timer) this.wheel.cancel(f.timer);
    for (const mid of f.mids) if (this.byMid.get(mid) === r) this.byMid.delete(mid);
    r.inflight = null;
    this.inflightCount--;
    this.admitWaiting();
  }

  private drop(r: Relation): void {
    this.settle(r);
    // A queued relation stays in the FIFO; admitWaiting skips it once it is no longer queued.
    r.queued = false;
  }

  private admitWaiting(): void {
    while (this.inflightCount < this.maxInflight && this.waitingHead < this.waiting.length) {
      const next = this.waiting[this.waitingHead++];
      if (!next?.queued) continue;
      next.queued = false;
      if (this.relations.get(next.device) === next && !next.inflight) this.sendOrQueue(next);
    }
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    }
  }
}
