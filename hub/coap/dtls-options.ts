/**
 * The DTLS transport's public surface besides the class (dtls-transport.ts re-exports it): options, the
 * handshake outcomes `onHandshake` reports, counters.
 */
import type { HandshakeLimitOptions } from './dtls-session-limits.ts';
import type { Peer } from './transport.ts';
import type { UdpOptions } from './udp-transport.ts';

/** TLS_PSK_WITH_AES_128_CCM_8 (mandatory, RFC 7252 §9.1.3.1), then TLS_PSK_WITH_AES_128_GCM_SHA256. */
export const DEFAULT_CIPHERS = 'PSK-AES128-CCM8:PSK-AES128-GCM-SHA256';
export const DEFAULT_IDLE_MS = 10 * 60_000;
/** A handshake not done by then is dropped (a peer that went away mid-handshake holds a place until then). */
export const DEFAULT_HANDSHAKE_MS = 20_000;

export const HandshakeOutcome = {
  Open: 'open',
  /** The identity is known but the Finished did not decrypt under its key. */
  WrongKey: 'wrong-key',
  /** pskLookup had no key for the identity. */
  UnknownIdentity: 'unknown-identity',
  /** Not done within handshakeMs, or OpenSSL gave up retransmitting. */
  Timeout: 'timeout',
  Failed: 'failed',
} as const;
export type HandshakeOutcome = (typeof HandshakeOutcome)[keyof typeof HandshakeOutcome];

export interface HandshakeEvent {
  /** The identity proved ('open') or claimed; null when the peer never named one. */
  readonly identity: string | null;
  readonly peer: Peer;
  readonly outcome: HandshakeOutcome;
}

export interface DtlsLog {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DtlsOptions extends UdpOptions, HandshakeLimitOptions {
  /**
   * The key of a PSK identity (a device id), or null: the handshake then fails. `peer` is the address and
   * port whose handshake asks. Called synchronously; a throw is logged and fails the handshake. Never logged.
   */
  readonly pskLookup: (identity: string, peer: Peer) => Buffer | null;
  /** Once per handshake, when it opens or fails. */
  readonly onHandshake?: (e: HandshakeEvent) => void;
  readonly ciphers?: string;
  readonly idleMs?: number;
  readonly handshakeMs?: number;
  readonly log?: DtlsLog;
}

export interface DtlsCounters {
  /** Datagrams no DTLS record could be (empty, or larger than a record), dropped unread. */
  datagramsInvalid: number;
  /** Datagrams with no session that were not a ClientHello OpenSSL would answer (dropped before any state is kept). */
  datagramsDropped: number;
  helloVerifyRequests: number;
  handshakesStarted: number;
  handshakesCompleted: number;
  /** Every handshake that did not open, whatever the reason (the next counters single some out). */
  handshakesFailed: number;
  /** Handshakes whose Finished did not decrypt under the identity's key, ended at once. */
  handshakesWrongKey: number;
  handshakesUnknownIdentity: number;
  /** ClientHellos not taken because maxHandshakes were in progress. */
  handshakesRefusedBusy: number;
  /** ClientHellos with a valid cookie dropped because their address had maxHandshakesPerAddress in progress. */
  handshakesRefusedAddress: number;
  /** ClientHellos dropped before the cookie exchange because their address spent its failure budget. */
  handshakesRefusedFailures: number;
  /** Open sessions taken over by a completed handshake from the same address and port. */
  sessionsReplaced: number;
  sessionsExpired: number;
  /** Sends for a peer without an open session of that identity (dropped). */
  sendsWithoutSession: number;
  /** Records OpenSSL refused to write (dropped; CoAP retransmits or gives up). */
  writeErrors: number;
  /** Sessions (and handshakes of that identity) closed because their device's key changed or the device was removed. */
  sessionsRevoked: number;
}

export const newCounters = (): DtlsCounters => ({
  datagramsInvalid: 0,
  datagramsDropped: 0,
  helloVerifyRequests: 0,
  handshakesStarted: 0,
  handshakesCompleted: 0,
  handshakesFailed: 0,
  handshakesWrongKey: 0,
  handshakesUnknownIdentity: 0,
  handshakesRefusedBusy: 0,
  handshakesRefusedAddress: 0,
  handshakesRefusedFailures: 0,
  sessionsReplaced: 0,
  sessionsExpired: 0,
  sendsWithoutSession: 0,
  writeErrors: 0,
  sessionsRevoked: 0,
});
