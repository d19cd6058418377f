/** The fast reader (coap-reader.ts) against coap.ts's parseMessage: the same datagrams accepted and refused, the same fields read. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageKind, OptionNumber, emptyMessage as protocolEmpty, encodeMessage, option, parseMessage, readUint, uintOption } from './coap.ts';
import type { CoapMessage } from './coap.ts';
import { Inbound, codeName, readInbound } from './coap-reader.ts';
import { rng } from '../test/helpers/rng.ts';

function parsed(b: Buffer): CoapMessage | null {
  try {
    return parseMessage(b);
  } catch {
    return null;
  }
}

function read(b: Buffer): Inbound | null {
  const m = new Inbound();
  return readInbound(b, m) ? m : null;
}

/** Both readers agree on `b`: both refuse it, or both accept it and read the same fields. */
function agree(b: Buffer, what: string): void {
  const p = parsed(b);
  const m = read(b);
  assert.equal(m !== null, p !== null, `${what}: ${b.toString('hex')} accepted by one reader only`);
  if (!p || !m) return;
  const type = p.confirmable ? MessageKind.Con : p.ack ? MessageKind.Ack : p.reset ? MessageKind.Rst : MessageKind.Non;
  assert.equal(m.type, type, what);
  assert.equal(codeName(m.code), p.code, what);
  assert.equal(m.mid, p.messageId, what);
  assert.equal(m.tokenLength, p.token.length, what);
  if (p.token.length >= 1 && p.token.length <= 4) assert.equal(m.token, readUint(p.token), what);
  assert.equal(m.hasObserve, option(p, 'Observe') !== undefined, what);
  const maxAge = option(p, 'Max-Age');
  assert.equal(m.maxAge, maxAge === undefined ? -1 : readUint(maxAge), what);
  const block2 = option(p, 'Block2');
  assert.equal(m.block2, block2 === undefined ? -1 : readUint(block2), what);
  assert.deepEqual(m.etag(), option(p, 'ETag') ?? null, what);
  assert.deepEqual(m.payload(), p.payload, what);
}

function samples(r: () => number): Buffer[] {
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
  const out: Buffer[] = [
    protocolEmpty(MessageKind.Ack, 0x1234),
    protocolEmpty(MessageKind.Rst, 7),
    protocolEmpty(MessageKind.Ack, 0xffff),
  ];
  for (let i = 0; i < 300; i++) {
    const options: Array<[number, Uint8Array]> = [];
    if (r() < 0.7) options.push([OptionNumber.Observe, uintOption(Math.floor(r() * 0x100_0000))]);
    if (r() < 0.6) options.push([OptionNumber.ETag, bytes(1 + Math.floor(r() * 8))]);
    if (r() < 0.2) options.push([OptionNumber.ETag, bytes(8)]); // a second ETag: the first counts
    if (r() < 0.5) options.push([OptionNumber.ContentFormat, uintOption(60)]);
    if (r() < 0.5) options.push([OptionNumber.MaxAge, uintOption(Math.floor(r() * 100_000))]);
    if (r() < 0.3) options.push([OptionNumber.Block2, uintOption(Math.floor(r() * 5000))]);
    if (r() < 0.2) options.push([OptionNumber.UriPath, bytes(Math.floor(r() * 300))]); // 1- and 2-byte extended lengths
    if (r() < 0.2) options.push([300 + Math.floor(r() * 2000), bytes(2)]); // extended deltas
    if (r() < 0.1) options.push([OptionNumber.Size2, uintOption(0)]);
    const kind = Math.floor(r() * 4) as MessageKind;
    const code = ['2.05', '2.04', '2.03', '4.04', '0.01', '0.02', '5.03', '1.00', '7.31'][Math.floor(r() * 9)] ?? '2.05';
    const payload = r() < 0.6 ? bytes(1 + Math.floor(r() * 200)) : undefined;
    out.push(encodeMessage({ kind, code, messageId: Math.floor(r() * 0x10000), token: bytes(Math.floor(r() * 9)), options, ...(payload ? { payload } : {}) }));
  }
  return out;
}

test('coap reader - readInbound reads what parseMessage reads, and refuses what it refuses', () => {
  const r = rng(1);
  const base = samples(r);
  for (const [i, b] of base.entries()) {
    assert.ok(read(b), `sample ${i} is valid`);
    agree(b, `sample ${i}`);
  }
  // Damaged copies: flipped bytes, cut short, bytes added, and plain noise.
  for (let round = 0; round < 20; round++) {
    for (const [i, b] of base.entries()) {
      const flip = Buffer.from(b);
      const at = Math.floor(r() * flip.length);
      flip[at] = Math.floor(r() * 256);
      agree(flip, `sample ${i} with byte ${at} changed`);
      agree(b.subarray(0, Math.floor(r() * b.length)), `sample ${i} cut short`);
      agree(Buffer.concat([b, Buffer.from([Math.floor(r() * 256)])]), `sample ${i} with a byte added`);
    }
  }
  for (let i = 0; i < 5000; i++) {
    const n = Math.floor(r() * 24);
    const b = Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
    if (n > 0 && r() < 0.7) b[0] = 0x40 | ((b[0] ?? 0) & 0x3f); // mostly version 1, so the checks past the header run
    agree(b, `noise ${i}`);
  }
  // The format errors parseMessage names, one by one.
  for (const hex of ['4000', '40000001ff', '41000001aa', '4045000100ff', '40450001f0', '40450001d0', '40450001e100', '404500010301', '49450001']) {
    assert.equal(read(Buffer.from(hex, 'hex')), null, hex);
    agree(Buffer.from(hex, 'hex'), hex);
  }
});

test('coap reader - code names are coap-packet\'s', () => {
  for (let b = 1; b < 256; b++) {
    const bytes = Buffer.from([0x40, b, 0, 1]);
    assert.equal(codeName(b), parseMessage(bytes).code);
  }
  assert.equal(codeName(0), '0.00');
});

