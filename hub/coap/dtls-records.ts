/**
 * What the DTLS transport reads of a record header before OpenSSL sees the datagram (RFC 6347 §4.1): the
 * content type (byte 0), the epoch (bytes 3-4) and the length (bytes 11-12). It decides only where a
 * datagram goes and what a handshake has shown; OpenSSL checks everything.
 */

const HEADER = 13;
/** The largest datagram the addon takes (a record of 2^14 bytes of plaintext plus its overhead); 0 bytes it refuses too. */
export const MAX_DATAGRAM = 16_640;
const CHANGE_CIPHER_SPEC = 20;
const ALERT = 21;
const HANDSHAKE = 22;

/**
 * A ClientHello (handshake record, content type 22, epoch 0, handshake type 1): the start of a new
 * handshake, routed to the listener. Other epoch-0 handshake records (a retransmitted ClientKeyExchange
 * whose answer was lost) stay with their session.
 */
export const isNewHandshake = (b: Buffer): boolean => b.length > 25 && b[0] === HANDSHAKE && b[3] === 0 && b[4] === 0 && b[13] === 1;

/**
 * A datagram for a handshake, judged by its first record: handshake (22, any epoch: the Finished is
 * epoch 1), ChangeCipherSpec (20), or an alert in the clear (21, epoch 0). Application data (23) and
 * alerts under a session's keys are not.
 */
export const isHandshakeLayer = (b: Buffer): boolean =>
  b.length >= HEADER && (b[0] === HANDSHAKE || b[0] === CHANGE_CIPHER_SPEC || (b[0] === ALERT && b[3] === 0 && b[4] === 0));

/** Bits of `handshakeRecords`. */
export const Seen = {
  ChangeCipherSpec: 1,
  /** A handshake record under the new keys (epoch >= 1): the client's Finished. */
  Finished: 2,
} as const;
export const SEEN_BOTH = Seen.ChangeCipherSpec | Seen.Finished;

/** Which of ChangeCipherSpec and an epoch>=1 handshake record the datagram holds (every record in it). */
export function handshakeRecords(b: Buffer): number {
  let seen = 0;
  for (let o = 0; o + HEADER <= b.length; o += HEADER + b.readUInt16BE(o + 11)) {
    const type = b[o];
    if (type === CHANGE_CIPHER_SPEC) seen |= Seen.ChangeCipherSpec;
    else if (type === HANDSHAKE && b.readUInt16BE(o + 3) !== 0) seen |= Seen.Finished;
  }
  return seen;
}

/**
 * A fatal bad_record_mac alert in the clear (epoch 0), for a client whose Finished did not decrypt (a
 * wrong key). OpenSSL drops such a record silently (RFC 6347 §4.1.2.7) and, mid-handshake, has no alert
 * to give; the client still reads epoch 0 (it has not had our ChangeCipherSpec), so this one ends its
 * handshake at once instead of after its own timeout. Its sequence number (65536) is above any the
 * server's epoch 0 used, so the client's replay window takes it. The same bytes every time.
 */
export const WRONG_KEY_ALERT: Buffer = Buffer.from([ALERT, 0xfe, 0xfd, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 2, 20]);
