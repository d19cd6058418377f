/**
 * A device's ack POSTs (`POST /d/{id}/a`, docs/protocol.md "Ack") built in one allocation each: the CoAP
 * header, token and options are the same for every ack of a device but the message id and token, so they
 * are encoded once; the payload is written directly, byte for byte what ack.ts's `encodeAck` gives for an
 * ack with a hash and an incarnation (ack-request.test.ts compares them).
 */
import { AckKey } from './ack.ts';
import type { AckStatus } from './ack.ts';
import { ContentFormat, MessageKind, OptionNumber, encodeMessage } from './coap.ts';
import { DEVICE_PREFIX, Resource } from './paths.ts';

const BYTES8 = 9; // 0x48 and 8 bytes: a hash or incarnation in the ack

function uintHeadLength(v: number): number {
  return v < 24 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffff ? 5 : 9;
}

/**
 * A device's ack POSTs (`POST /d/{id}/a`, CON, 2-byte token, Content-Format 60, the CBOR ack): the
 * header, token and options are the same for every ack but the message id and token, so they are encoded
 * once and copied.
 */
export class AckWriter {
  /** Header with message id and token 0, the options, and the payload marker. */
  private readonly prefix: Buffer;

  constructor(id: string) {
    const head = encodeMessage({
      kind: MessageKind.Con,
      code: '0.02',
      messageId: 0,
      token: new Uint8Array(2),
      options: [
        [OptionNumber.UriPath, Buffer.from(DEVICE_PREFIX)],
        [OptionNumber.UriPath, Buffer.from(id)],
        [OptionNumber.UriPath, Buffer.from(Resource.Ack)],
        [OptionNumber.ContentFormat, ContentFormat.Cbor],
      ],
    });
    this.prefix = Buffer.allocUnsafe(head.length + 1);
    head.copy(this.prefix, 0);
    this.prefix[head.length] = 0xff;
  }

  /**
   * The datagram; its payload is `encodeAck({version, status, hash, incarnation})` (deterministic CBOR:
   * map(4) with keys 1, 2, 4, 5). `hash` and `incarnation` are 8 bytes.
   */
  build(mid: number, token: number, version: number, status: AckStatus, hash: Uint8Array, incarnation: Uint8Array): Buffer {
    const p = this.prefix;
    const vlen = uintHeadLength(version);
    const out = Buffer.allocUnsafe(p.length + 1 + 1 + vlen + 2 + 1 + BYTES8 + 1 + BYTES8);
    out.set(p, 0); // TypedArray#set: a builtin, cheaper than Buffer#copy's JS path
    out[2] = (mid >> 8) & 0xff;
    out[3] = mid & 0xff;
    out[4] = (token >> 8) & 0xff;
    out[5] = token & 0xff;
    let at = p.length;
    out[at++] = 0xa4; // map(4)
    out[at++] = AckKey.version;
    at = writeUint(out, at, version, vlen);
    out[at++] = AckKey.status;
    out[at++] = status; // 0..3
    out[at++] = AckKey.hash;
    at = writeBytes8(out, at, hash);
    out[at++] = AckKey.incarnation;
    writeBytes8(out, at, incarnation);
    return out;
  }
}

function writeUint(out: Buffer, at: number, v: number, len: number): number {
  if (len === 1) {
    out[at] = v;
    return at + 1;
  }
  if (len === 2) {
    out[at] = 0x18;
    out[at + 1] = v;
    return at + 2;
  }
  if (len === 3) {
    out[at] = 0x19;
    out.writeUInt16BE(v, at + 1);
    return at + 3;
  }
  if (len === 5) {
    out[at] = 0x1a;
    out.writeUInt32BE(v, at + 1);
    return at + 5;
  }
  out[at] = 0x1b;
  out.writeUInt32BE(Math.floor(v / 0x1_0000_0000), at + 1);
  out.writeUInt32BE(v >>> 0, at + 5);
  return at + 9;
}

function writeBytes8(out: Buffer, at: number, b: Uint8Array): number {
  out[at++] = 0x48; // bytes(8)
  for (let i = 0; i < 8; i++) out[at + i] = b[i] ?? 0;
  return at + 8;
}
