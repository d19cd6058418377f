import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { encodeDeterministic } from './cbor.ts';
import type { CborValue } from './cbor.ts';
import {
  HASH_BYTES,
  INCARNATION_BYTES,
  PROTOCOL_VERSION,
  SnapshotDecodeError,
  SnapshotKey,
  buildSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  encodeValues,
  hashValues,
  prepareValues,
} from './snapshot.ts';
import type { ConfigValues } from './snapshot.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const INCARNATION = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
const HASH = Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11);

function sha256First8(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, HASH_BYTES * 2);
}

/** An envelope with every field valid, to be spoiled one key at a time. */
function envelope(overrides: ReadonlyArray<readonly [number, CborValue | undefined]> = []): Uint8Array {
  const m = new Map<number, CborValue>([
    [SnapshotKey.protocol, PROTOCOL_VERSION],
    [SnapshotKey.version, 3],
    [SnapshotKey.hash, HASH],
    [SnapshotKey.values, { a: 1 }],
    [SnapshotKey.incarnation, INCARNATION],
  ]);
  for (const [k, v] of overrides) {
    if (v === undefined) m.delete(k);
    else m.set(k, v);
  }
  return encodeDeterministic(m);
}

function rejects(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => decodeSnapshot(bytes),
    (e: unknown) => {
      assert.ok(e instanceof SnapshotDecodeError, `expected SnapshotDecodeError, got ${String(e)}`);
      assert.equal(e.code, 'HENGE_E_SNAPSHOT_DECODE');
      assert.match(e.message, message);
      return true;
    },
  );
}

test('snapshot - envelope constants match the protocol', () => {
  assert.equal(PROTOCOL_VERSION, 1);
  assert.deepEqual({ ...SnapshotKey }, { protocol: 0, version: 1, hash: 2, values: 3, incarnation: 4 });
  assert.equal(HASH_BYTES, 8);
  assert.equal(INCARNATION_BYTES, 8);
});

test('snapshot - buildSnapshot then decodeSnapshot gives the snapshot back', () => {
  const values: ConfigValues = { mode: 'eco', on: true, t: 21.5, n: -3, big: 4294967295, ratio: 0.1, empty: '', emoji: '🌡️' };
  const { snapshot, bytes } = buildSnapshot(42, values, INCARNATION);
  assert.equal(snapshot.version, 42);
  assert.equal(snapshot.values, values);
  assert.deepEqual(snapshot.incarnation, INCARNATION);
  const decoded = decodeSnapshot(bytes);
  assert.deepStrictEqual(decoded, {
    version: 42,
    hash: snapshot.hash,
    values: { ...values },
    incarnation: INCARNATION,
  });
});

test('snapshot - decodeSnapshot of an empty config gives an empty values map', () => {
  const { snapshot, bytes } = buildSnapshot(0, {}, INCARNATION);
  assert.deepStrictEqual(decodeSnapshot(bytes), { version: 0, hash: snapshot.hash, values: {}, incarnation: INCARNATION });
});

test('snapshot - encodeSnapshot gives the same bytes as buildSnapshot', () => {
  const values: ConfigValues = { b: 'two', a: 1, c: false };
  const { snapshot, bytes } = buildSnapshot(9, values, INCARNATION);
  assert.equal(hex(encodeSnapshot(snapshot)), hex(bytes));
  assert.deepStrictEqual(decodeSnapshot(encodeSnapshot(snapshot)), decodeSnapshot(bytes));
});

test('snapshot - buildSnapshot with prepared values gives the same bytes as without', () => {
  const values: ConfigValues = { x: 1, y: 'z' };
  const prepared = prepareValues(values);
  assert.equal(hex(buildSnapshot(5, values, INCARNATION, prepared).bytes), hex(buildSnapshot(5, values, INCARNATION).bytes));
  assert.equal(hex(prepared.encoded), hex(encodeValues(values)));
  assert.equal(hex(prepared.hash), hex(hashValues(prepared.encoded)));
});

test('snapshot - hash is the first 8 bytes of SHA-256 over the deterministic CBOR of the values', () => {
  for (const values of [{}, { a: 1 }, { mode: 'eco', on: true, t: 21.5, n: -3 }] as ConfigValues[]) {
    const { snapshot } = buildSnapshot(1, values, INCARNATION);
    assert.equal(snapshot.hash.length, HASH_BYTES);
    assert.equal(hex(snapshot.hash), sha256First8(encodeDeterministic(values)));
    assert.equal(hex(hashValues(encodeValues(values))), hex(snapshot.hash));
  }
  // Pinned: sha256(a0) = c19a797fa1fd590c...
  assert.equal(hex(buildSnapshot(1, {}, INCARNATION).snapshot.hash), 'c19a797fa1fd590c');
});

test('snapshot - hash does not depend on version or incarnation', () => {
  const values: ConfigValues = { a: 1 };
  const one = buildSnapshot(1, values, INCARNATION).snapshot.hash;
  const other = buildSnapshot(999, values, new Uint8Array(8)).snapshot.hash;
  assert.equal(hex(one), hex(other));
});

test('snapshot - different values give a different hash', () => {
  const h = (values: ConfigValues): string => hex(buildSnapshot(1, values, INCARNATION).snapshot.hash);
  assert.notEqual(h({ a: 1 }), h({ a: 2 }));
  assert.notEqual(h({ a: 1 }), h({ a: '1' }));
  assert.notEqual(h({ a: 1 }), h({ a: 1.5 }));
  assert.notEqual(h({ a: true }), h({ a: 1 }));
  assert.notEqual(h({ a: 1 }), h({ b: 1 }));
  assert.notEqual(h({ a: 1 }), h({ a: 1, b: 1 }));
});

test('snapshot - the same values in a different key order give the same hash and bytes', () => {
  const a = buildSnapshot(7, { mode: 'eco', on: true, t: 21.5, n: -3 }, INCARNATION);
  const b = buildSnapshot(7, { n: -3, t: 21.5, on: true, mode: 'eco' }, INCARNATION);
  assert.equal(hex(a.snapshot.hash), hex(b.snapshot.hash));
  assert.equal(hex(a.bytes), hex(b.bytes));
  assert.equal(hex(encodeSnapshot(b.snapshot)), hex(a.bytes));
});

test('snapshot - wire bytes of a small snapshot are pinned', () => {
  const { snapshot, bytes } = buildSnapshot(7, { mode: 'eco', on: true, t: 21.5, n: -3 }, INCARNATION);
  // a5                        map, 5 pairs
  // 00 01                     0 protocol    -> 1
  // 01 07                     1 version     -> 7
  // 02 48 adf5e8c8eb6b8647    2 hash        -> 8-byte string (sha256 of the values map below, truncated)
  // 03 a4                     3 values      -> map, 4 pairs, keys in bytewise order of their encodings:
  //    61 6e 22                  "n"    -> -3
  //    61 74 f9 4d60             "t"    -> 21.5 (half)
  //    62 6f6e f5                "on"   -> true
  //    64 6d6f6465 63 65636f     "mode" -> "eco"
  // 04 48 0102030405060708    4 incarnation -> 8-byte string
  const values = 'a4' + '616e22' + '6174f94d60' + '626f6ef5' + '646d6f6465' + '6365636f';
  assert.equal(hex(encodeValues(snapshot.values)), values);
  assert.equal(hex(snapshot.hash), 'adf5e8c8eb6b8647');
  assert.equal(hex(bytes), 'a5' + '0001' + '0107' + '0248adf5e8c8eb6b8647' + '03' + values + '04480102030405060708');
});

test('snapshot - the envelope uses integer keys and 1-byte heads for small versions', () => {
  const { bytes } = buildSnapshot(24, {}, INCARNATION);
  assert.equal(hex(bytes), 'a5' + '0001' + '011818' + '0248c19a797fa1fd590c' + '03a0' + '04480102030405060708');
});

// --- rejections -------------------------------------------------------------------------------

test('snapshot - decodeSnapshot rejects bytes that are not CBOR', () => {
  rejects(new Uint8Array(0), /not valid CBOR/);
  rejects(Uint8Array.of(0x1c), /not valid CBOR/); // reserved additional information
  rejects(Uint8Array.of(0xa5, 0x00), /not valid CBOR/); // truncated map
  rejects(Uint8Array.of(0xff), /not valid CBOR/); // lone break
  const good = buildSnapshot(1, {}, INCARNATION).bytes;
  const trailing = new Uint8Array(good.length + 1);
  trailing.set(good);
  rejects(trailing, /not valid CBOR/); // a valid snapshot followed by another item
});

test('snapshot - decodeSnapshot rejects a CBOR item that is not a map', () => {
  rejects(encodeDeterministic(1), /must be a CBOR map/);
  rejects(encodeDeterministic('snapshot'), /must be a CBOR map/);
  rejects(encodeDeterministic(null), /must be a CBOR map/);
  rejects(encodeDeterministic(true), /must be a CBOR map/);
});

test('snapshot - decodeSnapshot rejects a wrong or missing protocol version', () => {
  rejects(envelope([[SnapshotKey.protocol, 2]]), /unsupported protocol version 2/);
  rejects(envelope([[SnapshotKey.protocol, 0]]), /unsupported protocol version 0/);
  rejects(envelope([[SnapshotKey.protocol, '1']]), /unsupported protocol version/);
  rejects(envelope([[SnapshotKey.protocol, undefined]]), /unsupported protocol version undefined/);
});

test('snapshot - decodeSnapshot rejects a negative, fractional, missing or non-number version', () => {
  rejects(envelope([[SnapshotKey.version, -1]]), /version must be an unsigned integer/);
  rejects(envelope([[SnapshotKey.version, 1.5]]), /version must be an unsigned integer/);
  rejects(envelope([[SnapshotKey.version, Number.NaN]]), /version must be an unsigned integer/);
  rejects(envelope([[SnapshotKey.version, '3']]), /version must be an unsigned integer/);
  rejects(envelope([[SnapshotKey.version, undefined]]), /version must be an unsigned integer/);
});

test('snapshot - decodeSnapshot accepts version 0 and the largest 32-bit version', () => {
  assert.equal(decodeSnapshot(envelope([[SnapshotKey.version, 0]])).version, 0);
  assert.equal(decodeSnapshot(envelope([[SnapshotKey.version, 0xffffffff]])).version, 0xffffffff);
});

test('snapshot - decodeSnapshot rejects a hash that is not an 8-byte string', () => {
  rejects(envelope([[SnapshotKey.hash, new Uint8Array(7)]]), /hash must be a 8-byte string/);
  rejects(envelope([[SnapshotKey.hash, new Uint8Array(9)]]), /hash must be a 8-byte string/);
  rejects(envelope([[SnapshotKey.hash, new Uint8Array(32)]]), /hash must be a 8-byte string/);
  rejects(envelope([[SnapshotKey.hash, 'aabbccddeeff0011']]), /hash must be a 8-byte string/);
  rejects(envelope([[SnapshotKey.hash, [1, 2, 3, 4, 5, 6, 7, 8]]]), /hash must be a 8-byte string/);
  rejects(envelope([[SnapshotKey.hash, undefined]]), /hash must be a 8-byte string/);
});

test('snapshot - decodeSnapshot rejects an incarnation that is not an 8-byte string', () => {
  rejects(envelope([[SnapshotKey.incarnation, new Uint8Array(4)]]), /incarnation must be a 8-byte string/);
  rejects(envelope([[SnapshotKey.incarnation, 12345678]]), /incarnation must be a 8-byte string/);
  rejects(envelope([[SnapshotKey.incarnation, undefined]]), /incarnation must be a 8-byte string/);
});

test('snapshot - decodeSnapshot rejects values that are missing or not a map', () => {
  rejects(envelope([[SnapshotKey.values, undefined]]), /values must be a map/);
  rejects(envelope([[SnapshotKey.values, null]]), /values must be a map/);
  rejects(envelope([[SnapshotKey.values, 'a=1']]), /values must be a map/);
  rejects(envelope([[SnapshotKey.values, 5]]), /values must be a map/);
});

test('snapshot - decodeSnapshot rejects config values that are not scalars', () => {
  rejects(envelope([[SnapshotKey.values, { a: { nested: 1 } }]]), /value a is not a scalar/);
  rejects(envelope([[SnapshotKey.values, { a: [1, 2] }]]), /value a is not a scalar/);
  rejects(envelope([[SnapshotKey.values, { a: null }]]), /value a is not a scalar/);
  rejects(envelope([[SnapshotKey.values, { ok: 1, b: Uint8Array.of(1) }]]), /value b is not a scalar/);
  rejects(envelope([[SnapshotKey.values, { a: Number.NaN }]]), /value a is not a scalar/);
  rejects(envelope([[SnapshotKey.values, { a: Number.POSITIVE_INFINITY }]]), /value a is not a scalar/);
});

test('snapshot - decodeSnapshot ignores envelope keys it does not know', () => {
  const bytes = envelope([[9, 'future']]);
  assert.deepStrictEqual(decodeSnapshot(bytes), { version: 3, hash: HASH, values: { a: 1 }, incarnation: INCARNATION });
});

test('snapshot - decoded hash and incarnation are plain copies, not views into the input', () => {
  const { bytes } = buildSnapshot(1, { a: 1 }, INCARNATION);
  const decoded = decodeSnapshot(bytes);
  assert.equal(Object.getPrototypeOf(decoded.hash), Uint8Array.prototype);
  assert.equal(Object.getPrototypeOf(decoded.incarnation), Uint8Array.prototype);
  bytes.fill(0);
  assert.deepEqual(decoded.incarnation, INCARNATION);
});

test('snapshot - integers beyond 32 bits survive a round trip (version and values)', () => {
  const built = buildSnapshot(2 ** 32, { big: 2 ** 32, neg: -(2 ** 32) - 1, max: Number.MAX_SAFE_INTEGER }, INCARNATION);
  const back = decodeSnapshot(built.bytes);
  assert.equal(back.version, 2 ** 32);
  assert.deepEqual(back.values, { big: 2 ** 32, neg: -(2 ** 32) - 1, max: Number.MAX_SAFE_INTEGER });
});

test('snapshot - decode refuses shapes that only look like maps', () => {
  const envelope = (values: CborValue): Uint8Array =>
    encodeDeterministic(new Map<number, CborValue>([[0, 1], [1, 5], [2, HASH], [3, values], [4, INCARNATION]]));
  const cases: Array<[string, Uint8Array]> = [
    ['an array envelope', encodeDeterministic([1, 5, HASH, {}, INCARNATION])],
    ['text envelope keys', encodeDeterministic({ '0': 1, '1': 5, '2': HASH, '3': {}, '4': INCARNATION })],
    ['values as an array', envelope(['a', 'b'])],
    ['values as bytes', envelope(Uint8Array.of(1, 2))],
    ['values with an integer key', envelope(new Map<number, CborValue>([[5, 'x']]))],
    ['a key starting with a digit', envelope({ '1a': 1 })],
    ['a key with a dot', envelope({ 'a.b': 1 })],
    ['a key longer than 64', envelope({ [`k${'x'.repeat(64)}`]: 1 })],
    ['an empty key', envelope({ '': 1 })],
  ];
  for (const [what, bytes] of cases) assert.throws(() => decodeSnapshot(bytes), SnapshotDecodeError, what);
});
