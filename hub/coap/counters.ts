/** The CoAP endpoint's counters, for /metrics and tests. */
import type { EndReason } from './observers.ts';

export interface CoapCounters {
  received: number;
  malformed: number;
  badRequests: number;
  notFound: number;
  /** Requests for another device than the DTLS identity that sent them (4.03). */
  forbidden: number;
  notificationsSent: number;
  retransmissions: number;
  acksReceived: number;
  /** Durable batches the acks were recorded in (a burst of acks shares one). */
  ackBatches: number;
  duplicatesAnswered: number;
  /**
   * Well-formed datagrams the hub does not act on: an ACK or RST matching no notification in flight, a
   * response or a message with a reserved code. With malformed, every datagram that is not a request is counted.
   */
  ignored: number;
  /** Requests that failed inside the hub (answered 5.00, logged): a bug, never the sender's fault. */
  requestErrors: number;
  relationsEnded: Record<EndReason, number>;
}

export function newCoapCounters(): CoapCounters {
  return {
    received: 0,
    malformed: 0,
    badRequests: 0,
    notFound: 0,
    forbidden: 0,
    notificationsSent: 0,
    retransmissions: 0,
    acksReceived: 0,
    ackBatches: 0,
    duplicatesAnswered: 0,
    ignored: 0,
    requestErrors: 0,
    relationsEnded: { reset: 0, timeout: 0, replaced: 0, deregistered: 0, removed: 0 },
  };
}
