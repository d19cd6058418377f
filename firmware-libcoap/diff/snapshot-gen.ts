/**
 * Random valid snapshots for the firmware's differential test and fuzz seeds: config values anywhere in
 * docs/protocol.md's limits, and the same snapshot written in other valid CBOR encodings than the hub's
 * deterministic one (long heads, indefinite-length maps, chunked strings, wider floats, any key order,
 * unknown envelope keys). Every encoding decodes to the same fields; that is what the tests check.
 */
import type { ConfigValue, Snapshot } from '../../protocol/snapshot.ts';

export type Next = () => number;

const pick = <T>(next: Next, xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
const int = (next: Next, lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));

/** The protocol's limits ("Limits"). */
export const MAX_FIELDS = 256;
export const MAX_TEXT_BYTES = 4096;
export const MAX_KEY_LENGTH = 64;

const KEY_FIRST = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_';
const KEY_REST = `${KEY_FIRST}0123456789-`;

function randomKey(next: Next): string {
  const len = next() < 0.05 ? MAX_KEY_LENGTH : next() < 0.5 ? int(next, 1, 4) : int(next, 1, MAX_KEY_LENGTH);
  let k = pick(next, [...KEY_FIRST]);
  while (k.length < len) k += pick(next, [...KEY_REST]);
  return k;
}

/** Characters of 1, 2, 3 and 4 UTF-8 bytes, controls and U+0000 included; never a lone surrogate. */
const CHARS = ['a', 'Z', ' ', '"', '\\', '\u0000', '\u0001', '\t', '\n', '\u001f', '\u007f', 'é', 'ß', 'ÿ', '\u0100', '\u07ff', '\u0800', '€', '日', '\u2028', '\ufeff', '\uffff', '😀', '\u{10000}', '\u{10ffff}'];

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function randomText(next: Next): string {
  const r = next();
  if (r < 0.1) return '';
  const budget = r < 0.03 + 0.1 ? MAX_TEXT_BYTES : r < 0.3 ? int(next, 200, 600) : int(next, 1, 24);
  let s = '';
  let bytes = 0;
  const plain = next() < 0.5;
  while (bytes < budget) {
    const c = plain ? pick(next, ['a', 'b', 'c', ' ', '1']) : pick(next, CHARS);
    const n = utf8Length(c);
    if (bytes + n > budget) break;
    s += c;
    bytes += n;
  }
  return s;
}

const INT_EDGES = [0, 1, -1, 23, 24, -24, -25, 255, 256, -256, -257, 65535, 65536, -65536, -65537, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
const FLOAT_EDGES = [0.5, -0.5, 21.5, 0.1, -0.0, 1e-7, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308, 65504, 65520, 5.960464477539063e-8, 6.103515625e-5, 3.4028234663852886e38, 1.401298464324817e-45, 2 ** 53 + 2, 2 ** 60, -(2 ** 64), 1e21, 123456789.125, Math.PI];

function randomNumber(next: Next): number {
  switch (int(next, 0, 7)) {
    case 0:
      return pick(next, INT_EDGES);
    case 1:
      return int(next, -1000, 1000);
    case 2:
      return Math.floor((next() - 0.5) * 2 ** int(next, 1, 53));
    case 3:
      return pick(next, FLOAT_EDGES);
    case 4:
      return Math.fround((next() - 0.5) * 10 ** int(next, -10, 10)); // exact as a single
    case 5:
      return Math.round((next() - 0.5) * 4096) / 64; // often exact as a half
    case 6: {
      // Any finite double, from random bits.
      const view = new DataView(new ArrayBuffer(8));
      for (;;) {
        view.setUint32(0, Math.floor(next() * 2 ** 32));
        view.setUint32(4, Math.floor(next() * 2 ** 32));
        const v = view.getFloat64(0);
        if (Number.isFinite(v)) return v;
      }
    }
    default:
      return (next() - 0.5) * 10 ** int(next, -30, 30);
  }
}

export function randomValue(next: Next): ConfigValue {
  const r = next();
  if (r < 0.35) return randomText(next);
  if (r < 0.8) return randomNumber(next);
  return next() < 0.5;
}

/** Random config values within the protocol's limits. */
export function randomValues(next: Next): Record<string, ConfigValue> {
  const r = next();
  const n = r < 0.05 ? 0 : r < 0.08 ? MAX_FIELDS : r < 0.15 ? int(next, 30, 40) : int(next, 1, 12);
  const values: Record<string, ConfigValue> = {};
  let guard = 0;
  while (Object.keys(values).length < n && guard++ < n * 10) {
    const k = randomKey(next);
    if (k === '__proto__' || Object.hasOwn(values, k)) continue;
    values[k] = randomValue(next);
  }
  return values;
}

export function randomVersion(next: Next): number {
  return next() < 0.3 ? pick(next, [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) : Math.floor(next() * 2 ** int(next, 1, 53));
}

export function randomBytes(next: Next, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

// ------------------------------------------------------------------------------------------------
// Other valid encodings

export interface VariantOptions {
  /**
   * Stay within what protocol/ (cbor-x 1.6) decodes. Without it, also valid encodings it refuses:
   * chunked (indefinite-length) strings ("Indefinite length not supported for byte or text strings"),
   * envelope keys and the protocol number in 8-byte heads (cbor-x makes them bigints, and protocol/
   * then finds no key 0..4), and strings with 8-byte length heads (after a non-ASCII text, cbor-x
   * throws "Unexpected end of buffer reading string").
   */
  readonly cborX: boolean;
}

/** The type the hub's encoder gives a number (protocol/cbor.ts): an integer when it is a safe integer, not -0. */
export function isWireInteger(v: number): boolean {
  return Number.isSafeInteger(v) && !Object.is(v, -0);
}

class Out {
  private readonly parts: number[] = [];
  byte(b: number): void {
    this.parts.push(b & 0xff);
  }
  bytes(b: Uint8Array): void {
    for (const x of b) this.parts.push(x);
  }
  result(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** A head in the shortest form or (randomly) a longer one that still holds `arg` (at most `widest` bytes when it fits). */
function head(o: Out, next: Next, major: number, arg: bigint, widest = 8): void {
  const m = major << 5;
  const all = [arg < 24n ? 0 : -1, arg <= 0xffn ? 1 : -1, arg <= 0xffffn ? 2 : -1, arg <= 0xffffffffn ? 4 : -1, 8].filter((w) => w >= 0);
  const narrow = all.filter((w) => w <= widest);
  const fits = narrow.length > 0 ? narrow : all;
  const width = next() < 0.6 ? (fits[0] as number) : pick(next, fits);
  if (width === 0) {
    o.byte(m | Number(arg));
    return;
  }
  o.byte(m | (width === 1 ? 24 : width === 2 ? 25 : width === 4 ? 26 : 27));
  for (let i = width - 1; i >= 0; i--) o.byte(Number((arg >> BigInt(8 * i)) & 0xffn));
}

function text(o: Out, next: Next, s: string, opts: VariantOptions): void {
  stringItem(o, next, 3, Buffer.from(s, 'utf8'), opts);
}

function stringItem(o: Out, next: Next, major: number, b: Uint8Array, opts: VariantOptions): void {
  if (!opts.cborX && next() < 0.3) {
    // Chunks split anywhere (a UTF-8 character may straddle two chunks: the whole string is what counts).
    o.byte((major << 5) | 31);
    let at = 0;
    while (at < b.length || next() < 0.2) {
      const n = Math.min(b.length - at, int(next, 0, 8));
      head(o, next, major, BigInt(n), opts.cborX ? 4 : 8);
      o.bytes(b.subarray(at, at + n));
      at += n;
      if (at >= b.length && next() < 0.7) break;
    }
    o.byte(0xff);
    return;
  }
  head(o, next, major, BigInt(b.length), opts.cborX ? 4 : 8);
  o.bytes(b);
}

function float(o: Out, next: Next, v: number): void {
  // The shortest exact form, or a wider one (always exact).
  const view = new DataView(new ArrayBuffer(8));
  const half = halfBits(v);
  const single = Math.fround(v) === v || Number.isNaN(v);
  const forms = [half >= 0 ? 2 : -1, single ? 4 : -1, 8].filter((w) => w > 0);
  const width = next() < 0.6 ? (forms[0] as number) : pick(next, forms);
  if (width === 2) {
    o.byte(0xf9);
    o.byte(half >> 8);
    o.byte(half);
  } else if (width === 4) {
    o.byte(0xfa);
    view.setFloat32(0, v);
    o.bytes(new Uint8Array(view.buffer, 0, 4));
  } else {
    o.byte(0xfb);
    view.setFloat64(0, v);
    o.bytes(new Uint8Array(view.buffer, 0, 8));
  }
}

/** IEEE half bits of `v` when exact, else -1 (as protocol/cbor.ts decides, written again here). */
export function halfBits(v: number): number {
  if (Math.fround(v) !== v) return -1;
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, v);
  const bits = view.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127;
  const mant = bits & 0x7fffff;
  if (exp === -127 && mant === 0) return sign;
  if (exp >= -14 && exp <= 15) return (mant & 0x1fff) !== 0 ? -1 : sign | ((exp + 15) << 10) | (mant >>> 13);
  if (exp >= -24 && exp < -14) {
    const full = mant | 0x800000;
    const shift = 13 + (-14 - exp);
    return (full & ((1 << shift) - 1)) !== 0 ? -1 : sign | (full >>> shift);
  }
  return -1;
}

function value(o: Out, next: Next, v: ConfigValue, opts: VariantOptions): void {
  if (typeof v === 'string') text(o, next, v, opts);
  else if (typeof v === 'boolean') o.byte(v ? 0xf5 : 0xf4);
  else if (isWireInteger(v)) {
    if (v >= 0) head(o, next, 0, BigInt(v));
    else head(o, next, 1, BigInt(-1 - v));
  } else float(o, next, v);
}

/** A map's entries, definite (any head width) or indefinite. */
function map(o: Out, next: Next, entries: ReadonlyArray<() => void>): void {
  if (next() < 0.3) {
    o.byte(0xbf);
    for (const e of entries) e();
    o.byte(0xff);
    return;
  }
  head(o, next, 5, BigInt(entries.length));
  for (const e of entries) e();
}

function shuffle<T>(next: Next, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

/** A value under an unknown envelope key, at most `depth` containers deep (the core skips 8). */
function unknownItem(o: Out, next: Next, depth: number, opts: VariantOptions): void {
  const kinds = depth > 0 ? 9 : 6;
  switch (int(next, 0, kinds - 1)) {
    case 0:
      head(o, next, 0, BigInt(int(next, 0, 100000)));
      return;
    case 1:
      head(o, next, 1, BigInt(int(next, 0, 100000)));
      return;
    case 2:
      text(o, next, randomText(next).slice(0, 40), opts);
      return;
    case 3:
      stringItem(o, next, 2, randomBytes(next, int(next, 0, 12)), opts);
      return;
    case 4:
      o.byte(pick(next, [0xf4, 0xf5, 0xf6, 0xf7]));
      return;
    case 5:
      float(o, next, randomNumber(next));
      return;
    case 6: {
      const n = int(next, 0, 4);
      if (next() < 0.3) {
        o.byte(0x9f);
        for (let i = 0; i < n; i++) unknownItem(o, next, depth - 1, opts);
        o.byte(0xff);
      } else {
        head(o, next, 4, BigInt(n));
        for (let i = 0; i < n; i++) unknownItem(o, next, depth - 1, opts);
      }
      return;
    }
    case 7: {
      const n = int(next, 0, 3);
      map(
        o,
        next,
        Array.from({ length: n }, () => () => {
          unknownItem(o, next, 0, opts);
          unknownItem(o, next, depth - 1, opts);
        }),
      );
      return;
    }
    default:
      // A tag cbor-x has no meaning for (it returns a Tag), around any item.
      head(o, next, 6, BigInt(pick(next, [1000, 40000, 100000])));
      unknownItem(o, next, depth - 1, opts);
  }
}

/** `s` in another valid encoding, chosen by `next`. */
export function encodeVariant(s: Snapshot, next: Next, opts: VariantOptions): Uint8Array {
  const o = new Out();
  const keyWidth = opts.cborX ? 4 : 8;
  const envelope: Array<() => void> = [
    () => {
      head(o, next, 0, 0n, keyWidth);
      head(o, next, 0, 1n, keyWidth);
    },
    () => {
      head(o, next, 0, 1n, keyWidth);
      head(o, next, 0, BigInt(s.version));
    },
    () => {
      head(o, next, 0, 2n, keyWidth);
      stringItem(o, next, 2, s.hash, opts);
    },
    () => {
      head(o, next, 0, 3n, keyWidth);
      const keys = shuffle(next, Object.keys(s.values));
      map(
        o,
        next,
        keys.map((k) => () => {
          text(o, next, k, opts);
          value(o, next, s.values[k] as ConfigValue, opts);
        }),
      );
    },
    () => {
      head(o, next, 0, 4n, keyWidth);
      stringItem(o, next, 2, s.incarnation, opts);
    },
  ];
  // Unknown envelope keys, unsigned integers other than 0..4: clients MUST ignore them (docs/protocol.md,
  // "Limits" and "Versioning"; any other kind of envelope key makes the snapshot invalid).
  const unknown = next() < 0.4 ? int(next, 1, 3) : 0;
  const used = new Set<number>();
  for (let i = 0; i < unknown; i++) {
    const key = int(next, 5, 1000);
    if (used.has(key)) continue;
    used.add(key);
    envelope.push(() => {
      head(o, next, 0, BigInt(key), keyWidth);
      unknownItem(o, next, 4, opts);
    });
  }
  map(o, next, shuffle(next, envelope));
  return o.result();
}
