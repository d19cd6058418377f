/** The UDP adapter of the datagram port: one dual-stack socket (IPv4 and IPv6), a large receive buffer. */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import type { DatagramTransport, Peer } from './transport.ts';

/** What the hub asks for: a burst of ACKs from thousands of devices must fit (DESIGN.md). */
export const WANTED_RECEIVE_BUFFER = 4 * 1024 * 1024;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The socket's address lookup. Node's default (`dns.lookup`) answers even an IP literal in the next tick,
 * so every `send()` made in one loop (a commit notifying 5,000 devices) would wait until the loop ends;
 * peers are always IP literals (they come from `rinfo`), so they are answered at once and each datagram
 * leaves when it is sent. A host name still goes through `dns.lookup`.
 */
export function literalFirstLookup(host: string, family: number, callback: LookupCallback): void {
  const literal = isIP(host);
  if (literal !== 0) callback(null, host, literal);
  else dnsLookup(host, family, callback);
}

export interface UdpOptions {
  readonly port: number;
  /** `::` (every IPv4 and IPv6 address) by default. */
  readonly host?: string;
  readonly receiveBuffer?: number;
  /** Socket errors after binding (e.g. a send to an unreachable peer): reported, never fatal. */
  readonly onError?: (err: Error) => void;
}

export class UdpTransport implements DatagramTransport {
  private handler: (bytes: Buffer, from: Peer) => void = () => undefined;
  private constructor(
    private readonly socket: Socket,
    readonly port: number,
    readonly receiveBufferBytes: number,
    readonly receiveQueueBytes: number,
  ) {
    socket.on('message', (msg, rinfo) => this.handler(msg, { address: rinfo.address, port: rinfo.port }));
  }

  static async open(opts: UdpOptions): Promise<UdpTransport> {
    const host = opts.host ?? '::';
    const socket = createSocket({
      type: host.includes(':') ? 'udp6' : 'udp4',
      ipv6Only: false,
      reuseAddr: false,
      // dgram calls it as (host, family, callback); @types/node types it as dns.lookup's overloads.
      lookup: literalFirstLookup as unknown as typeof dnsLookup,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(opts.port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const wanted = opts.receiveBuffer ?? WANTED_RECEIVE_BUFFER;
    try {
      socket.setRecvBufferSize(wanted);
    } catch {
      // The kernel caps it at net.core.rmem_max; what we got is read back below.
    }
    // Linux doubles the size asked for (room for each datagram's bookkeeping), applies that as the limit
    // on queued datagrams' memory and reports it: halved, it compares with what was asked.
    const queue = socket.getRecvBufferSize();
    const granted = process.platform === 'linux' ? Math.floor(queue / 2) : queue;
    // Send errors (e.g. ICMP unreachable reported late) must not crash the hub; they are reported.
    socket.on('error', (err) => opts.onError?.(err));
    return new UdpTransport(socket, socket.address().port, granted, queue);
  }

  send(bytes: Uint8Array, to: Peer): void {
    this.socket.send(bytes, to.port, to.address);
  }

  onDatagram(handler: (bytes: Buffer, from: Peer) => void): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
