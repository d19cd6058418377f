/**
 * A device needs three things from a snapshot: its version, hash and incarnation. `scanSnapshot` reads
 * them straight from the bytes of a snapshot laid out as the hub encodes it (docs/protocol.md: map(5),
 * keys 0..4 in order, 8-byte hash and incarnation) and checks the values map on the way (text keys,
 * scalar values), building nothing.
 *
 * It is a fast path, not a second decoder: it answers only for a strict subset of what
 * snapshot.ts's `decodeSnapshot` accepts (ASCII text, integers up to 32 bits, finite floats,
 * booleans, no tags, definite lengths, nothing after the map) and says "don't know" (false) for
 * everything else, valid or not; the caller then decodes with `decodeSnapshot`, which decides.
 * snapshot-scan.test.ts compares the two.
 */

export interface ScannedSnapshot {
  version: number;
  /** Where the 8 hash bytes and the 8 incarnation bytes start in the scanned buffer. */
  hashAt: number;
  incarnationAt: number;
}

const MAX_FIELDS = 256;
/** "__proto__": a key decodeSnapshot refuses. */
const PROTO = Buffer.from('__proto__');

/**
 * Reads the CBOR head argument (major types 0, 1, 3, 5) at `at` for additional info `ai`: 0..23 inline,
 * 24/25/26 in 1/2/4 bytes. Returns -1 for anything else (8-byte or indefinite) or past `end`.
 */
function arg(b: Uint8Array, at: number, ai: number, end: number): number {
  if (ai < 24) return ai;
  if (ai === 24) return at + 1 < end ? (b[at + 1] ?? 0) : -1;
  if (ai === 25) return at + 2 < end ? ((b[at + 1] ?? 0) << 8) | (b[at + 2] ?? 0) : -1;
  if (ai === 26) return at + 4 < end ? ((b[at + 1] ?? 0) * 0x100_0000 + (((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 8) | (b[at + 4] ?? 0))) : -1;
  return -1;
}

/** Bytes the head takes: 1, 2, 3 or 5 (only called for ai < 27). */
const headLength = (ai: number): number => (ai < 24 ? 1 : ai === 24 ? 2 : ai === 25 ? 3 : 5);

/** ASCII text at [from, to); false for any byte >= 0x80 (left to the full decoder). */
function ascii(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if ((b[i] ?? 0) >= 0x80) return false;
  return true;
}

function isProto(b: Uint8Array, from: number, to: number): boolean {
  if (to - from !== PROTO.length) return false;
  for (let i = 0; i < PROTO.length; i++) if (b[from + i] !== PROTO[i]) return false;
  return true;
}

/** A config key (CONFIG_KEY_PATTERN in snapshot.ts: `[A-Za-z_][A-Za-z0-9_-]{0,63}`), not `__proto__`. */
function configKey(b: Uint8Array, from: number, to: number): boolean {
  const n = to - from;
  if (n < 1 || n > 64 || isProto(b, from, to)) return false;
  for (let i = from; i < to; i++) {
    const c = b[i] ?? 0;
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
    if (!letter && (i === from || !((c >= 0x30 && c <= 0x39) || c === 0x2d))) return false;
  }
  return true;
}

/**
 * True, with `out` filled, when `b[start, end)` is a snapshot in the hub's layout that decodeSnapshot
 * accepts with this version, hash and incarnation; false when it cannot tell (decode it then).
 */
export function scanSnapshot(b: Uint8Array, start: number, end: number, out: ScannedSnapshot): boolean {
  let at = start;
  // a5 00 01 01: map(5), 0: protocol 1, 1: version
  if (end - at < 4 + 1 + 10 + 2 + 10 || b[at] !== 0xa5 || b[at + 1] !== 0x00 || b[at + 2] !== 0x01 || b[at + 3] !== 0x01) return false;
  at += 4;
  const vh = b[at] ?? 0xff;
  if (vh >> 5 !== 0) return false;
  const version = arg(b, at, vh & 0x1f, end);
  if (version < 0) return false;
  at += headLength(vh & 0x1f);
  // 02 48 <8>: 2: hash, bytes(8)
  if (at + 10 > end || b[at] !== 0x02 || b[at + 1] !== 0x48) return false;
  const hashAt = at + 2;
  at += 10;
  // 03 map(n): 3: values
  if (at + 1 >= end || b[at] !== 0x03) return false;
  at++;
  const mh = b[at] ?? 0xff;
  if (mh >> 5 !== 5) return false;
  const fields = arg(b, at, mh & 0x1f, end);
  if (fields < 0 || fields > MAX_FIELDS) return false;
  at += headLength(mh & 0x1f);
  for (let i = 0; i < fields; i++) {
    // key: text
    if (at >= end) return false;
    const kh = b[at] ?? 0xff;
    if (kh >> 5 !== 3) return false;
    const klen = arg(b, at, kh & 0x1f, end);
    if (klen < 0) return false;
    at += headLength(kh & 0x1f);
    if (at + klen > end || !configKey(b, at, at + klen)) return false;
    at += klen;
    // value: integer, text, boolean or finite float
    if (at >= end) return false;
    const h = b[at] ?? 0xff;
    const major = h >> 5;
    const ai = h & 0x1f;
    if (major === 0 || major === 1) {
      if (arg(b, at, ai, end) < 0) return false;
      at += headLength(ai);
    } else if (major === 3) {
      const len = arg(b, at, ai, end);
      if (len < 0) return false;
      at += headLength(ai);
      if (at + len > end || !ascii(b, at, at + len)) return false;
      at += len;
    } else if (major === 7) {
      if (ai === 20 || ai === 21) at += 1; // false, true
      else if (ai === 25) {
        if (at + 3 > end || ((b[at + 1] ?? 0) & 0x7c) === 0x7c) return false; // half: exponent all ones is Inf/NaN
        at += 3;
      } else if (ai === 26) {
        if (at + 5 > end || ((((b[at + 1] ?? 0) & 0x7f) << 1) | ((b[at + 2] ?? 0) >> 7)) === 0xff) return false;
        at += 5;
      } else if (ai === 27) {
        if (at + 9 > end || ((((b[at + 1] ?? 0) & 0x7f) << 4) | ((b[at + 2] ?? 0) >> 4)) === 0x7ff) return false;
        at += 9;
      } else return false;
    } else return false;
  }
  // 04 48 <8>: 4: incarnation, bytes(8), and nothing after it
  if (at + 10 !== end || b[at] !== 0x04 || b[at + 1] !== 0x48) return false;
  out.version = version;
  out.hashAt = hashAt;
  out.incarnationAt = at + 2;
  return true;
}
