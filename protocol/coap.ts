/**
 * CoAP messages (RFC 7252) as henge uses them: parsing and generation through `coap-packet`, plus the
 * option values henge reads and writes (Observe, ETag, Block2, Max-Age, Content-Format, Uri-Path/Query).
 * Everything that touches the CoAP wire format goes through this file.
 */
import { generate, parse } from 'coap-packet';
import type { ParsedPacket, Packet } from 'coap-packet';

export const ContentFormat = {
  LinkFormat: 40,
  Cbor: 60,
} as const;

/** Request method codes as coap-packet parses them. */
export const Method = {
  Get: '0.01',
  Post: '0.02',
  Put: '0.03',
  Delete: '0.04',
} as const;

/** RFC 7252 transmission parameters. */
export const Transmission = {
  ackTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
} as const;

/** Largest payload henge puts in one datagram; larger ones go block-wise with this block size. */
export const MAX_BLOCK_SIZE = 1024;
export const MAX_BLOCK_SZX = 6;
export const MAX_REQUEST_PAYLOAD = 1024;

export type CoapMessage = ParsedPacket;

export class CoapParseError extends Error {
  readonly code = 'HENGE_E_COAP_PARSE';
}

/**
 * RFC 7252 §3 message format errors that coap-packet lets through (a short token, an option value running
 * past the end, a payload marker with no payload, token lengths 9-15, an option number past 65535): the
 * datagram is refused whole.
 */
const extBytes = (nib: number): number => (nib === 13 ? 1 : nib === 14 ? 2 : 0);

function checkStructure(b: Uint8Array): void {
  if (b.length < 4) throw new CoapParseError('shorter than a CoAP header');
  const first = b[0] ?? 0;
  if (first >> 6 !== 1) throw new CoapParseError('not CoAP version 1');
  const tkl = first & 0x0f;
  if (tkl > 8) throw new CoapParseError('token length over 8');
  let at = 4 + tkl;
  if (at > b.length) throw new CoapParseError('token runs past the end');
  if ((b[1] ?? 0) === 0 && b.length > 4 + tkl) throw new CoapParseError('an empty message has no options or payload');
  let number = 0;
  while (at < b.length) {
    const h = b[at++] ?? 0;
    if (h === 0xff) {
      if (at >= b.length) throw new CoapParseError('payload marker without payload');
      return;
    }
    const delta = h >> 4;
    let len = h & 0x0f;
    if (delta === 15 || len === 15) throw new CoapParseError('reserved option nibble 15');
    // Option numbers are 16 bits (RFC 7252 §3.1): a delta that carries the number past 65535 is no option.
    number += delta === 13 ? 13 + (b[at] ?? 0) : delta === 14 ? 269 + (((b[at] ?? 0) << 8) | (b[at + 1] ?? 0)) : delta;
    if (number > 0xffff) throw new CoapParseError('option number over 65535');
    at += extBytes(delta);
    if (len === 13) len = 13 + (b[at] ?? 0);
    else if (len === 14) len = 269 + (((b[at] ?? 0) << 8) | (b[at + 1] ?? 0));
    at += extBytes(h & 0x0f);
    if (at > b.length) throw new CoapParseError('option header runs past the end');
    at += len;
    if (at > b.length) throw new CoapParseError('option value runs past the end');
  }
}

export function parseMessage(datagram: Uint8Array): CoapMessage {
  checkStructure(datagram);
  try {
    return parse(Buffer.isBuffer(datagram) ? datagram : Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength));
  } catch (cause) {
    throw new CoapParseError('not a CoAP message', { cause });
  }
}

export function generateMessage(packet: Packet): Buffer {
  return generate(packet, 64 * 1024);
}

/** Unsigned integer option value in its shortest form (0 is the empty string). */
export function uintOption(n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const bytes: number[] = [];
  let rest = n;
  while (rest > 0) {
    bytes.unshift(rest & 0xff);
    rest = Math.floor(rest / 256);
  }
  return Buffer.from(bytes);
}

export function readUint(value: Buffer): number {
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}

export function option(msg: CoapMessage, name: string): Buffer | undefined {
  for (const o of msg.options) if (o.name === name) return o.value;
  return undefined;
}

export function options(msg: CoapMessage, name: string): Buffer[] {
  const out: Buffer[] = [];
  for (const o of msg.options) if (o.name === name) out.push(o.value);
  return out;
}

export function uriPath(msg: CoapMessage): string[] {
  return options(msg, 'Uri-Path').map((b) => b.toString('utf8'));
}

export function uriQuery(msg: CoapMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const b of options(msg, 'Uri-Query')) {
    const text = b.toString('utf8');
    const eq = text.indexOf('=');
    if (eq < 0) out.set(text, '');
    else out.set(text.slice(0, eq), text.slice(eq + 1));
  }
  return out;
}

export interface Block {
  readonly num: number;
  readonly more: boolean;
  readonly szx: number;
}

export const blockSize = (szx: number): number => 1 << (szx + 4);

export function readBlock(value: Buffer): Block {
  const n = readUint(value);
  return { num: Math.floor(n / 16), more: (n & 0x08) !== 0, szx: n & 0x07 };
}

export function blockOption(b: Block): Buffer {
  return uintOption(b.num * 16 + (b.more ? 8 : 0) + b.szx);
}

/** Option numbers whose meaning a receiver must understand (odd numbers are critical, RFC 7252 §5.4.1). */
export function isCritical(optionNumber: number): boolean {
  return (optionNumber & 1) === 1;
}

/** Option numbers (RFC 7252 §12.2, RFC 7641, RFC 7959). */
export const OptionNumber = {
  ETag: 4,
  Observe: 6,
  UriPath: 11,
  ContentFormat: 12,
  MaxAge: 14,
  UriQuery: 15,
  Block2: 23,
  Size2: 28,
} as const;

export const MessageKind = {
  Con: 0,
  Non: 1,
  Ack: 2,
  Rst: 3,
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

/** An option's value: bytes, or a number written as an unsigned integer option in its shortest form. */
export type OptionValue = Uint8Array | number;

export interface OutgoingMessage {
  readonly kind: MessageKind;
  /** `c.dd`, e.g. `2.05`. */
  readonly code: string;
  readonly messageId: number;
  readonly token: Uint8Array;
  /** Option number and value; any order (sorted here when needed, stable for repeated options). */
  readonly options: ReadonlyArray<readonly [number, OptionValue]>;
  readonly payload?: Uint8Array;
}

const codeBytes = new Map<string, number>();

function codeByte(code: string): number {
  let b = codeBytes.get(code);
  if (b === undefined) {
    const m = /^([0-7])\.(\d\d)$/.exec(code);
    if (!m) throw new RangeError(`not a CoAP code: ${code}`);
    b = (Number(m[1]) << 5) | Number(m[2]);
    codeBytes.set(code, b);
  }
  return b;
}

const nibble = (n: number): number => (n < 13 ? n : n < 269 ? 13 : 14);
const extLength = (n: number): number => (n < 13 ? 0 : n < 269 ? 1 : 2);

/** Bytes of an unsigned integer option value (RFC 7252 §3.2: shortest form, 0 is empty); up to 32 bits. */
function uintLength(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not a 32-bit unsigned option value: ${n}`);
  return n === 0 ? 0 : n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
}

const valueLength = (v: OptionValue): number => (typeof v === 'number' ? uintLength(v) : v.length);

function writeExt(out: Buffer, at: number, n: number): number {
  if (n < 13) return at;
  if (n < 269) {
    out[at] = n - 13;
    return at + 1;
  }
  out.writeUInt16BE(n - 269, at);
  return at + 2;
}

function writeValue(out: Buffer, at: number, v: OptionValue, len: number): void {
  if (typeof v !== 'number') {
    out.set(v, at);
    return;
  }
  for (let i = len - 1; i >= 0; i--) out[at + i] = (v >>> (8 * (len - 1 - i))) & 0xff;
}

const byNumber = (a: readonly [number, OptionValue], b: readonly [number, OptionValue]): number => a[0] - b[0];

/**
 * Encodes a message in one allocation (RFC 7252 §3). The hub's hot path (notifications, ACKs, 2.04s)
 * uses this rather than coap-packet's general generator, which costs several times more per message.
 */
export function encodeMessage(m: OutgoingMessage): Buffer {
  if (m.token.length > 8) throw new RangeError('a token has at most 8 bytes');
  let options = m.options;
  for (let i = 1; i < options.length; i++) {
    if ((options[i]?.[0] ?? 0) < (options[i - 1]?.[0] ?? 0)) {
      options = [...options].sort(byNumber);
      break;
    }
  }
  let size = 4 + m.token.length;
  let prev = 0;
  for (let i = 0; i < options.length; i++) {
    const o = options[i] as readonly [number, OptionValue];
    const len = valueLength(o[1]);
    size += 1 + extLength(o[0] - prev) + extLength(len) + len;
    prev = o[0];
  }
  const payload = m.payload && m.payload.length > 0 ? m.payload : undefined;
  if (payload) size += 1 + payload.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x40 | (m.kind << 4) | m.token.length;
  out[1] = codeByte(m.code);
  out[2] = (m.messageId >> 8) & 0xff;
  out[3] = m.messageId & 0xff;
  let at = 4;
  out.set(m.token, at);
  at += m.token.length;
  prev = 0;
  for (let i = 0; i < options.length; i++) {
    const o = options[i] as readonly [number, OptionValue];
    const delta = o[0] - prev;
    const len = valueLength(o[1]);
    out[at++] = (nibble(delta) << 4) | nibble(len);
    at = writeExt(out, at, delta);
    at = writeExt(out, at, len);
    writeValue(out, at, o[1], len);
    at += len;
    prev = o[0];
  }
  if (payload) {
    out[at++] = 0xff;
    out.set(payload, at);
  }
  return out;
}

/**
 * The kind of an empty message (a 4-byte header: version 1, no token, code 0.00), or undefined for any
 * other datagram: the cheap check for what a hub receives most, the ACKs of its notifications.
 */
export function emptyMessageKind(b: Uint8Array): MessageKind | undefined {
  if (b.length !== 4 || b[1] !== 0) return undefined;
  const first = b[0] ?? 0;
  if ((first & 0xcf) !== 0x40) return undefined;
  return ((first >> 4) & 3) as MessageKind;
}

/** The message id of a datagram at least 4 bytes long. */
export const messageIdOf = (b: Uint8Array): number => ((b[2] ?? 0) << 8) | (b[3] ?? 0);

/** An empty ACK (acknowledges a confirmable message) or RST (rejects it), RFC 7252 §4.2: the 4-byte header. */
export function emptyMessage(kind: typeof MessageKind.Ack | typeof MessageKind.Rst, messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = 0x40 | (kind << 4);
  b[1] = 0;
  b[2] = (messageId >> 8) & 0xff;
  b[3] = messageId & 0xff;
  return b;
}
