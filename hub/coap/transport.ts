/**
 * The datagram port: the CoAP engine sends and receives through this and nothing else, so the real UDP
 * socket (udp-transport.ts) and, later, DTLS can carry it, and benchmarks can isolate the engine.
 */

export interface Peer {
  readonly address: string;
  readonly port: number;
}

export interface DatagramTransport {
  /** Where it listens, for logs and DNS-SD. */
  readonly port: number;
  /** The receive buffer the kernel granted, bytes. */
  readonly receiveBufferBytes: number;
  send(bytes: Uint8Array, to: Peer): void;
  /** Replaces the receive handler. */
  onDatagram(handler: (bytes: Buffer, from: Peer) => void): void;
  close(): Promise<void>;
}

export const peerKey = (p: Peer): string => `${p.address}%${p.port}`;
