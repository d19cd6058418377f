/**
 * The datagram port: the CoAP engine sends and receives through this and nothing else, so the real UDP
 * socket (udp-transport.ts) and, later, DTLS can carry it, and benchmarks can isolate the engine.
 */

export interface Peer {
  readonly address: string;
  readonly port: number;
  /** The identity the peer proved (its DTLS PSK identity, a device id); absent on plain CoAP. */
  readonly identity?: string;
}

export interface DatagramTransport {
  /** Where it listens, for logs and DNS-SD. */
  readonly port: number;
  /** The receive buffer size the kernel granted for what was asked, bytes (what `SO_RCVBUF` was set to). */
  readonly receiveBufferBytes: number;
  /**
   * How much memory datagrams waiting to be read may take before the kernel drops the next one, counted
   * the way the kernel counts it (each datagram's bookkeeping included: ~832 B for a small one on Linux
   * loopback). On Linux this is twice `receiveBufferBytes`.
   */
  readonly receiveQueueBytes: number;
  send(bytes: Uint8Array, to: Peer): void;
  /** Replaces the receive handler. */
  onDatagram(handler: (bytes: Buffer, from: Peer) => void): void;
  close(): Promise<void>;
}

export const peerKey = (p: Peer): string => `${p.address}%${p.port}`;
