/**
 * A device's fast reader of CoAP datagrams, without coap-packet: the few things a device needs (type,
 * code, message id, token, Observe / ETag / Max-Age / Block2, payload) read straight from the bytes into
 * one reusable object. The simulator stands for thousands of devices in one process, so every microsecond
 * per datagram counts.
 *
 * `readInbound` accepts and refuses exactly what coap.ts's `parseMessage` does (its RFC 7252 §3 checks,
 * plus coap-packet's "an empty message is 4 bytes"); coap-reader.test.ts holds the two side by side.
 */
import { MessageKind, OptionNumber } from './coap.ts';

const EMPTY = Buffer.alloc(0);

/** `c.dd` for every code byte, as coap-packet spells them (events carry codes as text). */
export const CODE_NAMES: readonly string[] = Array.from({ length: 256 }, (_, b) => {
  const detail = b & 0x1f;
  return `${b >> 5}.${detail < 10 ? '0' : ''}${detail}`;
});

export const codeName = (code: number): string => CODE_NAMES[code & 0xff] ?? '0.00';

/** Response class 2 (2.xx). */
export const isSuccessCode = (code: number): boolean => code >> 5 === 2;

export const Code = {
  Empty: 0x00,
  Get: 0x01, // 0.01
  Post: 0x02, // 0.02
  Valid: 0x43, // 2.03
  Changed: 0x44, // 2.04
  Content: 0x45, // 2.05
} as const;

/** One datagram as a device reads it; the option values are the first of each, as protocol/coap.ts's `option()` gives them. */
export class Inbound {
  bytes: Buffer = EMPTY;
  /** MessageKind: 0 CON, 1 NON, 2 ACK, 3 RST. */
  type = 0;
  /** The code byte: class << 5 | detail. */
  code = 0;
  mid = 0;
  tokenLength = 0;
  /** The token as an unsigned number when it has 1 to 4 bytes, else -1. */
  token = -1;
  hasObserve = false;
  /** Max-Age in seconds, -1 without the option. */
  maxAge = -1;
  /** The Block2 option's value as an unsigned number, -1 without the option. */
  block2 = -1;
  etagStart = -1;
  etagEnd = -1;
  /** The payload runs from here to the end (empty when this is bytes.length). */
  payloadStart = 0;
  /** Monotonic ms: when the datagram was read (before it was parsed). */
  at = 0;

  get confirmable(): boolean {
    return this.type === MessageKind.Con;
  }

  etag(): Buffer | null {
    return this.etagStart < 0 ? null : this.bytes.subarray(this.etagStart, this.etagEnd);
  }

  payload(): Buffer {
    return this.bytes.subarray(this.payloadStart);
  }
}

/** Unsigned integer option value (any length), as protocol/coap.ts's readUint reads it. */
function uintAt(b: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 256 + (b[i] ?? 0);
  return n;
}

/** Fills `m` from `b`; false when `b` is malformed (what parseMessage refuses). */
export function readInbound(b: Buffer, m: Inbound): boolean {
  const n = b.length;
  if (n < 4) return false;
  const first = b[0] ?? 0;
  if (first >> 6 !== 1) return false;
  const tkl = first & 0x0f;
  if (tkl > 8) return false;
  let at = 4 + tkl;
  if (at > n) return false;
  const code = b[1] ?? 0;
  // An empty message is the 4-byte header alone (RFC 7252 §4.1; coap-packet refuses anything else).
  if (code === 0 && n !== 4) return false;
  m.bytes = b;
  m.type = (first >> 4) & 3;
  m.code = code;
  m.mid = ((b[2] ?? 0) << 8) | (b[3] ?? 0);
  m.tokenLength = tkl;
  if (tkl === 0 || tkl > 4) m.token = -1;
  else {
    let t = 0;
    for (let i = 4; i < 4 + tkl; i++) t = t * 256 + (b[i] ?? 0);
    m.token = t;
  }
  m.payloadStart = n;
  let num = 0;
  while (at < n) {
    const h = b[at++] ?? 0;
    if (h === 0xff) {
      if (at >= n) return false; // a payload marker without payload
      m.payloadStart = at;
      return true;
    }
    const dn = h >> 4;
    const ln = h & 0x0f;
    if (dn === 15 || ln === 15) return false;
    let delta = dn;
    if (dn === 13) delta = 13 + (b[at++] ?? 0);
    else if (dn === 14) {
      delta = 269 + (((b[at] ?? 0) << 8) | (b[at + 1] ?? 0));
      at += 2;
    }
    let len = ln;
    if (ln === 13) len = 13 + (b[at++] ?? 0);
    else if (ln === 14) {
      len = 269 + (((b[at] ?? 0) << 8) | (b[at + 1] ?? 0));
      at += 2;
    }
    if (at > n) return false; // the option header runs past the end
    const start = at;
    at += len;
    if (at > n) return false; // the option value runs past the end
    num += delta;
    switch (num) {
      case OptionNumber.ETag:
        if (m.etagStart < 0) {
          m.etagStart = start;
          m.etagEnd = at;
        }
        break;
      case OptionNumber.Observe:
        m.hasObserve = true;
        break;
      case OptionNumber.MaxAge:
        if (m.maxAge < 0) m.maxAge = uintAt(b, start, at);
        break;
      case OptionNumber.Block2:
        if (m.block2 < 0) m.block2 = uintAt(b, start, at);
        break;
    }
  }
  return true;
}

