/** The one-allocation ack POST (ack-request.ts) against the general encoders: the same bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckStatus, encodeAck } from './ack.ts';
import type { Ack } from './ack.ts';
import { ContentFormat, Method, generateMessage, uintOption } from './coap.ts';
import { DEVICE_PREFIX, Resource } from './paths.ts';
import { AckWriter } from './ack-request.ts';
import { rng } from '../test/helpers/rng.ts';

/** The ack POST through coap-packet's general generator and encodeAck. */
function ackRequest(id: string, mid: number, token: Buffer, ack: Ack): Buffer {
  const payload = encodeAck(ack);
  return generateMessage({
    confirmable: true,
    code: Method.Post,
    messageId: mid,
    token,
    options: [
      { name: 'Uri-Path', value: Buffer.from(DEVICE_PREFIX) },
      { name: 'Uri-Path', value: Buffer.from(id) },
      { name: 'Uri-Path', value: Buffer.from(Resource.Ack) },
      { name: 'Content-Format', value: uintOption(ContentFormat.Cbor) },
    ],
    payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
  });
}

test('ack request - an ack POST is byte for byte what the general encoders build', () => {
  const r = rng(2);
  const versions = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 0xffff_ffff, 0x1_0000_0000, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
  for (const id of ['a', 'dev-1', 'abcdefghijkl', 'abcdefghijklm', 'bench-device-4999', 'x'.repeat(63)]) {
    const w = new AckWriter(id);
    for (const version of versions) {
      for (const status of [AckStatus.Applied, AckStatus.Rejected, AckStatus.Failed, AckStatus.Reverted]) {
        const mid = Math.floor(r() * 0x10000);
        const token = Math.floor(r() * 0x10000);
        const hash = Uint8Array.from({ length: 8 }, () => Math.floor(r() * 256));
        const incarnation = Uint8Array.from({ length: 8 }, () => Math.floor(r() * 256));
        const tokenBytes = Buffer.alloc(2);
        tokenBytes.writeUInt16BE(token);
        const expected = ackRequest(id, mid, tokenBytes, { version, status, hash, incarnation });
        assert.deepEqual(w.build(mid, token, version, status, hash, incarnation), expected, `${id} v${version} s${status}`);
      }
    }
  }
});
