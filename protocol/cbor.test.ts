import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode } from 'cbor-x';
import { CborEncodeError, EncodedCbor, encodeDeterministic } from './cbor.ts';
import type { CborMap, CborValue } from './cbor.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const enc = (v: CborValue): string => hex(encodeDeterministic(v));

function checkFixtures(fixtures: ReadonlyArray<readonly [CborValue, string]>): void {
  for (const [value, expected] of fixtures) {
    assert.equal(enc(value), expected, `encoding of ${String(value)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Byte fixtures: RFC 8949 Appendix A, restricted to what a JS value can express. A JS number that is
// a safe integer is always written as a CBOR integer (there is no 1.0 vs 1 in JS), so the Appendix A
// rows 0.0, 1.0, 65504.0, 100000.0 and -4.0 come out in their integer form here.
// ---------------------------------------------------------------------------------------------

test('cbor - unsigned integers use the shortest head (RFC 8949 Appendix A)', () => {
  checkFixtures([
    [0, '00'],
    [1, '01'],
    [10, '0a'],
    [23, '17'],
    [24, '1818'],
    [25, '1819'],
    [100, '1864'],
    [255, '18ff'],
    [256, '190100'],
    [1000, '1903e8'],
    [65535, '19ffff'],
    [65536, '1a00010000'],
    [1000000, '1a000f4240'],
    [4294967295, '1affffffff'],
    [4294967296, '1b0000000100000000'],
    [1000000000000, '1b000000e8d4a51000'],
    [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
  ]);
});

test('cbor - negative integers use major type 1 with -1-n (RFC 8949 Appendix A)', () => {
  checkFixtures([
    [-1, '20'],
    [-10, '29'],
    [-24, '37'],
    [-25, '3818'],
    [-100, '3863'],
    [-256, '38ff'],
    [-257, '390100'],
    [-1000, '3903e7'],
    [-65537, '3a00010000'],
    [-4294967296, '3affffffff'],
    [-4294967297, '3b0000000100000000'],
    [Number.MIN_SAFE_INTEGER, '3b001ffffffffffffe'],
  ]);
});

test('cbor - integral JS numbers from the float rows of Appendix A are written as integers', () => {
  checkFixtures([
    [0.0, '00'],
    [1.0, '01'],
    [-4.0, '23'],
    [65504.0, '19ffe0'],
    [100000.0, '1a000186a0'],
  ]);
});

test('cbor - floats take the shortest of half, single and double that keeps the value', () => {
  checkFixtures([
    // half precision
    [1.5, 'f93e00'],
    [-1.5, 'f9be00'],
    [0.5, 'f93800'],
    [1023.5, 'f963ff'],
    [0.00006103515625, 'f90400'], // smallest normal half
    [5.960464477539063e-8, 'f90001'], // smallest subnormal half
    [6.097555160522461e-5, 'f903ff'], // largest subnormal half
    // single precision
    [100000.5, 'fa47c35040'], // 100000 = 47c35000; 0.5 is 2^6 units of 2^-7
    [1024.5, 'fa44801000'], // above 1024 halves are spaced by 1: no longer a half
    [3.4028234663852886e38, 'fa7f7fffff'],
    [2.9802322387695312e-8, 'fa33000000'], // 2^-25: just below the smallest half subnormal
    [Number.MAX_SAFE_INTEGER + 1, 'fa5a000000'], // 2^53 is not a safe integer: a float
    // double precision
    [1.1, 'fb3ff199999999999a'],
    [-4.1, 'fbc010666666666666'],
    [1.0e300, 'fb7e37e43c8800759c'],
    [0.1, 'fb3fb999999999999a'],
    [Number.MAX_VALUE, 'fb7fefffffffffffff'],
  ]);
});

test('cbor - -0, NaN and the infinities are written as half floats', () => {
  checkFixtures([
    [-0, 'f98000'],
    [Number.NaN, 'f97e00'],
    [Number.POSITIVE_INFINITY, 'f97c00'],
    [Number.NEGATIVE_INFINITY, 'f9fc00'],
  ]);
});

test('cbor - simple values false, true and null', () => {
  checkFixtures([
    [false, 'f4'],
    [true, 'f5'],
    [null, 'f6'],
  ]);
});

test('cbor - text strings are UTF-8 with a byte-length head (RFC 8949 Appendix A)', () => {
  checkFixtures([
    ['', '60'],
    ['a', '6161'],
    ['IETF', '6449455446'],
    ['"\\', '62225c'],
    ['\u00fc', '62c3bc'],
    ['\u6c34', '63e6b0b4'],
    ['\ud800\udd51', '64f0908591'],
    ['x'.repeat(23), `77${'78'.repeat(23)}`],
    ['x'.repeat(24), `7818${'78'.repeat(24)}`],
    ['x'.repeat(256), `790100${'78'.repeat(256)}`],
  ]);
});

test('cbor - byte strings are written as they are with a length head', () => {
  checkFixtures([
    [new Uint8Array(0), '40'],
    [Uint8Array.of(1, 2, 3, 4), '4401020304'],
    [new Uint8Array(24), `5818${'00'.repeat(24)}`],
    [Buffer.from('ab', 'utf8'), '426162'],
  ]);
  // A view into a larger buffer writes only its own bytes.
  const view = Uint8Array.of(9, 9, 1, 2, 9).subarray(2, 4);
  assert.equal(enc(view), '420102');
});

test('cbor - long byte strings and arrays grow the output buffer and keep their 32-bit length head', () => {
  const big = new Uint8Array(70000).map((_, i) => i & 0xff);
  const out = encodeDeterministic(big);
  assert.equal(out.length, 5 + 70000);
  assert.equal(hex(out.subarray(0, 5)), '5a00011170');
  assert.deepEqual(out.subarray(5), big);

  const arr = Array.from({ length: 1000 }, (_, i) => `item-${i}`);
  const arrOut = encodeDeterministic(arr);
  assert.equal(hex(arrOut.subarray(0, 3)), '9903e8');
  assert.deepEqual(decode(arrOut), arr);
});

test('cbor - arrays (RFC 8949 Appendix A)', () => {
  const twentyFive = Array.from({ length: 25 }, (_, i) => i + 1);
  checkFixtures([
    [[], '80'],
    [[1, 2, 3], '83010203'],
    [[1, [2, 3], [4, 5]], '8301820203820405'],
    [twentyFive, '98190102030405060708090a0b0c0d0e0f101112131415161718181819'],
    [['a', { b: 'c' }], '826161a161626163'],
  ]);
});

test('cbor - maps (RFC 8949 Appendix A)', () => {
  checkFixtures([
    [{}, 'a0'],
    [new Map([[1, 2], [3, 4]]), 'a201020304'],
    [{ a: 1, b: [2, 3] }, 'a26161016162820203'],
    [{ a: 'A', b: 'B', c: 'C', d: 'D', e: 'E' }, 'a56161614161626142616361436164614461656145'],
  ]);
});

// ---------------------------------------------------------------------------------------------
// Map key order
// ---------------------------------------------------------------------------------------------

test('cbor - map keys sort by the bytes of their encoding, so a shorter text key comes first', () => {
  // "b" = 61 62, "aa" = 62 61 61: the length is in the head, so "b" sorts before "aa".
  assert.equal(enc({ aa: 2, b: 1 }), 'a2616201626161' + '02');
  assert.equal(enc({ b: 1, aa: 2 }), 'a2616201626161' + '02');
  // Same length: plain byte order ("B" < "a" in UTF-8).
  assert.equal(enc({ a: 1, B: 2 }), 'a2614202616101');
});

test('cbor - map keys with the same head compare byte by byte (RFC 8949 §4.2.1, not length-first)', () => {
  // 100 = 18 64 sorts before -1 = 20 although it is longer (RFC 7049 "canonical" would put -1 first).
  const m = new Map<number | string, CborValue>([
    ['a', 4],
    [-1, 3],
    [100, 2],
    [10, 1],
  ]);
  assert.equal(enc(m), 'a4' + '0a01' + '186402' + '2003' + '616104');
});

test('cbor - integer-keyed Maps are written with integer keys, not text', () => {
  const m = new Map<number, CborValue>([
    [3, 'c'],
    [0, 'a'],
    [24, 'x'],
    [1, 'b'],
  ]);
  assert.equal(enc(m), 'a4' + '006161' + '016162' + '036163' + '18186178');
  // A text key "1" is different from the integer 1 and sorts after every small integer.
  const mixed = new Map<number | string, CborValue>([
    ['1', true],
    [1, false],
  ]);
  assert.equal(enc(mixed), 'a2' + '01f4' + '6131f5');
});

test('cbor - nested maps are sorted at every level', () => {
  const value: CborValue = { zz: { b: 1, a: 2 }, y: [{ d: 1, c: 2 }] };
  // "y" (61 79) before "zz" (62 7a 7a)
  assert.equal(enc(value), 'a2' + '6179' + '81a2' + '616302' + '616401' + '627a7a' + 'a2' + '616102' + '616201');
});

test('cbor - map keys that encode to the same bytes are refused', () => {
  // Lone surrogates are both written as U+FFFD (ef bf bd), so the two keys would be identical.
  const fromObject = (): Uint8Array => encodeDeterministic({ '\ud800': 1, '\udc00': 2 });
  assert.throws(fromObject, (e: unknown) => e instanceof CborEncodeError && e.code === 'HENGE_E_CBOR_ENCODE' && /duplicate map key/.test(e.message));
  const fromMap = (): Uint8Array =>
    encodeDeterministic(
      new Map<number | string, CborValue>([
        ['\ufffd', 1],
        ['\udfff', 2],
      ]),
    );
  assert.throws(fromMap, CborEncodeError);
  // Nested: the error surfaces from inside an array too.
  assert.throws(() => encodeDeterministic([1, { '\ud800': 1, '\udc00': 2 }]), CborEncodeError);
});

// ---------------------------------------------------------------------------------------------
// EncodedCbor
// ---------------------------------------------------------------------------------------------

test('cbor - EncodedCbor bytes are embedded verbatim as an item', () => {
  const inner = encodeDeterministic({ b: 1, a: 2 });
  assert.equal(hex(inner), 'a2616102616201');
  assert.equal(enc([new EncodedCbor(inner), 3]), '82' + 'a2616102616201' + '03');
  assert.equal(enc(new Map<number, CborValue>([[3, new EncodedCbor(inner)]])), 'a103' + 'a2616102616201');
  assert.equal(enc({ v: new EncodedCbor(inner) }), enc({ v: { a: 2, b: 1 } }));
});

test('cbor - EncodedCbor is not a byte string: no length head is added', () => {
  const raw = unhex('f5');
  assert.equal(enc(new EncodedCbor(raw)), 'f5');
  assert.equal(enc(raw), '41f5');
});

// ---------------------------------------------------------------------------------------------
// Property tests (seeded PRNG, bounded)
// ---------------------------------------------------------------------------------------------

/** mulberry32: small, fast, seeded. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly rnd: () => number) {}

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  u32(): number {
    return Math.floor(this.rnd() * 4294967296) >>> 0;
  }

  /** A safe integer whose size class (head length) is chosen uniformly. */
  integer(): number {
    const limits = [23, 0xff, 0xffff, 0xffffffff, Number.MAX_SAFE_INTEGER];
    const max = this.pick(limits);
    const magnitude = max <= 0xffffffff ? this.int(0, max) : Math.floor(this.rnd() * max);
    return this.rnd() < 0.5 ? magnitude : -magnitude - (magnitude === Number.MAX_SAFE_INTEGER ? 0 : 1);
  }

  /** A value that half precision holds exactly (may be integral). */
  halfExact(): number {
    for (;;) {
      const bits = this.int(0, 0xffff);
      if (((bits >> 10) & 0x1f) === 0x1f) continue; // NaN/Infinity handled elsewhere
      const sign = bits & 0x8000 ? -1 : 1;
      const exp = (bits >> 10) & 0x1f;
      const mant = bits & 0x3ff;
      return exp === 0 ? sign * mant * 2 ** -24 : sign * (1 + mant / 1024) * 2 ** (exp - 15);
    }
  }

  /** A finite value that single precision holds exactly. */
  singleExact(): number {
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (;;) {
      u[0] = this.u32();
      const v = f[0] ?? 0;
      if (Number.isFinite(v)) return v;
    }
  }

  /**
   * A double with a full random 52-bit mantissa, magnitude 2^-60..2^-26 or 2^16..2^60.
   * (Doubles below 2^-150, or near 1 and rounding to a half in single precision, are kept out: see the
   * float bug reported with these tests.)
   */
  double(): number {
    const exp = this.rnd() < 0.5 ? this.int(-60, -26) : this.int(16, 60);
    const mantissa = 1 + (this.u32() * 2 ** 20 + (this.u32() >>> 12)) / 2 ** 52;
    const v = mantissa * 2 ** exp;
    return this.rnd() < 0.5 ? v : -v;
  }

  number(): number {
    switch (this.int(0, 5)) {
      case 0:
        return this.integer();
      case 1:
        return this.halfExact();
      case 2:
        return this.singleExact();
      case 3:
        return this.double();
      case 4:
        return this.pick([0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.1, 0.1, -4.1]);
      default:
        return this.int(-1000, 1000) / 8;
    }
  }

  string(maxLength = 12): string {
    const length = this.rnd() < 0.05 ? this.int(24, 300) : this.int(0, maxLength);
    let s = '';
    for (let i = 0; i < length; i++) {
      const range = this.pick([
        [0x20, 0x7e],
        [0x00, 0x1f],
        [0x80, 0x7ff],
        [0x800, 0xd7ff],
        [0xe000, 0xffff],
        [0x10000, 0x10ffff],
      ] as const);
      s += String.fromCodePoint(this.int(range[0], range[1]));
    }
    return s;
  }

  bytes(): Uint8Array {
    const n = this.rnd() < 0.05 ? this.int(24, 400) : this.int(0, 10);
    return Uint8Array.from({ length: n }, () => this.int(0, 255));
  }

  key(): string {
    for (;;) {
      const k = this.string(6);
      if (k !== '__proto__') return k;
    }
  }

  value(depth: number): CborValue {
    const kinds = depth <= 0 ? 6 : 9;
    switch (this.int(0, kinds - 1)) {
      case 0:
        return null;
      case 1:
        return this.rnd() < 0.5;
      case 2:
      case 3:
        return this.number();
      case 4:
        return this.string();
      case 5:
        return this.bytes();
      case 6:
        return Array.from({ length: this.int(0, 5) }, () => this.value(depth - 1));
      case 7: {
        const obj: Record<string, CborValue> = {};
        const n = this.int(0, 6);
        for (let i = 0; i < n; i++) obj[this.key()] = this.value(depth - 1);
        return obj;
      }
      default: {
        const m = new Map<number, CborValue>();
        const n = this.int(0, 6);
        for (let i = 0; i < n; i++) m.set(this.rnd() < 0.7 ? this.int(-30, 300) : this.integer(), this.value(depth - 1));
        return m;
      }
    }
  }
}

/** What cbor-x's decoder gives back for a value: maps as objects with text keys, plain Uint8Arrays. */
function expectedDecoded(v: CborValue): unknown {
  if (v instanceof EncodedCbor) throw new Error('not generated');
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map((item: CborValue) => expectedDecoded(item));
  if (v instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, item] of (v as ReadonlyMap<number | string, CborValue>).entries()) out[String(k)] = expectedDecoded(item);
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v as { readonly [key: string]: CborValue })) out[k] = expectedDecoded(item);
    return out;
  }
  return v;
}

/** Normalizes cbor-x output: Buffers to Uint8Array, 64-bit integers (BigInt) to numbers. */
function normalizeDecoded(v: unknown): unknown {
  if (typeof v === 'bigint') {
    assert.ok(v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER), `decoded ${v} outside the safe range`);
    return Number(v);
  }
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map((item: unknown) => normalizeDecoded(item));
  if (v instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, item] of v.entries()) out[String(k)] = normalizeDecoded(item);
    return out;
  }
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) out[k] = normalizeDecoded(item);
    return out;
  }
  return v;
}

function shuffle<T>(g: Gen, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = g.int(0, i);
    const a = out[i] as T;
    out[i] = out[j] as T;
    out[j] = a;
  }
  return out;
}

/** The same value with every map's entries inserted in a new random order. */
function reorder(g: Gen, v: CborValue): CborValue {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof EncodedCbor) return v;
  if (Array.isArray(v)) return v.map((item: CborValue) => reorder(g, item));
  if (v instanceof Map) {
    const entries = [...(v as ReadonlyMap<number | string, CborValue>).entries()];
    return new Map(shuffle(g, entries).map(([k, item]) => [k, reorder(g, item)] as const));
  }
  const entries = Object.entries(v as CborMap);
  const out: Record<string, CborValue> = {};
  for (const [k, item] of shuffle(g, entries)) out[k] = reorder(g, item as CborValue);
  return out;
}

const ITERATIONS = 400;

test('cbor - property: random values decode with cbor-x to the same value', () => {
  const g = new Gen(prng(0x5eed_cb07));
  for (let i = 0; i < ITERATIONS; i++) {
    const value = g.value(3);
    const bytes = encodeDeterministic(value);
    let decoded: unknown;
    try {
      decoded = decode(bytes);
    } catch (e) {
      assert.fail(`iteration ${i}: cbor-x cannot decode ${hex(bytes)}: ${String(e)}`);
    }
    assert.deepStrictEqual(normalizeDecoded(decoded), expectedDecoded(value), `iteration ${i}: ${hex(bytes)}`);
  }
});

test('cbor - property: map key insertion order never changes the bytes', () => {
  const g = new Gen(prng(0x0dde_2024));
  for (let i = 0; i < ITERATIONS; i++) {
    const value = g.value(3);
    const bytes = hex(encodeDeterministic(value));
    for (let r = 0; r < 3; r++) assert.equal(hex(encodeDeterministic(reorder(g, value))), bytes, `iteration ${i}`);
  }
});

test('cbor - property: integers are written with the shortest head', () => {
  const g = new Gen(prng(42));
  for (let i = 0; i < 2000; i++) {
    const n = g.integer();
    const arg = n >= 0 ? n : -1 - n;
    const expectedLength = arg < 24 ? 1 : arg <= 0xff ? 2 : arg <= 0xffff ? 3 : arg <= 0xffffffff ? 5 : 9;
    const bytes = encodeDeterministic(n);
    assert.equal(bytes.length, expectedLength, `${n} -> ${hex(bytes)}`);
    assert.equal((bytes[0] ?? 0) >> 5, n >= 0 ? 0 : 1, `${n} major type`);
  }
});

/** Independent of the encoder: |v| = odd * 2^k with odd < 2^11, k >= -24 and |v| <= 65504. */
function isHalfExact(v: number): boolean {
  if (!Number.isFinite(v)) return false;
  const a = Math.abs(v);
  if (a > 65504) return false;
  let scaled = a * 2 ** 24;
  if (!Number.isInteger(scaled)) return false;
  while (scaled > 0 && scaled % 2 === 0) scaled /= 2;
  return scaled < 2048;
}

test('cbor - property: non-integral floats take the shortest exact width', () => {
  const g = new Gen(prng(7));
  const makers = [() => g.halfExact(), () => g.singleExact(), () => g.double(), () => g.int(-100000, 100000) / 1024];
  const seen = new Map<number, number>();
  for (let i = 0; i < 3000; i++) {
    const v = g.pick(makers)();
    if (Number.isSafeInteger(v) || Object.is(v, -0)) continue;
    const width = isHalfExact(v) ? 3 : Math.fround(v) === v ? 5 : 9;
    seen.set(width, (seen.get(width) ?? 0) + 1);
    const bytes = encodeDeterministic(v);
    assert.equal(bytes.length, width, `${v} -> ${hex(bytes)}`);
    assert.equal(bytes[0], width === 3 ? 0xf9 : width === 5 ? 0xfa : 0xfb, `${v} -> ${hex(bytes)}`);
    const back: unknown = decode(bytes);
    assert.ok(Object.is(back, v), `${v} -> ${hex(bytes)} read back as ${String(back)}`);
  }
  for (const width of [3, 5, 9]) assert.ok((seen.get(width) ?? 0) > 200, `only ${seen.get(width) ?? 0} cases of width ${width}`);
});

test('cbor - a double that rounds to a half or single float is written as a double, value intact', () => {
  checkFixtures([
    [1 + 2 ** -30, 'fb3ff0000000400000'],
    [1.5 + 2 ** -40, 'fb3ff8000000001000'],
    [Number.MIN_VALUE, 'fb0000000000000001'],
    [1e-50, 'fb358dee7a4ad4b81f'],
    [-1e-50, 'fbb58dee7a4ad4b81f'],
  ]);
  for (const v of [1 + 2 ** -30, Number.MIN_VALUE, -1e-50]) assert.equal(decode(encodeDeterministic(v)), v);
});
