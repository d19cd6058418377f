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
 *
 * The per-datagram path is the simulator's CPU budget (one process stands for thousands of devices), so
 * datagrams are read by protocol/coap-reader.ts, ack POSTs built by protocol/ack-request.ts, and snapshots
 * in the hub's layout read by protocol/snapshot-scan.ts; anything else falls back to protocol/'s full
 * decoder and encoders.
 */
import type { AckStatus } from '../protocol/ack.ts';
import { AckWriter } from '../protocol/ack-request.ts';
import { MessageKind, Transmission, emptyMessage } from '../protocol/coap.ts';
import { Code, Inbound, codeName, isSuccessCode, readInbound } from '../protocol/coap-reader.ts';
import { decodeSnapshot } from '../protocol/snapshot.ts';
import type { Snapshot } from '../protocol/snapshot.ts';
import { ackRequest, blockRequest, observeRequest } from './messages.ts';
import { scanSnapshot } from '../protocol/snapshot-scan.ts';
import type { ScannedSnapshot } from '../protocol/snapshot-scan.ts';

export { Inbound } from '../protocol/coap-reader.ts';

const EMPTY = Buffer.alloc(0);

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
  /** Snapshots applied whose ack POST was withheld (the simulator's ackStatus is null). */
  acksWithheld: number;
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
  /** Requests abandoned for a newer ack (an older ack, or a re-registration of a held relation). */
  abandoned: number;
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
    acksWithheld: 0,
    acksAnswered: 0,
    ackErrors: 0,
    blockRequests: 0,
    retransmissions: 0,
    timeouts: 0,
    abandoned: 0,
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
  /**
   * This registration was answered with a relation. A re-registration that timed out says false here,
   * while the device keeps the relation it held (SimDevice.observing stays true; see giveUp).
   */
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
  /** The status every ack reports; null: apply, but send no ack POST. */
  readonly ackStatus: AckStatus | null;
  random(): number;
  now(): number;
  send(d: SimDevice, bytes: Buffer): void;
  schedule(delayMs: number, d: SimDevice, kind: TimerKind, gen: number): void;
  /** Calls d.deferred(msg) soon, after the datagrams already readable have been read. */
  defer(d: SimDevice, msg: Inbound): void;
  onRegistered(d: SimDevice, e: RegisteredEvent): void;
  onNotified(d: SimDevice, e: NotifiedEvent): void;
  onAcked(d: SimDevice, e: AckedEvent): void;
}

/**
 * The request in flight. A device has one such object and reuses it for each request (NSTART 1): whoever
 * reads it after the next request may have started copies its fields first (see settle, giveUp).
 */
interface Outgoing {
  kind: RequestKind;
  mid: number;
  /** 2-byte request token as a number; registrations use the device's 4-byte token instead. */
  token: number;
  bytes: Buffer;
  sentAt: number;
  retransmits: number;
  timeoutMs: number;
  /** Ack: the version; block: the assembly generation. */
  ref: number;
  /** Ack: when the snapshot arrived. */
  aux: number;
  /** An empty ACK came: the response will come separately; no more retransmissions. */
  emptyAcked: boolean;
}

interface Assembly {
  readonly gen: number;
  etag: Buffer | null;
  readonly szx: number;
  parts: Buffer[];
  next: number;
  requested: boolean;
}

const HASH_BYTES = 8;

/** a[0..8) equals b[at..at+8). */
function same8(a: Uint8Array, b: Uint8Array, at: number): boolean {
  if (a.length !== HASH_BYTES || b.length < at + HASH_BYTES) return false;
  for (let i = 0; i < HASH_BYTES; i++) if (a[i] !== b[at + i]) return false;
  return true;
}

function copy8(b: Uint8Array, at: number): Uint8Array {
  return b.slice(at, at + HASH_BYTES);
}

/** The snapshot being handled: version, and where its hash and incarnation are (reused; handling is synchronous). */
const scanned: ScannedSnapshot = { version: 0, hashAt: 0, incarnationAt: 0 };

export class SimDevice {
  observing = false;
  /** The last registration was answered with a relation. */
  registered = false;
  appliedVersion = -1;
  /** The hub answered 2.04 to an ack of the applied version. */
  private appliedConfirmed = false;
  private appliedIncarnation: Uint8Array | null = null;
  /** Filled in place on each apply (read only when a datagram is built). */
  private appliedHash: Uint8Array | null = null;
  private readonly regToken: number;
  private nextMid: number;
  private nextToken: number;
  private lastNotifyMid = -1;
  private out: Outgoing | null = null;
  private readonly req: Outgoing = { kind: RequestKind.Register, mid: 0, token: 0, bytes: EMPTY, sentAt: 0, retransmits: 0, timeoutMs: 0, ref: 0, aux: 0, emptyAcked: false };
  private wantRegister = false;
  private wantDeregister = false;
  /** The ack waiting for its turn: only the newest waits. */
  private ackWaiting = false;
  private ackVersion = 0;
  private ackHash: Uint8Array = EMPTY;
  private ackIncarnation: Uint8Array = EMPTY;
  private ackNotifiedAt = 0;
  private ackWriter: AckWriter | null = null;
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
    this.ackWaiting = false;
    this.asm = null;
    this.retxGen++;
    this.keepGen++;
    this.observing = false;
  }

  get idle(): boolean {
    return this.out === null && !this.wantRegister && !this.wantDeregister && !this.ackWaiting && this.asm === null;
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
    const msg = new Inbound();
    if (!readInbound(bytes, msg)) {
      c.malformed++;
      return;
    }
    msg.at = at;
    const o = this.out;
    const type = msg.type;
    if (msg.code === Code.Empty) {
      if (o && o.mid === msg.mid) {
        if (type === MessageKind.Ack && !o.emptyAcked) {
          // The answer will come as a separate response: stop retransmitting, but do not wait forever.
          o.emptyAcked = true;
          this.host.schedule(SEPARATE_RESPONSE_WAIT_MS, this, TimerKind.Retransmit, ++this.retxGen);
        } else if (type === MessageKind.Rst) {
          c.resetsReceived++;
          this.giveUp(o);
        }
      } else if (type === MessageKind.Con) {
        this.sendReset(msg.mid); // CoAP ping
      }
      return;
    }
    if (type === MessageKind.Ack) {
      // A piggybacked response.
      if (o && o.mid === msg.mid && this.tokenOf(o, msg)) this.settle(o, msg);
      else c.duplicates++;
      return;
    }
    if (type === MessageKind.Rst) return;
    if (msg.code >> 5 === 0) {
      // A request: a device here is no server.
      if (type === MessageKind.Con) this.sendReset(msg.mid);
      return;
    }
    const mine = msg.tokenLength === 4 && msg.token === this.regToken;
    if (mine && (this.observing || o?.kind === RequestKind.Register)) {
      if (type === MessageKind.Con) {
        c.acksToNotifications++;
        this.host.send(this, emptyMessage(MessageKind.Ack, msg.mid));
        if (msg.mid === this.lastNotifyMid) {
          c.duplicates++;
          return;
        }
        this.lastNotifyMid = msg.mid;
      }
      if (o?.kind === RequestKind.Register && o.emptyAcked) this.settle(o, msg);
      // The rest (decode, version rule, the ack POST) waits until the simulator has read and ACKed every
      // datagram that is ready: one process stands for many devices, and a device's arrival time must not
      // include the work of the devices read before it.
      else this.host.defer(this, msg);
      return;
    }
    if (o && o.emptyAcked && this.tokenOf(o, msg)) {
      // A separate response to our request.
      if (type === MessageKind.Con) this.host.send(this, emptyMessage(MessageKind.Ack, msg.mid));
      this.settle(o, msg);
      return;
    }
    this.sendReset(msg.mid);
  }

  private sendReset(mid: number): void {
    this.host.counters.resetsSent++;
    this.host.send(this, emptyMessage(MessageKind.Rst, mid));
  }

  private tokenOf(o: Outgoing, msg: Inbound): boolean {
    if (o.kind === RequestKind.Register || o.kind === RequestKind.Deregister) return msg.tokenLength === 4 && msg.token === this.regToken;
    return msg.tokenLength === 2 && msg.token === o.token;
  }

  /** A notification's handling, after the simulator read every ready datagram (see DeviceHost.defer). */
  deferred(msg: Inbound): void {
    if (this.stopped) return;
    this.notification(msg);
  }

  private notification(msg: Inbound): void {
    const c = this.host.counters;
    c.notifications++;
    if (!isSuccessCode(msg.code) || !msg.hasObserve) {
      // RFC 7641 §3.2: an error, or a response without Observe, ends the relation. Register again later.
      c.notificationsEnding++;
      this.observing = false;
      this.retryRegisterLater();
      if (msg.code === Code.Content) this.representation(msg, 'notify');
      return;
    }
    if (msg.code === Code.Content) this.representation(msg, 'notify');
  }

  /** A 2.05 carrying the snapshot, whole or its first block. */
  private representation(msg: Inbound, via: Via): void {
    if (msg.block2 >= 0) {
      const b = readBlockValue(msg.block2);
      if (b.num !== 0) return; // notifications and registrations carry block 0
      if (b.more) {
        // Fetch the rest (RFC 7959); a newer notification replaces an assembly in progress.
        this.asm = { gen: ++this.asmGen, etag: msg.etag(), szx: b.szx, parts: [msg.payload()], next: 1, requested: false };
        this.pump();
        return;
      }
    }
    this.snapshot(msg.bytes, msg.payloadStart, msg.bytes.length, msg.at, via);
  }

  /** The snapshot in bytes[start, end). */
  private snapshot(bytes: Uint8Array, start: number, end: number, at: number, via: Via): void {
    const c = this.host.counters;
    // Version, hash and incarnation straight from the bytes; anything off the hub's layout goes through the full decoder.
    let version: number;
    let src: Uint8Array = bytes;
    let hashAt: number;
    let incAt: number;
    if (scanSnapshot(bytes, start, end, scanned)) {
      version = scanned.version;
      hashAt = scanned.hashAt;
      incAt = scanned.incarnationAt;
    } else {
      let s: Snapshot;
      try {
        s = decodeSnapshot(bytes.subarray(start, end));
      } catch {
        c.badSnapshots++;
        return;
      }
      version = s.version;
      // decodeSnapshot gives 8-byte copies; lay them side by side so both are read the same way.
      src = new Uint8Array(2 * HASH_BYTES);
      src.set(s.hash, 0);
      src.set(s.incarnation, HASH_BYTES);
      hashAt = 0;
      incAt = HASH_BYTES;
    }
    const held = this.appliedIncarnation;
    const sameIncarnation = held !== null && same8(held, src, incAt);
    // The version rule (docs/protocol.md): a greater version from the same incarnation, or any version from another one.
    const apply = !sameIncarnation || version > this.appliedVersion;
    this.host.onNotified(this, { device: this.id, version, applied: apply, via, at });
    if (!apply) {
      c.stale++;
      // The snapshot this device holds, sent again (e.g. on registration) while its ack never got its 2.04:
      // ack it again, as the agent does. Acks are idempotent.
      const o = this.out;
      const same = version === this.appliedVersion && sameIncarnation;
      if (same && !this.appliedConfirmed && !this.ackWaiting && !(o?.kind === RequestKind.Ack && o.ref === version)) {
        this.waitAck(version, copy8(src, hashAt), copy8(src, incAt), at);
        this.pump();
      }
      return;
    }
    c.applied++;
    this.appliedConfirmed = false;
    this.appliedVersion = version;
    if (!sameIncarnation) this.appliedIncarnation = copy8(src, incAt);
    let hash = this.appliedHash;
    if (hash === null) hash = this.appliedHash = new Uint8Array(HASH_BYTES);
    for (let i = 0; i < HASH_BYTES; i++) hash[i] = src[hashAt + i] ?? 0;
    // appliedHash is rewritten in place by the next apply, which replaces this waiting ack too.
    this.waitAck(version, hash, this.appliedIncarnation ?? copy8(src, incAt), at);
    this.yieldToAck();
    this.pump();
  }

  /**
   * Newest ack first (docs/protocol.md, "Ack"): an ack of an older version in flight, or a re-registration
   * of a relation the device still holds, is abandoned for the ack that now waits (the re-registration goes
   * right after it). Under loss either could hold the ack back for its whole retransmission span.
   */
  private yieldToAck(): void {
    const o = this.out;
    if (!o || o.emptyAcked || this.host.ackStatus === null) return;
    const olderAck = o.kind === RequestKind.Ack && o.ref !== this.ackVersion;
    const reRegistration = o.kind === RequestKind.Register && this.observing;
    if (!olderAck && !reRegistration) return;
    this.host.counters.abandoned++;
    this.out = null;
    this.retxGen++;
    if (reRegistration) this.wantRegister = true;
  }

  private waitAck(version: number, hash: Uint8Array, incarnation: Uint8Array, notifiedAt: number): void {
    this.ackWaiting = true;
    this.ackVersion = version;
    this.ackHash = hash;
    this.ackIncarnation = incarnation;
    this.ackNotifiedAt = notifiedAt;
  }

  /**
   * Sends what waits, if nothing is in flight: a deregistration, a first registration, the next block, the
   * newest ack, then a re-registration (docs/protocol.md, "Ack": newest ack first).
   */
  private pump(): void {
    if (this.out || this.stopped) return;
    if (this.wantDeregister) {
      this.wantDeregister = false;
      this.observing = false;
      this.request(RequestKind.Deregister, observeRequest(this.id, this.mid(), this.regTokenBytes(), 1, null), 0, 0, -1);
    } else if (this.wantRegister && !(this.observing && this.ackWaiting)) {
      this.sendRegistration();
    } else if (this.asm && !this.asm.requested) {
      const a = this.asm;
      a.requested = true;
      const token = this.token();
      this.host.counters.blockRequests++;
      this.request(RequestKind.Block, blockRequest(this.id, this.mid(), tokenBytes(token), a.next, a.szx), a.gen, 0, token);
    } else if (this.ackWaiting) {
      this.ackWaiting = false;
      const status = this.host.ackStatus;
      if (status === null) {
        this.host.counters.acksWithheld++;
        this.pump();
        return;
      }
      const token = this.token();
      this.host.counters.acksSent++;
      const version = this.ackVersion;
      const hash = this.ackHash;
      const incarnation = this.ackIncarnation;
      const mid = this.mid();
      const bytes =
        hash.length === HASH_BYTES && incarnation.length === HASH_BYTES
          ? (this.ackWriter ??= new AckWriter(this.id)).build(mid, token, version, status, hash, incarnation)
          : ackRequest(this.id, mid, tokenBytes(token), { version, status, hash, incarnation });
      this.request(RequestKind.Ack, bytes, version, this.ackNotifiedAt, token);
    } else if (this.wantRegister) {
      this.sendRegistration();
    }
  }

  private sendRegistration(): void {
    this.wantRegister = false;
    this.host.counters.registrationsSent++;
    this.request(RequestKind.Register, observeRequest(this.id, this.mid(), this.regTokenBytes(), 0, this.appliedHash), 0, 0, -1);
  }

  private request(kind: RequestKind, bytes: Buffer, ref: number, aux: number, token: number): void {
    const timeoutMs = Transmission.ackTimeoutMs * (1 + this.host.random() * (Transmission.ackRandomFactor - 1));
    const o = this.req;
    o.kind = kind;
    o.mid = ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
    o.token = token;
    o.bytes = bytes;
    o.sentAt = this.host.now();
    o.retransmits = 0;
    o.timeoutMs = timeoutMs;
    o.ref = ref;
    o.aux = aux;
    o.emptyAcked = false;
    this.out = o;
    this.host.send(this, bytes);
    this.host.schedule(timeoutMs, this, TimerKind.Retransmit, ++this.retxGen);
  }

  /** The answer to the request in flight. */
  private settle(o: Outgoing, msg: Inbound): void {
    // `o` is reused by the next request, which a listener called below may start: read it first.
    const kind = o.kind;
    const ref = o.ref;
    const aux = o.aux;
    const sentAt = o.sentAt;
    const retransmits = o.retransmits;
    const at = msg.at;
    this.out = null;
    this.retxGen++;
    const c = this.host.counters;
    switch (kind) {
      case RequestKind.Register: {
        const ok = isSuccessCode(msg.code);
        const observing = ok && msg.hasObserve;
        this.observing = observing;
        this.registered = observing;
        if (observing) c.registered++;
        else c.registrationFailures++;
        this.host.onRegistered(this, { device: this.id, code: codeName(msg.code), observing, sentAt, at });
        this.settledRegistration(observing);
        if (observing) {
          const maxAgeS = msg.maxAge < 0 ? DEFAULT_MAX_AGE_S : msg.maxAge;
          const ms = maxAgeS * 1000 * (REREGISTER_FROM + this.host.random() * REREGISTER_SPREAD);
          this.host.schedule(ms, this, TimerKind.Keepalive, ++this.keepGen);
        } else this.retryRegisterLater();
        if (msg.code === Code.Content) this.representation(msg, 'register');
        break;
      }
      case RequestKind.Deregister:
        this.registered = false;
        break;
      case RequestKind.Ack:
        if (msg.code === Code.Changed) {
          c.acksAnswered++;
          if (ref === this.appliedVersion) this.appliedConfirmed = true;
        } else c.ackErrors++;
        this.host.onAcked(this, { device: this.id, version: ref, code: codeName(msg.code), notifiedAt: aux, sentAt, at, retransmits });
        break;
      case RequestKind.Block:
        this.block(ref, msg);
        break;
    }
    this.pump();
  }

  private block(gen: number, msg: Inbound): void {
    const a = this.asm;
    if (!a || a.gen !== gen) return; // a newer notification replaced this assembly
    if (msg.code !== Code.Content || msg.block2 < 0) {
      this.asm = null;
      return;
    }
    const b = readBlockValue(msg.block2);
    const etag = msg.etag();
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
    a.parts.push(msg.payload());
    if (b.more) {
      a.next = b.num + 1;
      a.requested = false;
      return;
    }
    this.asm = null;
    const whole = Buffer.concat(a.parts);
    this.snapshot(whole, 0, whole.length, msg.at, 'block');
  }

  private giveUp(o: Outgoing): void {
    const kind = o.kind;
    const sentAt = o.sentAt;
    this.out = null;
    this.retxGen++;
    if (kind === RequestKind.Register) {
      // A re-registration with no answer ends nothing at the hub (docs/protocol.md, Observe lifecycle,
      // "Keepalive"): the relation the device held stays, its notifications are still taken, and the
      // registration goes again later. Resetting them would end a relation that still works.
      this.registered = false;
      this.host.counters.registrationFailures++;
      this.host.onRegistered(this, { device: this.id, code: 'timeout', observing: false, sentAt, at: this.host.now() });
      this.settledRegistration(false);
      this.retryRegisterLater();
    } else if (kind === RequestKind.Block) {
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

/** A Block2 value (RFC 7959 §2.2), as protocol/coap.ts's readBlock reads it. */
function readBlockValue(n: number): { readonly num: number; readonly more: boolean; readonly szx: number } {
  return { num: Math.floor(n / 16), more: (n & 0x08) !== 0, szx: n & 0x07 };
}
