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

/**
 * One growable output buffer, reused by every call: encoding is synchronous and not re-entrant, and a
 * snapshot is copied out at the end, so the hot path allocates one result array per encoding.
 */
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

  head(major: number, arg: number): void {
    const m = major << 5;
    this.reserve(9);
    const buf = this.buf;
    if (arg < 24) {
      buf[this.len++] = m | arg;
    } else if (arg <= 0xff) {
      buf[this.len] = m | 24;
      buf[this.len + 1] = arg;
      this.len += 2;
    } else if (arg <= 0xffff) {
      buf[this.len] = m | 25;
      this.view.setUint16(this.len + 1, arg);
      this.len += 3;
    } else if (arg <= 0xffffffff) {
      buf[this.len] = m | 26;
      this.view.setUint32(this.len + 1, arg);
      this.len += 5;
    } else {
      buf[this.len] = m | 27;
      this.view.setBigUint64(this.len + 1, BigInt(arg));
      this.len += 9;
    }
  }

  text(s: string): void {
    // ASCII fast path: config keys and most values; anything else goes through TextEncoder.
    const n = s.length;
    let ascii = n < 256;
    for (let i = 0; ascii && i < n; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    if (ascii) {
      this.head(MAJOR_TEXT, n);
      this.reserve(n);
      const buf = this.buf;
      let at = this.len;
      for (let i = 0; i < n; i++) buf[at++] = s.charCodeAt(i);
      this.len = at;
      return;
    }
    const b = textEncoder.encode(s);
    this.head(MAJOR_TEXT, b.length);
    this.bytes(b);
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
  w.reserve(9);
  if (Math.fround(v) === v) {
    const half = toHalfBits(v);
    if (half >= 0) {
      w.buf[w.len] = 0xf9;
      w.view.setUint16(w.len + 1, half);
      w.len += 3;
      return;
    }
    w.buf[w.len] = 0xfa;
    w.view.setFloat32(w.len + 1, v);
    w.len += 5;
    return;
  }
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

/** Encoded map keys, cached: a fleet's config keys repeat across every device's snapshot. */
const keyCache = new Map<string | number, Uint8Array>();
const KEY_CACHE_MAX = 4096;
const keyWriter = new Writer(64);

function encodedKey(k: string | number): Uint8Array {
  let b = keyCache.get(k);
  if (b) return b;
  keyWriter.len = 0;
  writeValue(keyWriter, k);
  b = keyWriter.result();
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear();
  keyCache.set(k, b);
  return b;
}

interface KeyedEntry {
  key: Uint8Array;
  value: CborValue;
}

const byKey = (a: KeyedEntry, b: KeyedEntry): number => compareBytes(a.key, b.key);

function inOrder(entries: readonly KeyedEntry[]): boolean {
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1];
    const cur = entries[i];
    if (!prev || !cur) continue;
    const c = compareBytes(prev.key, cur.key);
    if (c > 0) return false;
    if (c === 0) throw new CborEncodeError('duplicate map key');
  }
  return true;
}

function writeEntries(w: Writer, entries: KeyedEntry[]): void {
  // Callers that build maps in canonical order (snapshot values do) skip the sort.
  if (!inOrder(entries)) {
    entries.sort(byKey);
    inOrder(entries);
  }
  w.head(MAJOR_MAP, entries.length);
  for (const e of entries) {
    w.bytes(e.key);
    writeValue(w, e.value);
  }
}

function writeValue(w: Writer, v: CborValue): void {
  if (v === null) {
    w.byte(0xf6);
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
    w.text(v);
  } else if (v instanceof EncodedCbor) {
    w.bytes(v.bytes);
  } else if (v instanceof Uint8Array) {
    w.head(MAJOR_BYTES, v.length);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    const arr: readonly CborValue[] = v;
    w.head(MAJOR_ARRAY, arr.length);
    for (const item of arr) writeValue(w, item);
  } else if (v instanceof Map) {
    const entries: KeyedEntry[] = [];
    for (const [k, value] of v as ReadonlyMap<number | string, CborValue>) entries.push({ key: encodedKey(k), value });
    writeEntries(w, entries);
  } else {
    const obj = v as { readonly [key: string]: CborValue };
    if (writeOrderedObject(w, obj)) return;
    const entries: KeyedEntry[] = [];
    for (const k in obj) {
      if (!Object.hasOwn(obj, k)) continue;
      const value = obj[k];
      if (value !== undefined) entries.push({ key: encodedKey(k), value });
    }
    writeEntries(w, entries);
  }
}

/**
 * Writes an object whose own keys are already in canonical order without allocating entries (the
 * snapshot path builds its values that way). Returns false, having written nothing, otherwise.
 */
function writeOrderedObject(w: Writer, obj: { readonly [key: string]: CborValue }): boolean {
  let count = 0;
  let prev: Uint8Array | undefined;
  for (const k in obj) {
    if (!Object.hasOwn(obj, k) || obj[k] === undefined) continue;
    const key = encodedKey(k);
    if (prev && compareBytes(prev, key) >= 0) return false;
    prev = key;
    count++;
  }
  w.head(MAJOR_MAP, count);
  for (const k in obj) {
    if (!Object.hasOwn(obj, k)) continue;
    const value = obj[k];
    if (value === undefined) continue;
    w.bytes(encodedKey(k));
    writeValue(w, value);
  }
  return true;
}

const writer = new Writer(1024);

/** Encodes `value` deterministically: equal values give equal bytes, whatever the key order. */
export function encodeDeterministic(value: CborValue): Uint8Array {
  return encodeView(value).slice();
}

/**
 * Like encodeDeterministic, but returns a view of the encoder's own buffer: valid only until the next
 * encoding. For the hot path that hashes and copies the bytes at once (one allocation fewer per device).
 */
export function encodeView(value: CborValue): Uint8Array {
  writer.len = 0;
  writeValue(writer, value);
  return writer.buf.subarray(0, writer.len);
}

/** Text keys in the order a deterministic map holds them: shorter first, then by UTF-8 bytes. */
export function compareTextKeys(a: string, b: string): number {
  return compareBytes(encodedKey(a), encodedKey(b));
}
