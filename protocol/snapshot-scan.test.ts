/**
 * scanSnapshot is a fast path in front of snapshot.ts's decodeSnapshot: whenever it answers, the
 * decoder must accept the same bytes with the same version, hash and incarnation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot, decodeSnapshot } from './snapshot.ts';
import type { ConfigValues, Snapshot } from './snapshot.ts';
import { scanSnapshot } from './snapshot-scan.ts';
import type { ScannedSnapshot } from './snapshot-scan.ts';
import { rng } from '../test/helpers/rng.ts';

function decoded(b: Uint8Array): Snapshot | null {
  try {
    return decodeSnapshot(b);
  } catch {
    return null;
  }
}

/** Scans `b`; when the scan answers, checks decodeSnapshot's answer is the same. Returns whether it answered. */
function check(b: Uint8Array, what: string): boolean {
  const out: ScannedSnapshot = { version: -1, hashAt: -1, incarnationAt: -1 };
  // Scanned inside a larger buffer, as a datagram's payload is.
  const framed = new Uint8Array(b.length + 7);
  framed.set(b, 5);
  const ok = scanSnapshot(framed, 5, 5 + b.length, out);
  if (!ok) return false;
  const s = decoded(b);
  assert.ok(s, `${what}: scanned, but decodeSnapshot refuses ${Buffer.from(b).toString('hex')}`);
  assert.equal(out.version, s.version, what);
  assert.deepEqual(framed.slice(out.hashAt, out.hashAt + 8), s.hash, what);
  assert.deepEqual(framed.slice(out.incarnationAt, out.incarnationAt + 8), s.incarnation, what);
  return true;
}

const INC = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);

test('snapshot scan - the hub\'s snapshots are read without the decoder, with its answer', () => {
  const cases: Array<[number, ConfigValues]> = [
    [0, {}],
    [7, { mode: 'heat', setpoint: 21.5 }],
    [24, { interval: 5, enabled: true, off: false, name: 'bench', level: -3 }],
    [300, { a: 0, b: -1, c: -24, d: -25, e: 255, f: 256, g: 65_535, h: 65_536, i: 0xffff_ffff, j: -0x1_0000_0000 }],
    [70_000, { half: 1.5, single: 3.140000104904175, double: 0.1, tiny: 5.960464477539063e-8, big: 1e300 }],
    [0xffff_ffff, { text: 'x'.repeat(300), long: 'y'.repeat(70_000) }],
    [12, Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`k${i}`, i]))],
  ];
  for (const [version, values] of cases) {
    const { bytes } = buildSnapshot(version, values, INC);
    assert.equal(check(bytes, `v${version}`), true, `v${version} takes the fast path`);
  }
});

test('snapshot scan - what it leaves to the decoder', () => {
  const left: Array<[string, Uint8Array]> = [
    ['a version over 32 bits', buildSnapshot(2 ** 40, { a: 1 }, INC).bytes],
    ['an integer over 32 bits', buildSnapshot(1, { a: 2 ** 40 }, INC).bytes],
    ['non-ASCII text', buildSnapshot(1, { city: 'Zürich' }, INC).bytes],
    ['257 fields', buildSnapshot(1, Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, i])), INC).bytes],
  ];
  const one = buildSnapshot(3, { a: 1 }, INC).bytes; // a5 00 01 01 03 02 48 <8> 03 a1 61 61 01 04 48 <8>
  const at = one.indexOf(0xa1);
  const withValue = (value: number[]): Uint8Array => Uint8Array.from([...one.subarray(0, at + 3), ...value, ...one.subarray(at + 4)]);
  left.push(['null', withValue([0xf6])], ['half NaN', withValue([0xf9, 0x7e, 0x00])], ['half Infinity', withValue([0xf9, 0x7c, 0x00])]);
  left.push(['single NaN', withValue([0xfa, 0x7f, 0xc0, 0, 0])], ['double -Infinity', withValue([0xfb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0])]);
  left.push(['a tag', withValue([0xc1, 0x01])], ['an array', withValue([0x81, 0x01])], ['bytes', withValue([0x41, 0x01])]);
  const proto = Uint8Array.from([...one.subarray(0, at), 0xa1, 0x69, ...Buffer.from('__proto__'), 0x01, ...one.subarray(at + 4)]);
  left.push(['the key __proto__', proto]);
  left.push(['a byte after the map', Uint8Array.from([...one, 0x00])], ['cut short', one.subarray(0, one.length - 1)]);
  const reordered = Uint8Array.from([0xa5, 0x01, 0x03, 0x00, 0x01, ...one.subarray(5)]); // keys 1, 0, 2, 3, 4
  left.push(['keys in another order', reordered]);
  for (const [what, b] of left) assert.equal(check(b, what), false, what);
  assert.equal(decoded(proto), null, 'decodeSnapshot refuses __proto__');
  assert.equal(decoded(withValue([0xf9, 0x7e, 0x00])), null, 'decodeSnapshot refuses NaN');
  assert.equal(decoded(left[0]?.[1] ?? one)?.version, 2 ** 40, 'the decoder reads what the scan leaves');
  assert.equal(decoded(reordered)?.version, 3, 'any valid encoding decodes');
});

test('snapshot scan - damaged snapshots: whenever the scan answers, the decoder agrees', () => {
  const r = rng(3);
  const bases = [
    buildSnapshot(9, { mode: 'auto', interval: 30, enabled: true, level: 2.5 }, INC).bytes,
    buildSnapshot(1000, { a: -7, b: 'text', c: 1e-7, d: false }, INC).bytes,
  ];
  let answered = 0;
  for (const base of bases) {
    for (let i = 0; i < 20_000; i++) {
      const b = Uint8Array.from(base);
      const flips = 1 + Math.floor(r() * 3);
      for (let k = 0; k < flips; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      if (check(b, `flip ${i}`)) answered++;
      check(b.subarray(0, Math.floor(r() * b.length)), `cut ${i}`);
    }
  }
  assert.ok(answered > 1000, `the scan answered for ${answered} damaged snapshots that still decode`);
});
