/**
 * The DTLS adapter of the datagram port (DTLS 1.2, PSK; RFC 7252 §9.1.3.1): OpenSSL, through the addon in
 * dtls/, secures one UDP socket for every device. The CoAP engine above it is unchanged: it receives
 * plaintext datagrams whose Peer carries the PSK identity the device proved, and its sends are encrypted
 * for that peer's session.
 *
 * - No state for a stranger: a ClientHello without a valid cookie gets a HelloVerifyRequest from a
 *   stateless listener (DTLSv1_listen); a session exists only once the peer has shown it receives at its
 *   address.
 * - At most `maxHandshakes` handshakes in progress; more ClientHellos wait (their client retransmits).
 * - Handshake retransmissions run on one timer wheel; an idle session is closed after `idleMs`.
 * - A new handshake from the address of an open session (a device that rebooted) replaces that session
 *   once its cookie is verified.
 */
import { loadDtls, SessionState } from '../../dtls/native.ts';
import type { DtlsAddon, NativeHandle, SessionResult } from '../../dtls/native.ts';
import { TimerWheel } from './timer-wheel.ts';
import type { WheelTimer } from './timer-wheel.ts';
import { peerKey } from './transport.ts';
import type { DatagramTransport, Peer } from './transport.ts';
import { UdpTransport } from './udp-transport.ts';
import type { UdpOptions } from './udp-transport.ts';

/** TLS_PSK_WITH_AES_128_CCM_8 (mandatory, RFC 7252 §9.1.3.1), then TLS_PSK_WITH_AES_128_GCM_SHA256. */
export const DEFAULT_CIPHERS = 'PSK-AES128-CCM8:PSK-AES128-GCM-SHA256';
export const DEFAULT_MAX_HANDSHAKES = 256;
export const DEFAULT_IDLE_MS = 10 * 60_000;
/**
 * A handshake not done by then is dropped. A wrong key shows only as a Finished that does not decrypt,
 * which DTLS discards silently (RFC 6347 §4.1.2.7): without this limit such a session would hold a
 * handshake place until it went idle.
 */
export const DEFAULT_HANDSHAKE_MS = 20_000;

export interface DtlsLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DtlsOptions extends UdpOptions {
  /** The key of a PSK identity (a device id), or null: the handshake then fails. Never logged. */
  readonly pskLookup: (identity: string) => Buffer | null;
  readonly ciphers?: string;
  readonly maxHandshakes?: number;
  readonly idleMs?: number;
  readonly handshakeMs?: number;
  readonly log?: DtlsLog;
}

export interface DtlsCounters {
  helloVerifyRequests: number;
  handshakesStarted: number;
  handshakesCompleted: number;
  handshakesFailed: number;
  /** ClientHellos with a valid cookie not taken because maxHandshakes were in progress. */
  handshakesRefusedBusy: number;
  sessionsExpired: number;
  /** Sends for a peer without an open session of that identity (dropped). */
  sendsWithoutSession: number;
  /** Records OpenSSL refused to write (dropped; CoAP retransmits or gives up). */
  writeErrors: number;
  /** Sessions closed because their device's key changed or the device was removed. */
  sessionsRevoked: number;
}

interface Session {
  readonly key: string;
  readonly startedAt: number;
  handle: NativeHandle;
  peer: Peer;
  state: SessionState;
  lastActive: number;
  timer: WheelTimer<Session> | null;
}

/**
 * A ClientHello (handshake record, content type 22, epoch 0, handshake type 1): the start of a new
 * handshake, routed to the listener. Other epoch-0 handshake records (a retransmitted ClientKeyExchange
 * whose answer was lost) stay with their session.
 */
const isNewHandshake = (b: Buffer): boolean => b.length > 25 && b[0] === 22 && b[3] === 0 && b[4] === 0 && b[13] === 1;

export class DtlsTransport implements DatagramTransport {
  readonly counters: DtlsCounters = {
    helloVerifyRequests: 0,
    handshakesStarted: 0,
    handshakesCompleted: 0,
    handshakesFailed: 0,
    handshakesRefusedBusy: 0,
    sessionsExpired: 0,
    sendsWithoutSession: 0,
    writeErrors: 0,
    sessionsRevoked: 0,
  };
  private handler: (bytes: Buffer, from: Peer) => void = () => undefined;
  private readonly sessions = new Map<string, Session>();
  private handshaking = 0;
  private readonly wheel: TimerWheel<Session>;
  private readonly sweep: NodeJS.Timeout;
  private readonly maxHandshakes: number;
  private readonly idleMs: number;
  private readonly handshakeMs: number;

  private constructor(
    private readonly udp: UdpTransport,
    private readonly addon: DtlsAddon,
    private readonly server: NativeHandle,
    private readonly opts: DtlsOptions,
  ) {
    this.maxHandshakes = opts.maxHandshakes ?? DEFAULT_MAX_HANDSHAKES;
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.handshakeMs = opts.handshakeMs ?? DEFAULT_HANDSHAKE_MS;
    this.wheel = new TimerWheel<Session>(50, 512, (s) => this.retransmit(s));
    this.sweep = setInterval(() => this.expire(), Math.max(250, Math.min(30_000, this.idleMs / 4, this.handshakeMs / 4)));
    this.sweep.unref();
    udp.onDatagram((bytes, from) => this.receive(bytes, from));
  }

  static async open(opts: DtlsOptions): Promise<DtlsTransport> {
    const addon = loadDtls();
    const server = addon.createServer({ ciphers: opts.ciphers ?? DEFAULT_CIPHERS, pskLookup: opts.pskLookup });
    const udp = await UdpTransport.open(opts);
    return new DtlsTransport(udp, addon, server, opts);
  }

  get port(): number {
    return this.udp.port;
  }

  get receiveBufferBytes(): number {
    return this.udp.receiveBufferBytes;
  }

  get receiveQueueBytes(): number {
    return this.udp.receiveQueueBytes;
  }

  /** Sessions open or handshaking. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  onDatagram(handler: (bytes: Buffer, from: Peer) => void): void {
    this.handler = handler;
  }

  send(bytes: Uint8Array, to: Peer): void {
    const s = this.sessions.get(peerKey(to));
    // Only the session of the identity the engine means: another device may have taken this address.
    if (!s || s.state !== SessionState.Open || s.peer.identity !== to.identity) {
      this.counters.sendsWithoutSession++;
      return;
    }
    const plain = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const r = this.addon.write(s.handle, plain);
    if (Buffer.isBuffer(r)) this.udp.send(r, s.peer);
    else {
      if (r.error !== null) {
        this.counters.writeErrors++;
        this.opts.log?.warn({ peer: s.key, error: r.error, bytes: plain.length }, 'DTLS write refused');
      }
      this.step(s, r);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (const s of [...this.sessions.values()]) this.end(s, null, true);
    this.wheel.close();
    await this.udp.close();
  }

  private receive(bytes: Buffer, from: Peer): void {
    const key = peerKey(from);
    const existing = this.sessions.get(key);
    if (existing && !(existing.state === SessionState.Open && isNewHandshake(bytes))) {
      existing.lastActive = Date.now();
      const r = this.addon.feed(existing.handle, bytes);
      if (Buffer.isBuffer(r)) this.handler(r, existing.peer);
      else this.step(existing, r);
      return;
    }
    if (this.handshaking >= this.maxHandshakes) {
      this.counters.handshakesRefusedBusy++;
      return;
    }
    const r = this.addon.listen(this.server, key, bytes);
    for (const d of r.out) this.udp.send(d, from);
    if (!r.session) {
      if (r.out.length > 0) this.counters.helloVerifyRequests++;
      return;
    }
    // The peer proved it receives at this address: its session starts (a rebooted device's replaces the old).
    if (existing) this.end(existing, null, false);
    const s: Session = { key, startedAt: Date.now(), handle: r.session, peer: { address: from.address, port: from.port }, state: SessionState.Handshaking, lastActive: Date.now(), timer: null };
    this.sessions.set(key, s);
    this.handshaking++;
    this.counters.handshakesStarted++;
    this.step(s, {
      out: [],
      data: [],
      state: r.state ?? SessionState.Handshaking,
      timeoutMs: r.timeoutMs ?? -1,
      identity: null,
      error: r.error ?? null,
    });
  }

  /** Sends what OpenSSL produced, moves the session's state, hands plaintext to the engine. */
  private step(s: Session, r: SessionResult): void {
    for (const d of r.out) this.udp.send(d, s.peer);
    if (s.state === SessionState.Handshaking && r.state === SessionState.Open) {
      if (r.identity === null) {
        // PSK always names an identity; a session without one gets nothing.
        this.end(s, 'no identity', true);
        return;
      }
      this.handshaking--;
      this.counters.handshakesCompleted++;
      s.state = SessionState.Open;
      s.peer = { address: s.peer.address, port: s.peer.port, ...(r.identity !== null ? { identity: r.identity } : {}) };
      this.opts.log?.debug({ peer: s.key, identity: r.identity }, 'DTLS session open');
    }
    if (s.timer) {
      this.wheel.cancel(s.timer);
      s.timer = null;
    }
    if (r.state === SessionState.Closed) {
      this.end(s, r.error, false);
      return;
    }
    if (r.timeoutMs >= 0) s.timer = this.wheel.schedule(r.timeoutMs, s);
    for (const d of r.data) this.handler(d, s.peer);
  }

  private retransmit(s: Session): void {
    s.timer = null;
    if (this.sessions.get(s.key) !== s) return;
    this.step(s, this.addon.timeout(s.handle));
  }

  private end(s: Session, error: string | null, notify: boolean): void {
    if (this.sessions.get(s.key) === s) this.sessions.delete(s.key);
    if (s.timer) this.wheel.cancel(s.timer);
    s.timer = null;
    if (s.state === SessionState.Handshaking) {
      this.handshaking--;
      this.counters.handshakesFailed++;
      this.opts.log?.debug({ peer: s.key, error }, 'DTLS handshake failed');
    }
    const out = this.addon.close(s.handle);
    if (notify) for (const d of out) this.udp.send(d, s.peer);
    s.state = SessionState.Closed;
  }

  /** Closes every session of `identity` at once (its key changed, or its device was removed). */
  closeIdentity(identity: string): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (s.peer.identity !== identity) continue;
      this.end(s, 'key revoked', true);
      n++;
    }
    this.counters.sessionsRevoked += n;
    return n;
  }

  /** Ends sessions idle for idleMs, and handshakes still unfinished after handshakeMs. */
  private expire(): void {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.state === SessionState.Handshaking && now - s.startedAt > this.handshakeMs) {
        this.end(s, 'handshake not finished in time', false);
      } else if (now - s.lastActive > this.idleMs) {
        this.counters.sessionsExpired++;
        this.end(s, 'idle', true);
      }
    }
  }
}
