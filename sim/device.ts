/**
 * One simulated device: the client side of docs/protocol.md over its own UDP socket. It registers
 * (GET + Observe 0, CON), ACKs every confirmable notification at once, RSTs what it does not know,
 * fetches the rest of a block-wise snapshot, applies the version rule, POSTs an ack (CON) and
 * re-registers before Max-Age runs out. At most one request of its own is in flight (NSTART 1); what
 * waits is kept as flags, built into a datagram only when its turn comes, so a device holds a few
 * numbers and references, never a queue.
 *
 * Timers are not the device's: its simulator holds one shared wheel (see timers.ts), and the device
 * tells stale firings apart by a generation number.
 */
import type { AckStatus } from '../protocol/ack.ts';
import { Transmission, option, parseMessage, readBlock, readUint } from '../protocol/coap.ts';
import type { CoapMessage } from '../protocol/coap.ts';
import { decodeSnapshot } from '../protocol/snapshot.ts';
import type { Snapshot } from '../protocol/snapshot.ts';
import { ackRequest, blockRequest, emptyAck, observeRequest, reset } from './messages.ts';

export const TimerKind = {
  Retransmit: 0,
  Keepalive: 1,
} as const;
export type TimerKind = (typeof TimerKind)[keyof typeof TimerKind];

const RequestKind = {
  Register: 1,
  Deregister: 2,
  Block: 3,
  Ack: 4,
} as const;
type RequestKind = (typeof RequestKind)[keyof typeof RequestKind];

/** Max-Age when a response carries none (RFC 7252 §5.10.5). */
const DEFAULT_MAX_AGE_S = 60;
/** Re-register between these fractions of Max-Age: before it runs out, spread so devices do not come together. */
const REREGISTER_FROM = 0.8;
const REREGISTER_SPREAD = 0.15;
/** After a registration fails (4.04, timeout, error notification): try again after this long, give or take half. */
const RETRY_REGISTER_MS = 10_000;
/** How long to wait for a separate response once the request was ACKed empty (RFC 7252 EXCHANGE_LIFETIME ~ 247 s; less is enough here). */
const SEPARATE_RESPONSE_WAIT_MS = 93_000;

/** Where a snapshot came from. */
export type Via = 'register' | 'notify' | 'block';

export interface SimCounters {
  datagramsSent: number;
  datagramsReceived: number;
  malformed: number;
  /** Registration requests sent (first transmissions), re-registrations included. */
  registrationsSent: number;
  /** Registrations answered 2.05/2.03 with an Observe option. */
  registered: number;
  /** Registrations answered otherwise (4.04: unknown device), or that timed out. */
  registrationFailures: number;
  /** Notifications received (first copies; CON and NON). */
  notifications: number;
  /** Notifications ending the relation: an error code, or no Observe option. */
  notificationsEnding: number;
  /** Datagrams received again: a notification with a message id already ACKed, or a second response to a settled request. */
  duplicates: number;
  /** Snapshots decoded but not applied by the version rule (same or older version of this incarnation). */
  stale: number;
  /** Snapshots applied. */
  applied: number;
  /** Snapshots that did not decode. */
  badSnapshots: number;
  /** Ack POSTs sent (first transmissions). */
  acksSent: number;
  /** Ack POSTs answered 2.04. */
  acksAnswered: number;
  /** Ack POSTs answered with another code. */
  ackErrors: number;
  /** Block requests sent (first transmissions). */
  blockRequests: number;
  /** Retransmissions of this simulator's own CON requests. */
  retransmissions: number;
  /** Requests given up after MAX_RETRANSMIT retransmissions. */
  timeouts: number;
  /** Empty ACKs sent for confirmable notifications (duplicates included). */
  acksToNotifications: number;
  /** RSTs sent for messages with a token this device does not know. */
  resetsSent: number;
  /** RSTs received in reply to a request. */
  resetsReceived: number;
  socketErrors: number;
}

export function newCounters(): SimCounters {
  return {
    datagramsSent: 0,
    datagramsReceived: 0,
    malformed: 0,
    registrationsSent: 0,
    registered: 0,
    registrationFailures: 0,
    notifications: 0,
    notificationsEnding: 0,
    duplicates: 0,
    stale: 0,
    applied: 0,
    badSnapshots: 0,
    acksSent: 0,
    acksAnswered: 0,
    ackErrors: 0,
    blockRequests: 0,
    retransmissions: 0,
    timeouts: 0,
    acksToNotifications: 0,
    resetsSent: 0,
    resetsReceived: 0,
    socketErrors: 0,
  };
}

export interface RegisteredEvent {
  readonly device: string;
  /** CoAP response code, or 'timeout'. */
  readonly code: string;
  readonly observing: boolean;
  /** Monotonic ms (sim/clock.ts): the request's first transmission, and its answer. */
  readonly sentAt: number;
  readonly at: number;
}

export interface NotifiedEvent {
  readonly device: string;
  readonly version: number;
  /** The version rule let it through. */
  readonly applied: boolean;
  readonly via: Via;
  /** Monotonic ms: when the datagram completing the snapshot arrived (read before it was parsed). */
  readonly at: number;
}

export interface AckedEvent {
  readonly device: string;
  readonly version: number;
  /** CoAP response code: '2.04' when the hub recorded the ack. */
  readonly code: string;
  /** Monotonic ms: the snapshot arrived, the ack POST was first sent, its answer arrived. */
  readonly notifiedAt: number;
  readonly sentAt: number;
  readonly at: number;
  readonly retransmits: number;
}

/** What a device needs from its simulator. */
export interface DeviceHost {
  readonly counters: SimCounters;
  readonly ackStatus: AckStatus;
  random(): number;
  now(): number;
  send(d: SimDevice, bytes: Buffer): void;
  schedule(delayMs: number, d: SimDevice, kind: TimerKind, gen: number): void;
  /** Calls d.deferred(msg, at) soon, after the datagrams already readable have been read. */
  defer(d: SimDevice, msg: CoapMessage, at: number): void;
  onRegistered(d: SimDevice, e: RegisteredEvent): void;
  onNotified(d: SimDevice, e: NotifiedEvent): void;
  onAcked(d: SimDevice, e: AckedEvent): void;
}

interface Outgoing {
  readonly kind: RequestKind;
  readonly mid: number;
  /** 2-byte request token as a number; registrations use the device's 4-byte token instead. */
  readonly token: number;
  readonly bytes: Buffer;
  readonly sentAt: number;
  retransmits: number;
  timeoutMs: number;
  /** Ack: the version; block: the assembly generation. */
  readonly ref: number;
  /** Ack: when the snapshot arrived. */
  readonly aux: number;
  /** An empty ACK came: the response will come separately; no more retransmissions. */
  emptyAcked: boolean;
}

interface PendingAck {
  readonly version: number;
  readonly hash: Uint8Array;
  readonly incarnation: Uint8Array;
  readonly notifiedAt: number;
}

interface Assembly {
  readonly gen: number;
  etag: Buffer | null;
  readonly szx: number;
  parts: Buffer[];
  next: number;
  requested: boolean;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const isSuccess = (code: string): boolean => code.startsWith('2.');

export class SimDevice {
  observing = false;
  /** The last registration was answered with a relation. */
  registered = false;
  appliedVersion = -1;
  /** The hub answered 2.04 to an ack of the applied version. */
  private appliedConfirmed = false;
  private appliedIncarnation: Uint8Array | null = null;
  private appliedHash: Uint8Array | null = null;
  private readonly regToken: number;
  private nextMid: number;
  private nextToken: number;
  private lastNotifyMid = -1;
  private out: Outgoing | null = null;
  private wantRegister = false;
  private wantDeregister = false;
  private pendingAck: PendingAck | null = null;
  private asm: Assembly | null = null;
  private asmGen = 0;
  private retxGen = 0;
  private keepGen = 0;
  private stopped = false;
  /** Called once the next registration exchange ends (answered, failed or given up). */
  onRegistrationSettled: ((ok: boolean) => void) | null = null;

  constructor(
    readonly id: string,
    /** The simulator's index for this device (its socket). */
    readonly slot: number,
    private readonly host: DeviceHost,
  ) {
    const r = host.random;
    this.regToken = Math.floor(r() * 0x1_0000_0000) >>> 0;
    this.nextMid = Math.floor(r() * 0x10000);
    this.nextToken = Math.floor(r() * 0x10000);
  }

  /** Sends (or queues behind the request in flight) a registration. */
  register(): void {
    if (this.stopped) return;
    this.wantRegister = true;
    this.pump();
  }

  /** Ends the relation (GET with Observe 1) once the request in flight is done. */
  deregister(): void {
    if (this.stopped) return;
    this.wantRegister = false;
    this.wantDeregister = true;
    this.keepGen++;
    this.pump();
  }

  /** Nothing more is sent or handled. */
  stop(): void {
    this.stopped = true;
    this.out = null;
    this.wantRegister = false;
    this.wantDeregister = false;
    this.pendingAck = null;
    this.asm = null;
    this.retxGen++;
    this.keepGen++;
    this.observing = false;
  }

  get idle(): boolean {
    return this.out === null && !this.wantRegister && !this.wantDeregister && this.pendingAck === null && this.asm === null;
  }

  onTimer(kind: TimerKind, gen: number): void {
    if (this.stopped) return;
    if (kind === TimerKind.Keepalive) {
      if (gen !== this.keepGen) return;
      this.register();
      return;
    }
    const o = this.out;
    if (gen !== this.retxGen || !o) return;
    if (o.emptyAcked || o.retransmits >= Transmission.maxRetransmit) {
      this.host.counters.timeouts++;
      this.giveUp(o);
      return;
    }
    o.retransmits++;
    o.timeoutMs *= 2;
    this.host.counters.retransmissions++;
    this.host.send(this, o.bytes);
    this.host.schedule(o.timeoutMs, this, TimerKind.Retransmit, ++this.retxGen);
  }

  onDatagram(bytes: Buffer): void {
    const at = this.host.now();
    const c = this.host.counters;
    c.datagramsReceived++;
    if (this.stopped) return;
    let msg: CoapMessage;
    try {
      msg = parseMessage(bytes);
    } catch {
      c.malformed++;
      return;
    }
    const o = this.out;
    if (msg.code === '0.00') {
      if (o && o.mid === msg.messageId) {
        if (msg.ack && !o.emptyAcked) {
          // The answer will come as a separate response: stop retransmitting, but do not wait forever.
          o.emptyAcked = true;
          this.host.schedule(SEPARATE_RESPONSE_WAIT_MS, this, TimerKind.Retransmit, ++this.retxGen);
        } else if (msg.reset) {
          c.resetsReceived++;
          this.giveUp(o);
        }
      } else if (msg.confirmable) {
        this.sendReset(msg.messageId); // CoAP ping
      }
      return;
    }
    if (msg.ack) {
      // A piggybacked response.
      if (o && o.mid === msg.messageId && this.tokenOf(o, msg.token)) this.settle(o, msg, at);
      else c.duplicates++;
      return;
    }
    if (msg.reset) return;
    if (msg.code.startsWith('0.')) {
      // A request: a device here is no server.
      if (msg.confirmable) this.sendReset(msg.messageId);
      return;
    }
    const mine = msg.token.length === 4 && msg.token.readUInt32BE(0) === this.regToken;
    if (mine && (this.observing || o?.kind === RequestKind.Register)) {
      if (msg.confirmable) {
        c.acksToNotifications++;
        this.host.send(this, emptyAck(msg.messageId));
        if (msg.messageId === this.lastNotifyMid) {
          c.duplicates++;
          return;
        }
        this.lastNotifyMid = msg.messageId;
      }
      if (o?.kind === RequestKind.Register && o.emptyAcked) this.settle(o, msg, at);
      // The rest (decode, version rule, the ack POST) waits until the simulator has read and ACKed every
      // datagram that is ready: one process stands for many devices, and a device's arrival time must not
      // include the work of the devices read before it.
      else this.host.defer(this, msg, at);
      return;
    }
    if (o && o.emptyAcked && this.tokenOf(o, msg.token)) {
      // A separate response to our request.
      if (msg.confirmable) this.host.send(this, emptyAck(msg.messageId));
      this.settle(o, msg, at);
      return;
    }
    this.sendReset(msg.messageId);
  }

  private sendReset(mid: number): void {
    this.host.counters.resetsSent++;
    this.host.send(this, reset(mid));
  }

  private tokenOf(o: Outgoing, token: Buffer): boolean {
    if (o.kind === RequestKind.Register || o.kind === RequestKind.Deregister) return token.length === 4 && token.readUInt32BE(0) === this.regToken;
    return token.length === 2 && token.readUInt16BE(0) === o.token;
  }

  /** A notification's handling, after the simulator read every ready datagram (see DeviceHost.defer). */
  deferred(msg: CoapMessage, at: number): void {
    if (this.stopped) return;
    this.notification(msg, at);
  }

  private notification(msg: CoapMessage, at: number): void {
    const c = this.host.counters;
    c.notifications++;
    if (!isSuccess(msg.code) || option(msg, 'Observe') === undefined) {
      // RFC 7641 §3.2: an error, or a response without Observe, ends the relation. Register again later.
      c.notificationsEnding++;
      this.observing = false;
      this.retryRegisterLater();
      if (msg.code === '2.05') this.representation(msg, at, 'notify');
      return;
    }
    if (msg.code === '2.05') this.representation(msg, at, 'notify');
  }

  /** A 2.05 carrying the snapshot, whole or its first block. */
  private representation(msg: CoapMessage, at: number, via: Via): void {
    const block = option(msg, 'Block2');
    if (block !== undefined) {
      const b = readBlock(block);
      if (b.num !== 0) return; // notifications and registrations carry block 0
      if (b.more) {
        // Fetch the rest (RFC 7959); a newer notification replaces an assembly in progress.
        this.asm = { gen: ++this.asmGen, etag: option(msg, 'ETag') ?? null, szx: b.szx, parts: [msg.payload], next: 1, requested: false };
        this.pump();
        return;
      }
    }
    this.snapshot(msg.payload, at, via);
  }

  private snapshot(bytes: Buffer, at: number, via: Via): void {
    const c = this.host.counters;
    let s: Snapshot;
    try {
      s = decodeSnapshot(bytes);
    } catch {
      c.badSnapshots++;
      return;
    }
    // The version rule (docs/protocol.md): a greater version from the same incarnation, or any version from another one.
    const apply = this.appliedIncarnation === null || !sameBytes(this.appliedIncarnation, s.incarnation) || s.version > this.appliedVersion;
    this.host.onNotified(this, { device: this.id, version: s.version, applied: apply, via, at });
    if (!apply) {
      c.stale++;
      // The snapshot this device holds, sent again (e.g. on registration) while its ack never got its 2.04:
      // ack it again, as the agent does. Acks are idempotent.
      const o = this.out;
      const same = s.version === this.appliedVersion && this.appliedIncarnation !== null && sameBytes(this.appliedIncarnation, s.incarnation);
      if (same && !this.appliedConfirmed && this.pendingAck === null && !(o?.kind === RequestKind.Ack && o.ref === s.version)) {
        this.pendingAck = { version: s.version, hash: s.hash, incarnation: s.incarnation, notifiedAt: at };
        this.pump();
      }
      return;
    }
    c.applied++;
    this.appliedConfirmed = false;
    this.appliedVersion = s.version;
    this.appliedIncarnation = s.incarnation;
    this.appliedHash = s.hash;
    this.pendingAck = { version: s.version, hash: s.hash, incarnation: s.incarnation, notifiedAt: at };
    this.pump();
  }

  /** Sends what waits, if nothing is in flight: a registration first, then a block, then the newest ack. */
  private pump(): void {
    if (this.out || this.stopped) return;
    if (this.wantDeregister) {
      this.wantDeregister = false;
      this.observing = false;
      this.request(RequestKind.Deregister, observeRequest(this.id, this.mid(), this.regTokenBytes(), 1, null), 0, 0, -1);
    } else if (this.wantRegister) {
      this.wantRegister = false;
      this.host.counters.registrationsSent++;
      this.request(RequestKind.Register, observeRequest(this.id, this.mid(), this.regTokenBytes(), 0, this.appliedHash), 0, 0, -1);
    } else if (this.asm && !this.asm.requested) {
      const a = this.asm;
      a.requested = true;
      const token = this.token();
      this.host.counters.blockRequests++;
      this.request(RequestKind.Block, blockRequest(this.id, this.mid(), tokenBytes(token), a.next, a.szx), a.gen, 0, token);
    } else if (this.pendingAck) {
      const p = this.pendingAck;
      this.pendingAck = null;
      const token = this.token();
      this.host.counters.acksSent++;
      const bytes = ackRequest(this.id, this.mid(), tokenBytes(token), {
        version: p.version,
        status: this.host.ackStatus,
        hash: p.hash,
        incarnation: p.incarnation,
      });
      this.request(RequestKind.Ack, bytes, p.version, p.notifiedAt, token);
    }
  }

  private request(kind: RequestKind, bytes: Buffer, ref: number, aux: number, token: number): void {
    const mid = bytes.readUInt16BE(2);
    const timeoutMs = Transmission.ackTimeoutMs * (1 + this.host.random() * (Transmission.ackRandomFactor - 1));
    this.out = { kind, mid, token, bytes, sentAt: this.host.now(), retransmits: 0, timeoutMs, ref, aux, emptyAcked: false };
    this.host.send(this, bytes);
    this.host.schedule(timeoutMs, this, TimerKind.Retransmit, ++this.retxGen);
  }

  /** The answer to the request in flight. */
  private settle(o: Outgoing, msg: CoapMessage, at: number): void {
    this.out = null;
    this.retxGen++;
    const c = this.host.counters;
    switch (o.kind) {
      case RequestKind.Register: {
        const ok = isSuccess(msg.code);
        const observing = ok && option(msg, 'Observe') !== undefined;
        this.observing = observing;
        this.registered = observing;
        if (observing) c.registered++;
        else c.registrationFailures++;
        this.host.onRegistered(this, { device: this.id, code: msg.code, observing, sentAt: o.sentAt, at });
        this.settledRegistration(observing);
        if (observing) {
          const maxAgeOpt = option(msg, 'Max-Age');
          const maxAgeS = maxAgeOpt === undefined ? DEFAULT_MAX_AGE_S : readUint(maxAgeOpt);
          const ms = maxAgeS * 1000 * (REREGISTER_FROM + this.host.random() * REREGISTER_SPREAD);
          this.host.schedule(ms, this, TimerKind.Keepalive, ++this.keepGen);
        } else this.retryRegisterLater();
        if (msg.code === '2.05') this.representation(msg, at, 'register');
        break;
      }
      case RequestKind.Deregister:
        this.registered = false;
        break;
      case RequestKind.Ack:
        if (msg.code === '2.04') {
          c.acksAnswered++;
          if (o.ref === this.appliedVersion) this.appliedConfirmed = true;
        } else c.ackErrors++;
        this.host.onAcked(this, { device: this.id, version: o.ref, code: msg.code, notifiedAt: o.aux, sentAt: o.sentAt, at, retransmits: o.retransmits });
        break;
      case RequestKind.Block:
        this.block(o, msg, at);
        break;
    }
    this.pump();
  }

  private block(o: Outgoing, msg: CoapMessage, at: number): void {
    const a = this.asm;
    if (!a || a.gen !== o.ref) return; // a newer notification replaced this assembly
    const blockOpt = option(msg, 'Block2');
    if (msg.code !== '2.05' || blockOpt === undefined) {
      this.asm = null;
      return;
    }
    const b = readBlock(blockOpt);
    const etag = option(msg, 'ETag') ?? null;
    if (b.num !== a.next) {
      this.asm = null;
      return;
    }
    if (a.etag !== null && (etag === null || !etag.equals(a.etag))) {
      // The snapshot changed meanwhile: start again from block 0 of the newest one.
      a.etag = null;
      a.parts = [];
      a.next = 0;
      a.requested = false;
      return;
    }
    if (a.etag === null) a.etag = etag;
    a.parts.push(msg.payload);
    if (b.more) {
      a.next = b.num + 1;
      a.requested = false;
      return;
    }
    this.asm = null;
    this.snapshot(Buffer.concat(a.parts), at, 'block');
  }

  private giveUp(o: Outgoing): void {
    this.out = null;
    this.retxGen++;
    if (o.kind === RequestKind.Register) {
      this.observing = false;
      this.registered = false;
      this.host.counters.registrationFailures++;
      this.host.onRegistered(this, { device: this.id, code: 'timeout', observing: false, sentAt: o.sentAt, at: this.host.now() });
      this.settledRegistration(false);
      this.retryRegisterLater();
    } else if (o.kind === RequestKind.Block) {
      this.asm = null;
    }
    this.pump();
  }

  private settledRegistration(ok: boolean): void {
    const f = this.onRegistrationSettled;
    if (!f) return;
    this.onRegistrationSettled = null;
    f(ok);
  }

  private retryRegisterLater(): void {
    const ms = RETRY_REGISTER_MS * (0.5 + this.host.random());
    this.host.schedule(ms, this, TimerKind.Keepalive, ++this.keepGen);
  }

  private mid(): number {
    this.nextMid = (this.nextMid + 1) & 0xffff;
    return this.nextMid;
  }

  private token(): number {
    this.nextToken = (this.nextToken + 1) & 0xffff;
    return this.nextToken;
  }

  private regTokenBytes(): Buffer {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(this.regToken, 0);
    return b;
  }
}

function tokenBytes(token: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(token, 0);
  return b;
}
