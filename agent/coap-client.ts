/**
 * A small CoAP client (RFC 7252) on node:dgram and protocol/coap.ts, for one peer (the hub):
 * - confirmable requests with retransmission (ACK_TIMEOUT 2 s × random 1..1.5, doubling, MAX_RETRANSMIT 4),
 *   one at a time (NSTART 1), matched by message id and token; piggybacked and separate responses; a
 *   request can be abandoned (its AbortSignal), so a newer one need not wait out its retransmissions;
 * - incoming confirmable notifications are ACKed, duplicates (same message id within EXCHANGE_LIFETIME) are
 *   ACKed again but delivered once; notifications for tokens nobody observes get an RST;
 * - IPv4 and IPv6 (one socket of the peer's family).
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { MessageKind, Method, Transmission, blockOption, emptyMessage, generateMessage, parseMessage, uintOption } from '../protocol/coap.ts';
import type { Block, CoapMessage } from '../protocol/coap.ts';
import { DtlsClient } from '../dtls/client.ts';
import type { Psk } from '../dtls/client.ts';
import { CoapAbortedError, CoapResetError, CoapTimeoutError } from './errors.ts';

/** RFC 7252 §4.8.2: how long a message id stays in use, and how long duplicates are recognised. */
export const EXCHANGE_LIFETIME_MS = 247_000;
/** How long to wait for a separate response after an empty ACK (RFC 7252 MAX_TRANSMIT_WAIT). */
export const SEPARATE_RESPONSE_WAIT_MS = 93_000;
const DEDUP_MAX = 1024;

export interface RequestSpec {
  readonly method: 'GET' | 'POST';
  readonly path: readonly string[];
  readonly observe?: number;
  readonly etag?: Uint8Array;
  readonly block2?: Block;
  readonly contentFormat?: number;
  readonly payload?: Uint8Array;
  /** The token to use (an observation's); a fresh random one otherwise. */
  readonly token?: Buffer;
  /** Give up after this long even if retransmissions remain (best-effort requests), ms. */
  readonly deadlineMs?: number;
  /**
   * Abandons the request when aborted: taken out of the queue, or (in flight) no more retransmissions and
   * a late answer is dropped; the promise rejects with CoapAbortedError and the next request goes out.
   */
  readonly signal?: AbortSignal;
}

export interface PeerAddress {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
}

export interface ClientEvents {
  /** A request was sent again (n = 1..MAX_RETRANSMIT). */
  onRetransmit?(spec: RequestSpec, n: number): void;
  /** A datagram was dropped: not CoAP, from another address, or a duplicate. */
  onDrop?(why: string): void;
}

export interface ClientOptions extends ClientEvents {
  readonly random?: () => number;
  /** coaps: a DTLS PSK session carries every datagram (docs/protocol.md, "Security"). */
  readonly psk?: Psk;
}

export type NotificationHandler = (msg: CoapMessage) => void;

interface Exchange {
  readonly spec: RequestSpec;
  readonly mid: number;
  readonly token: Buffer;
  readonly bytes: Buffer;
  retransmits: number;
  timeoutMs: number;
  timer: NodeJS.Timeout | null;
  deadline: NodeJS.Timeout | null;
  /** An empty ACK came: no more retransmissions, a separate response follows. */
  acknowledged: boolean;
  resolve(msg: CoapMessage): void;
  reject(err: Error): void;
}

interface Queued {
  readonly spec: RequestSpec;
  resolve(msg: CoapMessage): void;
  reject(err: Error): void;
}

const METHOD_CODE = { GET: Method.Get, POST: Method.Post } as const;

/** IPv6 addresses in one spelling (`0:0::1` and `::1` are the same peer). */
function canonicalAddress(address: string, family: 4 | 6): string {
  if (family !== 6) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}

export class CoapClient {
  private readonly exchanges = new Map<number, Exchange>();
  private readonly queue: Queued[] = [];
  private readonly observers = new Map<string, NotificationHandler>();
  /** Incoming confirmable message ids already answered, with the answer (for duplicates). */
  private readonly answered = new Map<number, { reply: Buffer; at: number }>();
  private nextMid: number;
  private closed = false;
  private readonly peerAddress: string;
  private readonly random: () => number;
  private readonly dtls: DtlsClient | null;

  private constructor(
    private readonly socket: Socket,
    readonly peer: PeerAddress,
    private readonly opts: ClientOptions,
  ) {
    this.random = opts.random ?? Math.random;
    this.nextMid = Math.floor(this.random() * 0x10000);
    this.peerAddress = canonicalAddress(peer.address, peer.family);
    this.dtls = opts.psk ? new DtlsClient((d) => socket.send(d, peer.port, peer.address), opts.psk, `${peer.address} port ${peer.port}`) : null;
    this.dtls?.onData((plain) => this.receiveCoap(plain));
    socket.on('message', (buf, rinfo) => this.receive(buf, rinfo));
    // Send errors (e.g. an ICMP unreachable reported late) are not fatal: the exchange times out.
    socket.on('error', (err) => opts.onDrop?.(`socket error: ${err.message}`));
  }

  static async open(peer: PeerAddress, opts: ClientOptions = {}): Promise<CoapClient> {
    const socket = createSocket({ type: peer.family === 6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const client = new CoapClient(socket, peer, opts);
    if (client.dtls) {
      // The handshake first: a wrong key or a hub without coaps fails here, not as a request timeout.
      await client.dtls.connect().catch(async (err: unknown) => {
        await client.close();
        throw err;
      });
    }
    return client;
  }

  /** The local UDP port (what the hub sees as this device's endpoint). */
  get localPort(): number {
    return this.socket.address().port;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  newToken(): Buffer {
    return randomBytes(4);
  }

  /** Delivers 2.xx notifications (CON or NON) carrying `token` to `handler` until `unobserve`. */
  observe(token: Buffer, handler: NotificationHandler): void {
    this.observers.set(token.toString('hex'), handler);
  }

  unobserve(token: Buffer): void {
    this.observers.delete(token.toString('hex'));
  }

  /** Sends a confirmable request; resolves with the response, or rejects (timeout, RST, aborted). */
  request(spec: RequestSpec): Promise<CoapMessage> {
    if (this.closed) return Promise.reject(new CoapAbortedError('the CoAP client is closed'));
    if (spec.signal?.aborted) return Promise.reject(new CoapAbortedError(`${describe(spec)} abandoned before it was sent`));
    return new Promise((resolve, reject) => {
      this.queue.push({ spec, resolve, reject });
      spec.signal?.addEventListener('abort', () => this.abandon(spec), { once: true });
      this.pump();
    });
  }

  /** The request of `spec` is not wanted any more (its signal aborted). */
  private abandon(spec: RequestSpec): void {
    const why = `${describe(spec)} abandoned`;
    const i = this.queue.findIndex((q) => q.spec === spec);
    if (i >= 0) {
      const [q] = this.queue.splice(i, 1);
      q?.reject(new CoapAbortedError(why));
      return;
    }
    for (const ex of this.exchanges.values()) {
      if (ex.spec === spec) {
        this.finish(ex, new CoapAbortedError(why));
        return;
      }
    }
  }

  /** Rejects every request in flight or queued (the client stays usable). */
  abortAll(reason = 'aborted'): void {
    for (const q of this.queue.splice(0)) q.reject(new CoapAbortedError(reason));
    for (const ex of [...this.exchanges.values()]) this.finish(ex, new CoapAbortedError(reason));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.abortAll('the CoAP client is closed');
    this.closed = true;
    this.observers.clear();
    this.dtls?.close();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private allocateMid(): number {
    this.nextMid = (this.nextMid + 1) & 0xffff;
    return this.nextMid;
  }

  /** NSTART 1: the next queued request goes out when nothing is outstanding. */
  private pump(): void {
    if (this.closed || this.exchanges.size > 0) return;
    const next = this.queue.shift();
    if (!next) return;
    const { spec } = next;
    const mid = this.allocateMid();
    const token = spec.token ?? this.newToken();
    const options: Array<{ name: string; value: Buffer }> = [];
    if (spec.observe !== undefined) options.push({ name: 'Observe', value: uintOption(spec.observe) });
    if (spec.etag) options.push({ name: 'ETag', value: Buffer.from(spec.etag) });
    for (const segment of spec.path) options.push({ name: 'Uri-Path', value: Buffer.from(segment, 'utf8') });
    if (spec.contentFormat !== undefined) options.push({ name: 'Content-Format', value: uintOption(spec.contentFormat) });
    if (spec.block2) options.push({ name: 'Block2', value: blockOption(spec.block2) });
    let bytes: Buffer;
    try {
      bytes = generateMessage({
        confirmable: true,
        code: METHOD_CODE[spec.method],
        messageId: mid,
        token,
        options,
        ...(spec.payload ? { payload: Buffer.from(spec.payload) } : {}),
      });
    } catch (err) {
      next.reject(err instanceof Error ? err : new Error(String(err)));
      this.pump();
      return;
    }
    const ex: Exchange = {
      spec,
      mid,
      token,
      bytes,
      retransmits: 0,
      timeoutMs: Transmission.ackTimeoutMs * (1 + this.random() * (Transmission.ackRandomFactor - 1)),
      timer: null,
      deadline: null,
      acknowledged: false,
      resolve: next.resolve,
      reject: next.reject,
    };
    this.exchanges.set(mid, ex);
    if (spec.deadlineMs !== undefined) {
      ex.deadline = setTimeout(() => this.finish(ex, new CoapTimeoutError(`no answer to ${describe(spec)} within ${spec.deadlineMs} ms`)), spec.deadlineMs);
    }
    this.send(bytes);
    ex.timer = setTimeout(() => this.onTimeout(ex), ex.timeoutMs);
  }

  private onTimeout(ex: Exchange): void {
    ex.timer = null;
    if (this.exchanges.get(ex.mid) !== ex || ex.acknowledged) return;
    if (ex.retransmits >= Transmission.maxRetransmit) {
      this.finish(ex, new CoapTimeoutError(`no answer to ${describe(ex.spec)} after ${ex.retransmits} retransmissions`));
      return;
    }
    ex.retransmits++;
    ex.timeoutMs *= 2;
    this.opts.onRetransmit?.(ex.spec, ex.retransmits);
    this.send(ex.bytes);
    ex.timer = setTimeout(() => this.onTimeout(ex), ex.timeoutMs);
  }

  private finish(ex: Exchange, result: CoapMessage | Error): void {
    if (this.exchanges.get(ex.mid) !== ex) return;
    this.exchanges.delete(ex.mid);
    if (ex.timer) clearTimeout(ex.timer);
    if (ex.deadline) clearTimeout(ex.deadline);
    ex.timer = null;
    ex.deadline = null;
    if (result instanceof Error) ex.reject(result);
    else ex.resolve(result);
    this.pump();
  }

  private send(bytes: Buffer): void {
    if (this.closed) return;
    if (this.dtls) this.dtls.send(bytes);
    else this.socket.send(bytes, this.peer.port, this.peer.address);
  }

  private receive(buf: Buffer, rinfo: RemoteInfo): void {
    if (rinfo.port !== this.peer.port || canonicalAddress(rinfo.address, this.peer.family) !== this.peerAddress) {
      this.opts.onDrop?.(`datagram from ${rinfo.address} port ${rinfo.port}, not the hub`);
      return;
    }
    if (this.dtls) this.dtls.receive(buf);
    else this.receiveCoap(buf);
  }

  private receiveCoap(buf: Buffer): void {
    let msg: CoapMessage;
    try {
      msg = parseMessage(buf);
    } catch {
      this.opts.onDrop?.('not a CoAP message');
      return;
    }
    if (msg.code === '0.00') {
      if (msg.ack || msg.reset) this.onEmpty(msg);
      else if (msg.confirmable) this.reply(msg.messageId, this.rst(msg.messageId)); // CoAP ping: RST is the answer
      return;
    }
    if (msg.ack) {
      // A piggybacked response: matched by message id, and its token must be the request's.
      const ex = this.exchanges.get(msg.messageId);
      if (ex && ex.token.equals(msg.token)) this.finish(ex, msg);
      else this.opts.onDrop?.(`response to an unknown exchange (mid ${msg.messageId})`);
      return;
    }
    if (msg.reset) return;
    if (msg.code.startsWith('0.')) {
      // A request: this client serves nothing.
      if (msg.confirmable) this.reply(msg.messageId, this.rst(msg.messageId));
      return;
    }
    // A separate response or a notification (CON or NON).
    if (msg.confirmable) {
      const prior = this.answered.get(msg.messageId);
      if (prior && Date.now() - prior.at < EXCHANGE_LIFETIME_MS) {
        this.send(prior.reply);
        this.opts.onDrop?.(`duplicate of mid ${msg.messageId}`);
        return;
      }
    }
    const waiting = [...this.exchanges.values()].find((e) => e.acknowledged && e.token.equals(msg.token));
    const handler = this.observers.get(msg.token.toString('hex'));
    if (!waiting && !handler) {
      // Nobody asked for this (RFC 7641 §3.6): RST, so the hub ends that relation.
      if (msg.confirmable) this.reply(msg.messageId, this.rst(msg.messageId));
      else this.send(this.rst(msg.messageId));
      return;
    }
    if (msg.confirmable) this.reply(msg.messageId, this.emptyAck(msg.messageId));
    if (waiting) this.finish(waiting, msg);
    else handler?.(msg);
  }

  private onEmpty(msg: CoapMessage): void {
    const ex = this.exchanges.get(msg.messageId);
    if (!ex) return;
    if (msg.reset) {
      this.finish(ex, new CoapResetError(`the hub reset ${describe(ex.spec)}`));
      return;
    }
    // Empty ACK: the response comes separately, with the same token.
    ex.acknowledged = true;
    if (ex.timer) clearTimeout(ex.timer);
    ex.timer = setTimeout(() => this.finish(ex, new CoapTimeoutError(`no separate response to ${describe(ex.spec)}`)), SEPARATE_RESPONSE_WAIT_MS);
  }

  /** Sends `bytes` in answer to incoming message `mid`, and remembers it for duplicates. */
  private reply(mid: number, bytes: Buffer): void {
    const now = Date.now();
    if (this.answered.size >= DEDUP_MAX) {
      for (const [k, v] of this.answered) {
        if (now - v.at >= EXCHANGE_LIFETIME_MS || this.answered.size >= DEDUP_MAX) this.answered.delete(k);
        else break;
      }
    }
    this.answered.delete(mid);
    this.answered.set(mid, { reply: bytes, at: now });
    this.send(bytes);
  }

  private emptyAck(mid: number): Buffer {
    return emptyMessage(MessageKind.Ack, mid);
  }

  private rst(mid: number): Buffer {
    return emptyMessage(MessageKind.Rst, mid);
  }
}

export function describe(spec: RequestSpec): string {
  const obs = spec.observe !== undefined ? ` (Observe ${spec.observe})` : '';
  const block = spec.block2 ? ` (Block2 ${spec.block2.num})` : '';
  return `${spec.method} /${spec.path.join('/')}${obs}${block}`;
}
