/**
 * Deterministic CBOR encoder (RFC 8949 §4.2.1, "core deterministic encoding").
 *
 * - integers and lengths in their shortest form; no indefinite lengths;
 * - floats in the shortest of half/single/double that keeps the value exactly;
 * - map keys sorted by the bytewise order of their encodings.
 *
 * cbor-x is used for decoding; its encoder does not produce this form (insertion order, 16-bit map
 * headers, 64-bit floats), and the snapshot hash and ETag depend on identical bytes for identical values.
 */

/** Bytes that are already deterministic CBOR, written as they are (encode once, embed many times). */
export class EncodedCbor {
  constructor(readonly bytes: Uint8Array) {}
}

export type CborValue =
  | EncodedCbor
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | readonly CborValue[]
  | CborMap;

/** A map whose keys are text or small integers. Integer keys are given as a Map. */
export type CborMap = { readonly [key: string]: CborValue } | ReadonlyMap<number | string, CborValue>;

const MAJOR_UINT = 0;
const MAJOR_NEGINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;

export class CborEncodeError extends Error {
  readonly code = 'HENGE_E_CBOR_ENCODE';
}

class Writer {
  buf: Uint8Array;
  view: DataView;
  len = 0;

  constructor(size = 256) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  head(major: number, arg: number | bigint): void {
    const m = major << 5;
    if (typeof arg === 'bigint' || arg > 0xffffffff) {
      this.reserve(9);
      this.buf[this.len] = m | 27;
      this.view.setBigUint64(this.len + 1, BigInt(arg));
      this.len += 9;
    } else if (arg < 24) {
      this.byte(m | arg);
    } else if (arg <= 0xff) {
      this.reserve(2);
      this.buf[this.len] = m | 24;
      this.buf[this.len + 1] = arg;
      this.len += 2;
    } else if (arg <= 0xffff) {
      this.reserve(3);
      this.buf[this.len] = m | 25;
      this.view.setUint16(this.len + 1, arg);
      this.len += 3;
    } else {
      this.reserve(5);
      this.buf[this.len] = m | 26;
      this.view.setUint32(this.len + 1, arg);
      this.len += 5;
    }
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The IEEE 754 half-precision bits of `v` when it is exactly representable, else -1. */
function toHalfBits(v: number): number {
  f32[0] = v;
  const bits = u32[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127;
  const mant = bits & 0x7fffff;
  if (exp === -127 && mant === 0) return sign; // ±0
  if (exp >= -14 && exp <= 15) {
    if ((mant & 0x1fff) !== 0) return -1;
    return sign | ((exp + 15) << 10) | (mant >>> 13);
  }
  if (exp >= -24 && exp < -14) {
    const full = mant | 0x800000;
    const shift = 13 + (-14 - exp);
    if ((full & ((1 << shift) - 1)) !== 0) return -1;
    return sign | (full >>> shift);
  }
  return -1;
}

function writeFloat(w: Writer, v: number): void {
  if (Number.isNaN(v)) {
    w.bytes(Uint8Array.of(0xf9, 0x7e, 0x00));
    return;
  }
  if (!Number.isFinite(v)) {
    w.bytes(Uint8Array.of(0xf9, v > 0 ? 0x7c : 0xfc, 0x00));
    return;
  }
  const half = toHalfBits(v);
  if (half >= 0) {
    w.reserve(3);
    w.buf[w.len] = 0xf9;
    w.view.setUint16(w.len + 1, half);
    w.len += 3;
    return;
  }
  if (Math.fround(v) === v) {
    w.reserve(5);
    w.buf[w.len] = 0xfa;
    w.view.setFloat32(w.len + 1, v);
    w.len += 5;
    return;
  }
  w.reserve(9);
  w.buf[w.len] = 0xfb;
  w.view.setFloat64(w.len + 1, v);
  w.len += 9;
}

const textEncoder = new TextEncoder();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function writeMap(w: Writer, entries: Array<[number | string, CborValue]>): void {
  const encoded = entries.map(([k, v]) => {
    const kw = new Writer(typeof k === 'string' ? k.length * 3 + 9 : 9);
    writeValue(kw, k);
    return { key: kw.result(), value: v };
  });
  encoded.sort((a, b) => compareBytes(a.key, b.key));
  for (let i = 1; i < encoded.length; i++) {
    const prev = encoded[i - 1];
    const cur = encoded[i];
    if (prev && cur && compareBytes(prev.key, cur.key) === 0) throw new CborEncodeError('duplicate map key');
  }
  w.head(MAJOR_MAP, encoded.length);
  for (const e of encoded) {
    w.bytes(e.key);
    writeValue(w, e.value);
  }
}

function writeValue(w: Writer, v: CborValue): void {
  if (v === null) {
    w.byte(0xf6);
  } else if (v instanceof EncodedCbor) {
    w.bytes(v.bytes);
  } else if (v === true) {
    w.byte(0xf5);
  } else if (v === false) {
    w.byte(0xf4);
  } else if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
      if (v >= 0) w.head(MAJOR_UINT, v);
      else w.head(MAJOR_NEGINT, -1 - v);
    } else {
      writeFloat(w, v);
    }
  } else if (typeof v === 'string') {
    const b = textEncoder.encode(v);
    w.head(MAJOR_TEXT, b.length);
    w.bytes(b);
  } else if (v instanceof Uint8Array) {
    w.head(MAJOR_BYTES, v.length);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    const arr: readonly CborValue[] = v;
    w.head(MAJOR_ARRAY, arr.length);
    for (const item of arr) writeValue(w, item);
  } else if (v instanceof Map) {
    writeMap(w, [...(v as ReadonlyMap<number | string, CborValue>).entries()]);
  } else {
    writeMap(w, Object.entries(v as { readonly [key: string]: CborValue }));
  }
}

/** Encodes `value` deterministically: equal values give equal bytes, whatever the key order. */
export function encodeDeterministic(value: CborValue): Uint8Array {
  const w = new Writer();
  writeValue(w, value);
  return w.result();
}
