/**
 * The DTLS adapter of the datagram port (DTLS 1.2, PSK; RFC 7252 §9.1.3.1): OpenSSL, through the addon in
 * dtls/, secures one UDP socket for every device. The CoAP engine above it is unchanged: it receives
 * plaintext datagrams whose Peer carries the PSK identity the device proved, and its sends are encrypted
 * for that peer's session.
 *
 * What it guarantees:
 * - No state for a stranger: a ClientHello without a valid cookie gets a HelloVerifyRequest from a
 *   stateless listener (DTLSv1_listen); a session exists only once the peer has shown it receives at its
 *   address.
 * - At most `maxHandshakes` handshakes in progress (more ClientHellos wait: their client retransmits), and
 *   at most `maxHandshakesPerAddress` from one IP address, any port (more cookie-verified ClientHellos from
 *   it are dropped).
 * - An address whose handshakes failed `failedHandshakesPerMinute` times (a wrong key, an unknown identity,
 *   a handshake not finished in time) gets its ClientHellos dropped, before the cookie exchange, until its
 *   minute is over.
 * - A wrong key fails at once: the PSK lookup runs inside `feed()` for a known session, so when that
 *   session's ChangeCipherSpec and Finished are in and it is still handshaking with nothing to answer, its
 *   Finished did not decrypt; the session ends and the client gets a fatal alert. Unknown identities fail
 *   at once in OpenSSL. Every other handshake ends by `handshakeMs`.
 * - An open session is never ended by a handshake that has not proved its key: a new ClientHello from the
 *   address and port of an open session (a device that rebooted, or someone replaying its cookie) starts a
 *   handshake beside it. Handshake-layer records from that peer go to the new handshake, application data
 *   to the open session; only when the new handshake completes does it take the open session's place. A
 *   replacement that fails or times out leaves the open session as it was.
 * - `onHandshake` hears every handshake's outcome once (not those cut short by `close()`).
 * - A datagram no DTLS record could be (empty, or over 16,640 bytes) is dropped unread, whoever sends it.
 * - Handshake retransmissions run on one timer wheel; an idle session is closed after `idleMs`.
 */
import { loadDtls, SessionState } from '../../dtls/native.ts';
import type { DtlsAddon, NativeHandle, SessionResult } from '../../dtls/native.ts';
import { handshakeRecords, isHandshakeLayer, isNewHandshake, MAX_DATAGRAM, SEEN_BOTH, WRONG_KEY_ALERT } from './dtls-records.ts';
import { HandshakeLimits } from './dtls-session-limits.ts';
import { DEFAULT_CIPHERS, DEFAULT_HANDSHAKE_MS, DEFAULT_IDLE_MS, HandshakeOutcome, newCounters } from './dtls-options.ts';
import type { DtlsCounters, DtlsOptions } from './dtls-options.ts';
import { TimerWheel } from './timer-wheel.ts';
import type { WheelTimer } from './timer-wheel.ts';
import { peerKey } from './transport.ts';
import type { DatagramTransport, Peer } from './transport.ts';
import { UdpTransport } from './udp-transport.ts';

export { DEFAULT_FAILED_HANDSHAKES_PER_MINUTE, DEFAULT_MAX_HANDSHAKES, DEFAULT_MAX_HANDSHAKES_PER_ADDRESS } from './dtls-session-limits.ts';
export { DEFAULT_CIPHERS, DEFAULT_HANDSHAKE_MS, DEFAULT_IDLE_MS, HandshakeOutcome } from './dtls-options.ts';
export type { DtlsCounters, DtlsLog, DtlsOptions, HandshakeEvent } from './dtls-options.ts';

interface Session {
  readonly key: string;
  readonly startedAt: number;
  handle: NativeHandle;
  peer: Peer;
  state: SessionState;
  lastActive: number;
  timer: WheelTimer<Session> | null;
  /** The identity the handshake claimed (its PSK lookup), before it is proved. */
  claimed: string | null;
  /** pskLookup answered with a key (true), with none (false), or was not asked yet (null). */
  keyFound: boolean | null;
  /** Seen bits (dtls-records.ts) of the handshake's datagrams so far. */
  seen: number;
  /** A handshake beside this open session, from its address and port, that takes its place once it opens. */
  next: Session | null;
  /** For such a handshake: the open session it would replace. */
  replaces: Session | null;
}

export class DtlsTransport implements DatagramTransport {
  readonly counters: DtlsCounters = newCounters();
  private handler: (bytes: Buffer, from: Peer) => void = () => undefined;
  /** One session per peer key: open or handshaking. A replacement handshake hangs off its open session. */
  private readonly sessions = new Map<string, Session>();
  private replacements = 0;
  private readonly limits: HandshakeLimits;
  private readonly server: NativeHandle;
  /** The session whose handshake is in `addon.feed()`: the PSK lookup happens there, synchronously. */
  private feeding: Session | null = null;
  private closing = false;
  private readonly wheel: TimerWheel<Session>;
  private readonly sweep: NodeJS.Timeout;
  private readonly idleMs: number;
  private readonly handshakeMs: number;

  private constructor(
    private readonly udp: UdpTransport,
    private readonly addon: DtlsAddon,
    private readonly opts: DtlsOptions,
  ) {
    this.server = addon.createServer({ ciphers: opts.ciphers ?? DEFAULT_CIPHERS, pskLookup: (identity) => this.lookup(identity) });
    this.limits = new HandshakeLimits(opts);
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.handshakeMs = opts.handshakeMs ?? DEFAULT_HANDSHAKE_MS;
    this.wheel = new TimerWheel<Session>(50, 512, (s) => this.retransmit(s));
    this.sweep = setInterval(() => this.expire(), Math.max(250, Math.min(30_000, this.idleMs / 4, this.handshakeMs / 4)));
    this.sweep.unref();
    udp.onDatagram((bytes, from) => this.receive(bytes, from));
  }

  static async open(opts: DtlsOptions): Promise<DtlsTransport> {
    const addon = loadDtls();
    const udp = await UdpTransport.open(opts);
    try {
      return new DtlsTransport(udp, addon, opts);
    } catch (err) {
      await udp.close();
      throw err;
    }
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

  /** Sessions open or handshaking (replacement handshakes included). */
  get sessionCount(): number {
    return this.sessions.size + this.replacements;
  }

  /** Handshakes in progress (replacements included). */
  get handshakeCount(): number {
    return this.limits.inProgress;
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
      this.step(s, r, HandshakeOutcome.Failed);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweep);
    for (const s of [...this.sessions.values()]) {
      if (s.next) this.end(s.next, null, false, HandshakeOutcome.Failed);
      this.end(s, null, true, HandshakeOutcome.Failed);
    }
    this.wheel.close();
    await this.udp.close();
  }

  /** Closes every session of `identity` at once, and its handshakes that looked its key up (its key changed, or its device was removed). */
  closeIdentity(identity: string): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (s.state === SessionState.Closed) continue; // ended meanwhile (by an onHandshake callback)
      if (s.next && s.next.claimed === identity) {
        this.end(s.next, 'key revoked', false, HandshakeOutcome.Failed);
        n++;
      }
      if (s.peer.identity === identity || (s.state === SessionState.Handshaking && s.claimed === identity)) {
        this.end(s, 'key revoked', true, HandshakeOutcome.Failed);
        n++;
      }
    }
    this.counters.sessionsRevoked += n;
    return n;
  }

  private receive(bytes: Buffer, from: Peer): void {
    // The addon throws on these (a throw here would end the process): anyone can send them.
    if (bytes.length === 0 || bytes.length > MAX_DATAGRAM) {
      this.counters.datagramsInvalid++;
      return;
    }
    const key = peerKey(from);
    const s = this.sessions.get(key);
    if (s !== undefined) {
      if (s.state !== SessionState.Open) return this.feedHandshake(s, bytes);
      const next = s.next;
      // The hot path: application data for an open session, the plaintext back as a bare Buffer.
      if (next === null ? !isNewHandshake(bytes) : !isHandshakeLayer(bytes)) {
        s.lastActive = Date.now();
        const r = this.addon.feed(s.handle, bytes);
        if (Buffer.isBuffer(r)) this.handler(r, s.peer);
        else this.step(s, r, HandshakeOutcome.Failed);
        return;
      }
      if (next !== null) return this.feedHandshake(next, bytes);
    }
    this.accept(bytes, from, key, s);
  }

  /** A datagram with no session to go to, or a ClientHello beside an open session: the cookie exchange. */
  private accept(bytes: Buffer, from: Peer, key: string, open: Session | undefined): void {
    // Only a ClientHello can start anything here: the rest is dropped, counted, without asking OpenSSL.
    if (!isNewHandshake(bytes)) {
      this.counters.datagramsDropped++;
      return;
    }
    if (this.limits.overBudget(from.address)) {
      this.counters.handshakesRefusedFailures++;
      return;
    }
    if (this.limits.full) {
      this.counters.handshakesRefusedBusy++;
      return;
    }
    const r = this.addon.listen(this.server, key, bytes);
    if (!r.session) {
      for (const d of r.out) this.udp.send(d, from);
      if (r.out.length > 0) this.counters.helloVerifyRequests++;
      else this.counters.datagramsDropped++; // a ClientHello OpenSSL would not answer (e.g. malformed)
      return;
    }
    if (this.limits.addressFull(from.address)) {
      this.addon.close(r.session);
      this.counters.handshakesRefusedAddress++;
      return;
    }
    // The peer proved it receives at this address: its handshake starts (beside an open session there).
    const now = Date.now();
    const s: Session = {
      key,
      startedAt: now,
      handle: r.session,
      peer: { address: from.address, port: from.port },
      state: SessionState.Handshaking,
      lastActive: now,
      timer: null,
      claimed: null,
      keyFound: null,
      seen: 0,
      next: null,
      replaces: null,
    };
    if (open) {
      open.next = s;
      s.replaces = open;
      this.replacements++;
    } else {
      this.sessions.set(key, s);
    }
    this.limits.started(from.address);
    this.counters.handshakesStarted++;
    this.step(
      s,
      { out: r.out, data: [], state: r.state ?? SessionState.Handshaking, timeoutMs: r.timeoutMs ?? -1, identity: null, error: r.error ?? null },
      HandshakeOutcome.Failed,
    );
  }

  /** A datagram for a handshake in progress; tells a wrong key from a Finished still to come. */
  private feedHandshake(s: Session, bytes: Buffer): void {
    s.lastActive = Date.now();
    const seen = handshakeRecords(bytes);
    s.seen |= seen;
    this.feeding = s;
    let r: SessionResult | Buffer;
    try {
      r = this.addon.feed(s.handle, bytes);
    } finally {
      this.feeding = null;
    }
    if (Buffer.isBuffer(r)) {
      // The addon returns a bare Buffer only for a session already open; a handshake always has its flight.
      this.end(s, 'opened without a handshake result', false, HandshakeOutcome.Failed);
      return;
    }
    // Its key was looked up, its ChangeCipherSpec and Finished are in, and OpenSSL still waits with nothing
    // to say: the Finished did not decrypt (RFC 6347 §4.1.2.7 drops it silently). Nothing else comes.
    if (r.state === SessionState.Handshaking && r.out.length === 0 && s.keyFound === true && seen !== 0 && (s.seen & SEEN_BOTH) === SEEN_BOTH) {
      this.udp.send(WRONG_KEY_ALERT, s.peer);
      this.end(s, 'the Finished did not decrypt (a wrong key)', false, HandshakeOutcome.WrongKey);
      return;
    }
    this.step(s, r, HandshakeOutcome.Failed);
  }

  /** The server's PSK callback: the key for the identity the session being fed claims. */
  private lookup(identity: string): Buffer | null {
    const s = this.feeding;
    if (s === null) {
      // OpenSSL asks only while processing a ClientKeyExchange, which only feed() passes it.
      this.opts.log?.warn({ identity }, 'DTLS PSK lookup outside a handshake; refused');
      return null;
    }
    s.claimed = identity;
    let key: Buffer | null;
    try {
      key = this.opts.pskLookup(identity, s.peer);
    } catch (err) {
      // The addon would take a throw for an unknown identity and drop it: it is reported here instead (the
      // handshake fails with outcome 'failed').
      this.opts.log?.warn({ err, identity, peer: s.key }, 'DTLS pskLookup threw; the handshake fails');
      return null;
    }
    s.keyFound = key !== null && key.length > 0;
    return key;
  }

  /**
   * Sends what OpenSSL produced, moves the session's state, hands plaintext to the engine. `failure` is
   * the outcome if this ends the handshake.
   */
  private step(s: Session, r: SessionResult, failure: HandshakeOutcome): void {
    for (const d of r.out) this.udp.send(d, s.peer);
    let opened = false;
    if (s.state === SessionState.Handshaking && r.state === SessionState.Open) {
      if (r.identity === null) {
        // PSK always names an identity; a session without one gets nothing.
        this.end(s, 'no identity', true, HandshakeOutcome.Failed);
        return;
      }
      this.limits.ended(s.peer.address, false);
      this.counters.handshakesCompleted++;
      s.state = SessionState.Open;
      s.peer = { address: s.peer.address, port: s.peer.port, identity: r.identity };
      const old = s.replaces;
      if (old !== null) {
        // The replacement proved its key: it takes the open session's place.
        this.unlink(s);
        this.sessions.set(s.key, s);
        this.end(old, 'replaced by a new session', false, HandshakeOutcome.Failed);
        this.counters.sessionsReplaced++;
      }
      opened = true;
      this.opts.log?.debug({ peer: s.key, identity: r.identity, replaced: old !== null }, 'DTLS session open');
    }
    if (s.timer) {
      this.wheel.cancel(s.timer);
      s.timer = null;
    }
    if (r.state === SessionState.Closed) {
      this.end(s, r.error, false, failure);
      return;
    }
    if (r.timeoutMs >= 0) s.timer = this.wheel.schedule(r.timeoutMs, s);
    if (opened) this.opts.onHandshake?.({ identity: r.identity, peer: s.peer, outcome: HandshakeOutcome.Open });
    for (const d of r.data) this.handler(d, s.peer);
  }

  private retransmit(s: Session): void {
    s.timer = null;
    if (!this.isLive(s)) return;
    this.step(s, this.addon.timeout(s.handle), HandshakeOutcome.Timeout);
  }

  private isLive(s: Session): boolean {
    const primary = this.sessions.get(s.key);
    return primary === s || (primary !== undefined && primary.next === s);
  }

  /** Takes `s` out of its place: a replacement handshake from its open session; an open session hands its place to its replacement. */
  private unlink(s: Session): void {
    const old = s.replaces;
    if (old !== null) {
      old.next = null;
      s.replaces = null;
      this.replacements--;
      return;
    }
    if (this.sessions.get(s.key) !== s) return;
    const next = s.next;
    if (next === null) {
      this.sessions.delete(s.key);
      return;
    }
    s.next = null;
    next.replaces = null;
    this.replacements--;
    this.sessions.set(s.key, next);
  }

  /** Ends `s`; a handshake ends with `outcome` (or unknown-identity, when its lookup found no key). */
  private end(s: Session, error: string | null, notify: boolean, outcome: HandshakeOutcome): void {
    if (s.state === SessionState.Closed) return;
    this.unlink(s);
    if (s.timer) this.wheel.cancel(s.timer);
    s.timer = null;
    const handshaking = s.state === SessionState.Handshaking;
    s.state = SessionState.Closed;
    const out = this.addon.close(s.handle);
    if (notify) for (const d of out) this.udp.send(d, s.peer);
    if (!handshaking) return;
    const o = s.keyFound === false && outcome === HandshakeOutcome.Failed ? HandshakeOutcome.UnknownIdentity : outcome;
    this.limits.ended(s.peer.address, !this.closing);
    this.counters.handshakesFailed++;
    if (o === HandshakeOutcome.WrongKey) this.counters.handshakesWrongKey++;
    else if (o === HandshakeOutcome.UnknownIdentity) this.counters.handshakesUnknownIdentity++;
    this.opts.log?.debug({ peer: s.key, identity: s.claimed, outcome: o, error }, 'DTLS handshake failed');
    if (!this.closing) this.opts.onHandshake?.({ identity: s.claimed, peer: s.peer, outcome: o });
  }

  /** Ends sessions idle for idleMs, and handshakes (replacements too) still unfinished after handshakeMs. */
  private expire(): void {
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.state === SessionState.Closed) continue; // ended meanwhile (by an onHandshake callback)
      if (s.next && now - s.next.startedAt > this.handshakeMs) {
        this.end(s.next, 'handshake not finished in time', false, HandshakeOutcome.Timeout);
      }
      if (s.state === SessionState.Handshaking) {
        if (now - s.startedAt > this.handshakeMs) this.end(s, 'handshake not finished in time', false, HandshakeOutcome.Timeout);
      } else if (now - s.lastActive > this.idleMs) {
        this.counters.sessionsExpired++;
        this.end(s, 'idle', true, HandshakeOutcome.Failed);
      }
    }
  }
}
