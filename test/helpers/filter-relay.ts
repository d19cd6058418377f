/**
 * A UDP relay between devices and a hub (plain CoAP) that drops exactly the datagrams a test names, to
 * put a client in one protocol situation on purpose: "the answers to this ack are lost", "this
 * re-registration gets no answer". Runs in the test's process (small tests; the fault scenarios use the
 * lossy relay process instead). Devices send to the relay's port; each device endpoint gets its own
 * upstream socket, so the hub still sees one endpoint per device.
 *
 * A filter sees each datagram parsed (or `null` if it is not CoAP) with its direction, and returns true
 * to drop it. Requests seen upstream are remembered by message id, so a filter on the way down can tell
 * what a piggybacked answer answers (`answers`).
 */
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { decodeAck } from '../../protocol/ack.ts';
import { option, parseMessage, readUint, uriPath } from '../../protocol/coap.ts';
import type { CoapMessage } from '../../protocol/coap.ts';

export const Direction = { Up: 'up', Down: 'down' } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** What a filter knows of a datagram. */
export interface Seen {
  readonly direction: Direction;
  readonly msg: CoapMessage | null;
  /** Down: the request (seen up, same endpoint) that a piggybacked response or empty ACK answers. */
  readonly answers: CoapMessage | undefined;
}

export type Filter = (d: Seen) => boolean;

export interface FilterRelay {
  readonly port: number;
  /** Replaces the filter (none drops nothing). */
  setFilter(f: Filter | null): void;
  /** Every datagram seen, in order, with whether it was dropped. */
  readonly log: ReadonlyArray<Seen & { readonly dropped: boolean; readonly at: number }>;
  close(): Promise<void>;
}

/** `msg` is a POST to /d/{id}/a; its ack's version, or undefined. */
export function ackVersionOf(msg: CoapMessage | null | undefined): number | undefined {
  if (!msg || msg.code !== '0.02') return undefined;
  const path = uriPath(msg);
  if (path.length !== 3 || path[0] !== 'd' || path[2] !== 'a') return undefined;
  try {
    return decodeAck(msg.payload).version;
  } catch {
    return undefined;
  }
}

/** `msg` is a registration (GET /d/{id}/c with Observe 0). */
export function isRegistration(msg: CoapMessage | null | undefined): boolean {
  if (!msg || msg.code !== '0.01') return false;
  const obs = option(msg, 'Observe');
  const path = uriPath(msg);
  return obs !== undefined && readUint(obs) === 0 && path.length === 3 && path[2] === 'c';
}

function parse(bytes: Buffer): CoapMessage | null {
  try {
    return parseMessage(bytes);
  } catch {
    return null;
  }
}

export async function startFilterRelay(target: { host: string; port: number }): Promise<FilterRelay> {
  let filter: Filter | null = null;
  const log: Array<Seen & { dropped: boolean; at: number }> = [];
  const upstreams = new Map<string, Socket>();
  /** Per endpoint: requests by message id (CON requests seen going up). */
  const requests = new Map<string, Map<number, CoapMessage>>();
  const front = createSocket('udp4');
  const t0 = Date.now();
  const pass = (seen: Seen): boolean => {
    const dropped = filter?.(seen) ?? false;
    log.push({ ...seen, dropped, at: Date.now() - t0 });
    return !dropped;
  };
  front.on('message', (bytes: Buffer, from: RemoteInfo) => {
    const key = `${from.address}:${from.port}`;
    let up = upstreams.get(key);
    if (!up) {
      const sock = createSocket('udp4');
      up = sock;
      upstreams.set(key, sock);
      requests.set(key, new Map());
      sock.on('message', (reply: Buffer) => {
        const msg = parse(reply);
        const answers = msg && (msg.ack || msg.reset) ? requests.get(key)?.get(msg.messageId) : undefined;
        if (pass({ direction: Direction.Down, msg, answers })) front.send(reply, from.port, from.address);
      });
      sock.on('error', () => undefined); // the hub gone: the device's retransmissions are the test's business
    }
    const msg = parse(bytes);
    if (msg && msg.confirmable && msg.code !== '0.00') requests.get(key)?.set(msg.messageId, msg);
    if (pass({ direction: Direction.Up, msg, answers: undefined })) up.send(bytes, target.port, target.host);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind(0, '127.0.0.1', () => {
      front.off('error', reject);
      resolve();
    });
  });
  return {
    port: front.address().port,
    setFilter(f) {
      filter = f;
    },
    log,
    async close() {
      await Promise.all([front, ...upstreams.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
