/**
 * A tiny CoAP test device on a real UDP socket (loopback): sends requests, matches their responses, queues
 * the hub's confirmable notifications (and ACKs them unless told not to). No retransmission: on loopback a
 * lost datagram is a failure worth seeing, so a request just times out.
 * Also `useCoapHub`: one in-process hub with its CoAP endpoint per test file, in a temp folder.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockOption, generateMessage, option, parseMessage, readBlock, readUint, uintOption } from '../../protocol/coap.ts';
import type { Block, CoapMessage } from '../../protocol/coap.ts';
import { startHub } from '../../hub/hub.ts';
import type { RunningHub } from '../../hub/hub.ts';

export interface RequestOptions {
  /** '0.01' GET, '0.02' POST, ... */
  readonly code: string;
  /** '/d/x/c' or '/.well-known/core'. */
  readonly path: string;
  /** Uri-Query values, e.g. ['d=x']. */
  readonly query?: readonly string[];
  readonly observe?: number;
  readonly etag?: Uint8Array;
  readonly block2?: { readonly num: number; readonly szx: number };
  readonly payload?: Uint8Array;
  readonly contentFormat?: number;
  /** Extra raw options (e.g. an unknown critical option number). */
  readonly extraOptions?: ReadonlyArray<{ readonly name: number | string; readonly value: Buffer }>;
  /** CON by default; false sends NON. */
  readonly confirmable?: boolean;
  readonly token?: Buffer;
  /** Use this message id (to send a duplicate); a fresh one by default. */
  readonly messageId?: number;
  readonly timeoutMs?: number;
}

/** A parsed message with the options tests look at most. */
export interface Response {
  readonly msg: CoapMessage;
  readonly code: string;
  readonly payload: Buffer;
  readonly observe: number | undefined;
  readonly etag: Buffer | undefined;
  readonly maxAge: number | undefined;
  readonly contentFormat: number | undefined;
  readonly block2: Block | undefined;
  readonly size2: number | undefined;
}

export function describeMessage(msg: CoapMessage): Response {
  const uint = (name: string): number | undefined => {
    const v = option(msg, name);
    return v === undefined ? undefined : readUint(v);
  };
  const block = option(msg, 'Block2');
  return {
    msg,
    code: msg.code,
    payload: msg.payload,
    observe: uint('Observe'),
    etag: option(msg, 'ETag'),
    maxAge: uint('Max-Age'),
    contentFormat: uint('Content-Format'),
    block2: block === undefined ? undefined : readBlock(block),
    size2: uint('Size2'),
  };
}

interface Pending {
  readonly mid: number;
  readonly token: Buffer;
  readonly confirmable: boolean;
  resolve(r: Response): void;
}

export class CoapTestClient {
  /** Confirmable (or NON) notifications from the hub, oldest first. */
  readonly notifications: Response[] = [];
  /** Every datagram received, parsed or not, for "nothing arrived" checks. */
  received = 0;
  /** Every parsed message received (responses, notifications, strays), oldest first. */
  readonly log: Response[] = [];
  private readonly pending = new Set<Pending>();
  private waiters: Array<() => void> = [];
  private mid = randomBytes(2).readUInt16BE(0);

  private constructor(
    private readonly socket: Socket,
    readonly hubAddress: string,
    readonly hubPort: number,
    /** ACK every confirmable notification at once. */
    public autoAck: boolean,
  ) {
    socket.on('message', (bytes) => this.onMessage(bytes));
  }

  static async open(hubPort: number, opts: { family?: 4 | 6; autoAck?: boolean } = {}): Promise<CoapTestClient> {
    const v6 = opts.family === 6;
    const socket = createSocket(v6 ? 'udp6' : 'udp4');
    const host = v6 ? '::1' : '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => undefined); // e.g. ICMP unreachable after the hub closed: not this helper's business
    return new CoapTestClient(socket, host, hubPort, opts.autoAck ?? true);
  }

  get port(): number {
    return this.socket.address().port;
  }

  nextMid(): number {
    this.mid = (this.mid + 1) & 0xffff;
    return this.mid;
  }

  /** Sends raw bytes to the hub (hostile input). */
  sendRaw(bytes: Uint8Array): void {
    this.socket.send(bytes, this.hubPort, this.hubAddress);
  }

  /** Builds the request datagram without sending it. */
  build(o: RequestOptions, mid: number, token: Buffer): Buffer {
    const options: Array<{ name: number | string; value: Buffer }> = [];
    if (o.observe !== undefined) options.push({ name: 'Observe', value: uintOption(o.observe) });
    if (o.etag) options.push({ name: 'ETag', value: Buffer.from(o.etag) });
    for (const seg of o.path.split('/').filter((s) => s !== '')) options.push({ name: 'Uri-Path', value: Buffer.from(seg) });
    if (o.contentFormat !== undefined) options.push({ name: 'Content-Format', value: uintOption(o.contentFormat) });
    for (const q of o.query ?? []) options.push({ name: 'Uri-Query', value: Buffer.from(q) });
    if (o.block2) options.push({ name: 'Block2', value: blockOption({ num: o.block2.num, more: false, szx: o.block2.szx }) });
    for (const x of o.extraOptions ?? []) options.push({ name: x.name, value: x.value });
    return generateMessage({
      code: o.code,
      confirmable: o.confirmable ?? true,
      messageId: mid,
      token,
      options,
      ...(o.payload ? { payload: Buffer.from(o.payload) } : {}),
    });
  }

  /** Sends a request and resolves with its response; rejects after `timeoutMs` (2 s) without one. */
  request(o: RequestOptions): Promise<Response> {
    const mid = o.messageId ?? this.nextMid();
    const token = o.token ?? randomBytes(4);
    const confirmable = o.confirmable ?? true;
    const bytes = this.build(o, mid, token);
    return new Promise<Response>((resolve, reject) => {
      const p: Pending = {
        mid,
        token,
        confirmable,
        resolve: (r) => {
          clearTimeout(timer);
          this.pending.delete(p);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.pending.delete(p);
        reject(new Error(`no response to ${o.code} ${o.path} (mid ${mid}) within ${o.timeoutMs ?? 2000} ms`));
      }, o.timeoutMs ?? 2000);
      this.pending.add(p);
      this.socket.send(bytes, this.hubPort, this.hubAddress);
    });
  }

  sendAck(mid: number): void {
    this.sendRaw(generateMessage({ code: '0.00', ack: true, messageId: mid, token: Buffer.alloc(0) }));
  }

  sendRst(mid: number): void {
    this.sendRaw(generateMessage({ code: '0.00', reset: true, messageId: mid, token: Buffer.alloc(0) }));
  }

  /** Waits until at least `count` notifications are queued; rejects after `timeoutMs`. */
  async waitForNotifications(count: number, timeoutMs = 3000): Promise<Response[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.notifications.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} notifications within ${timeoutMs} ms, got ${this.notifications.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.notifications.slice(0, count);
  }

  private closed = false;

  /** Closes the socket (once; later calls do nothing). */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private onMessage(bytes: Buffer): void {
    this.received++;
    let msg: CoapMessage;
    try {
      msg = parseMessage(bytes);
    } catch {
      return;
    }
    this.log.push(describeMessage(msg));
    if (msg.ack || msg.reset) {
      for (const p of this.pending) if (p.confirmable && p.mid === msg.messageId) return p.resolve(describeMessage(msg));
      return;
    }
    if (!msg.confirmable) {
      for (const p of this.pending) if (!p.confirmable && p.token.equals(msg.token)) return p.resolve(describeMessage(msg));
    }
    this.notifications.push(describeMessage(msg));
    if (msg.confirmable && this.autoAck) this.sendAck(msg.messageId);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined/false; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export interface CoapHubHarness {
  readonly hub: RunningHub;
  readonly coapPort: number;
  /** A test device on its own socket, closed after the file's tests (or earlier by the test). */
  client(opts?: { family?: 4 | 6; autoAck?: boolean }): Promise<CoapTestClient>;
  /** GET/POST on the REST API with the first-run admin token; JSON in and out. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

/** Registers top-level hooks that start a hub with CoAP on port 0 in a temp folder, and remove both after. */
export function useCoapHub(prefix: string, keepaliveS = 60): CoapHubHarness {
  let hub: RunningHub | undefined;
  let dir = '';
  const clients: CoapTestClient[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    hub = await startHub({ data: dir, port: 0, coap: { port: 0, keepaliveS } });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await hub?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const running = (): RunningHub => {
    assert.ok(hub, 'the hub is running');
    return hub;
  };
  return {
    get hub() {
      return running();
    },
    get coapPort() {
      const port = running().coapPort;
      assert.ok(port !== null, 'the hub has a CoAP endpoint');
      return port;
    },
    async client(opts = {}) {
      const c = await CoapTestClient.open(this.coapPort, opts);
      clients.push(c);
      return c;
    },
    async api<T = unknown>(method: string, path: string, body?: unknown) {
      const h = running();
      assert.ok(h.firstToken, 'a fresh hub has a first-run token');
      const headers: Record<string, string> = { authorization: `Bearer ${h.firstToken}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const r = await fetch(h.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await r.text();
      return { status: r.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
    },
  };
}
