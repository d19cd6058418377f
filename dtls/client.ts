/**
 * The device side of coaps: one DTLS 1.2 PSK session to the hub over a UDP socket the caller owns (it
 * passes the function that sends a datagram to the hub), done by OpenSSL through the addon. Plaintext goes in with `send`, decrypted datagrams come out through `onData`.
 * When the session ends (the hub restarted, or closed it as idle) the next send starts a new handshake and
 * what waits is sent once it is open.
 */
import { loadDtls, SessionState } from './native.ts';
import type { DtlsAddon, NativeHandle, SessionResult } from './native.ts';

export const CLIENT_CIPHERS = 'PSK-AES128-CCM8:PSK-AES128-GCM-SHA256';
/** Plaintext datagrams kept while a handshake runs; older ones are dropped (CoAP retransmits). */
const MAX_WAITING = 16;
const DEFAULT_HANDSHAKE_MS = 15_000;

export class DtlsHandshakeError extends Error {
  readonly code = 'HENGE_E_DTLS_HANDSHAKE';
}

export interface Psk {
  readonly identity: string;
  /** The key's text; its ASCII bytes are the PSK. */
  readonly key: string;
}

export class DtlsClient {
  private readonly addon: DtlsAddon;
  private session: NativeHandle | null = null;
  private state: SessionState = SessionState.Closed;
  private waiting: Buffer[] = [];
  private timer: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private handler: (data: Buffer) => void = () => undefined;
  private opened: Array<{ resolve(): void; reject(err: Error): void }> = [];
  private closed = false;

  /**
   * @param sendDatagram sends one datagram to the hub
   * @param hubName the hub in error messages, e.g. `127.0.0.1 port 5684`
   */
  constructor(
    private readonly sendDatagram: (datagram: Buffer) => void,
    private readonly psk: Psk,
    private readonly hubName: string,
    private readonly handshakeMs = DEFAULT_HANDSHAKE_MS,
  ) {
    this.addon = loadDtls();
  }

  get isOpen(): boolean {
    return this.state === SessionState.Open;
  }

  onData(handler: (data: Buffer) => void): void {
    this.handler = handler;
  }

  /** Resolves once a session is open (starting a handshake if none runs); rejects when it fails or times out. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new DtlsHandshakeError('the DTLS client is closed'));
    if (this.state === SessionState.Open) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.opened.push({ resolve, reject }));
    if (this.state !== SessionState.Handshaking) this.start();
    return p;
  }

  send(plain: Buffer): void {
    if (this.closed) return;
    if (this.session && this.state === SessionState.Open) {
      const r = this.addon.write(this.session, plain);
      if (Buffer.isBuffer(r)) this.sendDatagram(r);
      else this.step(r);
      return;
    }
    this.waiting.push(plain);
    if (this.waiting.length > MAX_WAITING) this.waiting.shift();
    if (this.state !== SessionState.Handshaking) this.connect().catch(() => undefined);
  }

  /** A datagram from the hub (the caller checked it came from the hub's address). */
  receive(datagram: Buffer): void {
    if (!this.session || this.closed) return;
    const r = this.addon.feed(this.session, datagram);
    if (Buffer.isBuffer(r)) this.handler(r);
    else this.step(r);
  }

  /** Sends close_notify and frees the session; the socket stays the caller's. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.end(new DtlsHandshakeError('the DTLS client is closed'), true);
  }

  private start(): void {
    const r = this.addon.createClient({ ciphers: CLIENT_CIPHERS, identity: this.psk.identity, key: Buffer.from(this.psk.key, 'ascii') });
    this.session = r.session;
    this.state = SessionState.Handshaking;
    this.deadline = setTimeout(() => this.end(new DtlsHandshakeError(`no DTLS session with ${this.hubName} after ${this.handshakeMs} ms (wrong key, or no coaps there)`), false), this.handshakeMs);
    this.deadline.unref();
    this.step(r);
  }

  private step(r: SessionResult): void {
    for (const d of r.out) this.sendDatagram(d);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (r.state === SessionState.Closed) {
      this.end(new DtlsHandshakeError(`the DTLS session ended${r.error ? `: ${r.error}` : ''}`), false);
      return;
    }
    if (this.state === SessionState.Handshaking && r.state === SessionState.Open) {
      this.state = SessionState.Open;
      if (this.deadline) clearTimeout(this.deadline);
      this.deadline = null;
      for (const o of this.opened.splice(0)) o.resolve();
      const waiting = this.waiting;
      this.waiting = [];
      for (const w of waiting) this.send(w);
    }
    if (r.timeoutMs >= 0 && this.session) {
      const session = this.session;
      this.timer = setTimeout(() => {
        if (this.session === session) this.step(this.addon.timeout(session));
      }, r.timeoutMs);
      this.timer.unref();
    }
    for (const d of r.data) this.handler(d);
  }

  private end(err: Error, notify: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
    this.timer = null;
    this.deadline = null;
    if (this.session) {
      const out = this.addon.close(this.session);
      if (notify) for (const d of out) this.sendDatagram(d);
    }
    this.session = null;
    this.state = SessionState.Closed;
    for (const o of this.opened.splice(0)) o.reject(err);
  }
}
