import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeDeterministic } from './cbor.ts';
import type { CborValue } from './cbor.ts';
import {
  AckKey,
  AckStatus,
  MAX_ACK_MESSAGE,
  MAX_TELEMETRY_ENTRIES,
  PayloadDecodeError,
  decodeAck,
  decodeAckGeneral,
  decodeTelemetry,
  encodeAck,
  encodeTelemetry,
  scanAck,
} from './ack.ts';
import type { Ack } from './ack.ts';
import type { ConfigValue } from './snapshot.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

const HASH = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
const INCARNATION = Uint8Array.of(0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8);

/** A map with the given entries, encoded deterministically as a device might. */
function ackBytes(entries: ReadonlyArray<readonly [number | string, CborValue]>): Uint8Array {
  return encodeDeterministic(new Map<number | string, CborValue>(entries));
}

function assertRefused(bytes: Uint8Array, pattern: RegExp, what: string): void {
  assert.throws(
    () => decodeAck(bytes),
    (err: unknown) => {
      assert.ok(err instanceof PayloadDecodeError, `${what}: expected PayloadDecodeError, got ${String(err)}`);
      assert.equal(err.code, 'HENGE_E_PAYLOAD_DECODE');
      assert.match(err.message, pattern, what);
      return true;
    },
    what,
  );
}

// ---------------------------------------------------------------------------------------------
// Ack: round trips and a byte fixture
// ---------------------------------------------------------------------------------------------

test('ack - round trip with only the required fields', () => {
  for (const status of [AckStatus.Applied, AckStatus.Rejected, AckStatus.Failed, AckStatus.Reverted]) {
    const ack: Ack = { version: 42, status };
    const back = decodeAck(encodeAck(ack));
    assert.deepEqual(back, ack);
    assert.equal('message' in back, false);
    assert.equal('hash' in back, false);
    assert.equal('incarnation' in back, false);
  }
});

test('ack - round trip with every optional field', () => {
  const ack: Ack = { version: 7, status: AckStatus.Failed, message: 'apply failed: ümlaut', hash: HASH, incarnation: INCARNATION };
  const back = decodeAck(encodeAck(ack));
  assert.deepEqual(back, ack);
  // Byte strings come back as plain Uint8Arrays that do not alias the input buffer.
  assert.equal(Object.getPrototypeOf(back.hash), Uint8Array.prototype);
  assert.equal(Object.getPrototypeOf(back.incarnation), Uint8Array.prototype);
});

test('ack - round trip with each optional field alone', () => {
  const cases: Ack[] = [
    { version: 1, status: AckStatus.Rejected, message: '' },
    { version: 1, status: AckStatus.Applied, hash: HASH },
    { version: 1, status: AckStatus.Reverted, incarnation: INCARNATION },
  ];
  for (const ack of cases) assert.deepEqual(decodeAck(encodeAck(ack)), ack);
});

test('ack - large versions round trip, up to 2^53 - 1', () => {
  for (const version of [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    assert.deepEqual(decodeAck(encodeAck({ version, status: AckStatus.Applied })), { version, status: AckStatus.Applied });
  }
});

test('ack - pinned bytes for an ack with every field (docs/protocol.md, "Ack")', () => {
  // Worked by hand from the table: keys 1..5 are unsigned, sorted ascending.
  const expected = [
    'a5', //                       map(5)
    '01 07', //                    1 version: 7
    '02 02', //                    2 status: 2 (failed)
    '03 62 6f6b', //               3 message: text(2) "ok"
    '04 48 0102030405060708', //   4 hash: bytes(8)
    '05 48 a1a2a3a4a5a6a7a8', //   5 incarnation: bytes(8)
  ].join('');
  const ack: Ack = { version: 7, status: AckStatus.Failed, message: 'ok', hash: HASH, incarnation: INCARNATION };
  assert.equal(hex(encodeAck(ack)), expected.replace(/\s+/g, ''));
  assert.deepEqual(decodeAck(unhex(expected)), ack);
});

test('ack - pinned bytes for a minimal ack with a two-byte version', () => {
  // a2 map(2), 01 19 012c version 300 (uint16 head), 02 00 status 0
  assert.equal(hex(encodeAck({ version: 300, status: AckStatus.Applied })), 'a20119012c0200');
  assert.deepEqual(decodeAck(unhex('a20119012c0200')), { version: 300, status: AckStatus.Applied });
});

test('ack - key numbers match the protocol table', () => {
  assert.deepEqual({ ...AckKey }, { version: 1, status: 2, message: 3, hash: 4, incarnation: 5 });
  assert.deepEqual({ ...AckStatus }, { Applied: 0, Rejected: 1, Failed: 2, Reverted: 3 });
});

test('ack - a non-deterministic but valid encoding from a device is accepted', () => {
  // Keys out of order, version in a needlessly long uint32 head, hash first.
  const bytes = unhex('a3 04 48 0102030405060708 02 01 01 1a00000009');
  assert.deepEqual(decodeAck(bytes), { version: 9, status: AckStatus.Rejected, hash: HASH });
});

test('ack - encodeAck keeps an ASCII message to 256 bytes', () => {
  const back = decodeAck(encodeAck({ version: 1, status: AckStatus.Failed, message: 'x'.repeat(300) }));
  assert.equal(back.message, 'x'.repeat(MAX_ACK_MESSAGE));
});

// ---------------------------------------------------------------------------------------------
// Ack: what decodeAck refuses
// ---------------------------------------------------------------------------------------------

test('ack - bytes that are not CBOR are refused', () => {
  for (const h of ['', 'ff', '1c', 'a201', 'a1 01', '5f', '780361']) {
    assertRefused(unhex(h), /not valid CBOR/, `bytes ${JSON.stringify(h)}`);
  }
});

test('ack - trailing bytes after the map are refused', () => {
  assertRefused(unhex('a2 01 07 02 00 00'), /not valid CBOR/, 'one extra byte');
});

test('ack - a CBOR item that is not a map is refused', () => {
  for (const value of [[7, 0], 7, 'ack', null, true, Uint8Array.of(1)] satisfies CborValue[]) {
    assertRefused(encodeDeterministic(value), /must be a CBOR map/, `value ${JSON.stringify(value)}`);
  }
});

test('ack - a missing version is refused', () => {
  assertRefused(ackBytes([[AckKey.status, 0]]), /version/, 'no version');
  assertRefused(ackBytes([]), /version/, 'empty map');
});

test('ack - a negative version is refused', () => {
  assertRefused(ackBytes([[AckKey.version, -1], [AckKey.status, 0]]), /version/, 'version -1');
  assertRefused(unhex('a2 01 3b0000000000000000 02 00'), /version/, 'version -1 in a 64-bit head');
});

test('ack - a version that is not an integer is refused', () => {
  const bad: CborValue[] = [1.5, '7', true, null, Uint8Array.of(7), [7], Number.POSITIVE_INFINITY, Number.NaN];
  for (const v of bad) {
    assertRefused(ackBytes([[AckKey.version, v], [AckKey.status, 0]]), /version/, `version ${String(v)}`);
  }
});

test('ack - a version beyond 2^53 - 1 is refused', () => {
  assertRefused(unhex('a2 01 1b0020000000000000 02 00'), /version/, 'version 2^53');
  assertRefused(unhex('a2 01 1bffffffffffffffff 02 00'), /version/, 'version 2^64 - 1');
});

test('ack - a status outside 0..3 is refused', () => {
  for (const status of [4, 5, 255, -1] as const) {
    assertRefused(ackBytes([[AckKey.version, 1], [AckKey.status, status]]), /status/, `status ${status}`);
  }
});

test('ack - a missing or non-integer status is refused', () => {
  assertRefused(ackBytes([[AckKey.version, 1]]), /status/, 'no status');
  for (const v of [0.5, '0', false, null] satisfies CborValue[]) {
    assertRefused(ackBytes([[AckKey.version, 1], [AckKey.status, v]]), /status/, `status ${String(v)}`);
  }
});

test('ack - a message of exactly 256 UTF-8 bytes is accepted, 257 is refused', () => {
  const ascii = 'm'.repeat(256);
  assert.equal(decodeAck(ackBytes([[1, 1], [2, 1], [3, ascii]])).message, ascii);
  assertRefused(ackBytes([[1, 1], [2, 1], [3, `${ascii}m`]]), /message/, '257 ASCII bytes');
});

test('ack - the message limit counts UTF-8 bytes, not characters', () => {
  const fits = 'é'.repeat(128); // 256 bytes
  assert.equal(Buffer.byteLength(fits), 256);
  assert.equal(decodeAck(ackBytes([[1, 1], [2, 1], [3, fits]])).message, fits);
  const over = 'é'.repeat(129); // 129 characters, 258 bytes
  assertRefused(ackBytes([[1, 1], [2, 1], [3, over]]), /message/, '129 two-byte characters');
  assertRefused(ackBytes([[1, 1], [2, 1], [3, '€'.repeat(86)]]), /message/, '86 three-byte characters');
});

test('ack - a message that is not text is refused', () => {
  for (const v of [Uint8Array.of(0x6f, 0x6b), 3, true, null, ['ok']] satisfies CborValue[]) {
    assertRefused(ackBytes([[1, 1], [2, 1], [3, v]]), /message/, `message ${String(v)}`);
  }
});

test('ack - a hash of the wrong length or type is refused', () => {
  for (const v of [new Uint8Array(0), new Uint8Array(7), new Uint8Array(9), new Uint8Array(32), '0102030405060708', 1] satisfies CborValue[]) {
    assertRefused(ackBytes([[1, 1], [2, 0], [4, v]]), /hash/, `hash ${String(v)}`);
  }
});

test('ack - an incarnation of the wrong length or type is refused', () => {
  for (const v of [new Uint8Array(0), new Uint8Array(7), new Uint8Array(9), 'a1a2a3a4a5a6a7a8', [1]] satisfies CborValue[]) {
    assertRefused(ackBytes([[1, 1], [2, 0], [5, v]]), /incarnation/, `incarnation ${String(v)}`);
  }
});

test('ack - unknown map keys are ignored (clients MUST ignore unknown keys)', () => {
  const bytes = ackBytes([
    [0, 'protocol?'],
    [AckKey.version, 3],
    [AckKey.status, AckStatus.Reverted],
    [6, new Map<string, CborValue>([['nested', [1, 2]]])],
    [99, null],
    ['note', 'from a newer firmware'],
  ]);
  assert.deepEqual(decodeAck(bytes), { version: 3, status: AckStatus.Reverted });
});

// ---------------------------------------------------------------------------------------------
// Telemetry
// ---------------------------------------------------------------------------------------------

function assertTelemetryRefused(bytes: Uint8Array, pattern: RegExp, what: string): void {
  assert.throws(
    () => decodeTelemetry(bytes),
    (err: unknown) => {
      assert.ok(err instanceof PayloadDecodeError, `${what}: expected PayloadDecodeError, got ${String(err)}`);
      assert.match(err.message, pattern, what);
      return true;
    },
    what,
  );
}

const telemetryBytes = (entries: ReadonlyArray<readonly [number | string, CborValue]>): Uint8Array =>
  encodeDeterministic(new Map<number | string, CborValue>(entries));

test('telemetry - a map of scalars is accepted', () => {
  const bytes = telemetryBytes([
    ['_agent', 'henge-fw 1.2.0'],
    ['temp', 21.5],
    ['rssi', -67],
    ['uptime', 86400],
    ['relay_on', true],
    ['door-open', false],
    ['big', 2 ** 40],
    ['tiny', 1e-300],
  ]);
  const t = decodeTelemetry(bytes);
  assert.deepEqual(t, {
    _agent: 'henge-fw 1.2.0',
    temp: 21.5,
    rssi: -67,
    uptime: 86400,
    relay_on: true,
    'door-open': false,
    big: 2 ** 40,
    tiny: 1e-300,
  });
  assert.equal(Object.getPrototypeOf(t), Object.prototype);
});

test('telemetry - an empty map is accepted', () => {
  assert.deepEqual(decodeTelemetry(unhex('a0')), {});
});

test('telemetry - an unsigned integer in a 64-bit head within 2^53 is accepted', () => {
  assert.deepEqual(decodeTelemetry(unhex('a1 61 6e 1b0000000000000005')), { n: 5 });
});

test('telemetry - encodeTelemetry round trip', () => {
  const values: Record<string, ConfigValue> = { b: 'x', a: 1, zz: -2.25, ok: true, off: false, count: 4294967296, name: 'Küche' };
  const bytes = encodeTelemetry(values);
  assert.deepEqual(decodeTelemetry(bytes), values);
  // Deterministic: key order does not change the bytes.
  const reordered: Record<string, ConfigValue> = {};
  for (const k of Object.keys(values).reverse()) reordered[k] = values[k] ?? 0;
  assert.equal(hex(encodeTelemetry(reordered)), hex(bytes));
});

test('telemetry - exactly 64 entries are accepted, 65 are refused', () => {
  const entries = (n: number): Array<[string, number]> => Array.from({ length: n }, (_, i) => [`k${i}`, i]);
  assert.equal(Object.keys(decodeTelemetry(telemetryBytes(entries(MAX_TELEMETRY_ENTRIES)))).length, 64);
  assertTelemetryRefused(telemetryBytes(entries(MAX_TELEMETRY_ENTRIES + 1)), /more than 64/, '65 entries');
});

test('telemetry - a payload that is not a CBOR map is refused', () => {
  assertTelemetryRefused(unhex('ff'), /not valid CBOR/, 'break byte');
  assertTelemetryRefused(encodeDeterministic([['temp', 1]]), /must be a CBOR map/, 'array of pairs');
  assertTelemetryRefused(encodeDeterministic('temp'), /must be a CBOR map/, 'text');
});

test('telemetry - non-text keys are refused', () => {
  assertTelemetryRefused(telemetryBytes([[1, 2]]), /not a valid key/, 'integer key');
  assertTelemetryRefused(unhex('a1 41 61 01'), /not a valid key/, 'byte-string key');
  assertTelemetryRefused(unhex('a1 f5 01'), /not a valid key/, 'boolean key');
  assertTelemetryRefused(unhex('a1 f6 01'), /not a valid key/, 'null key');
});

test('telemetry - keys outside the config-key syntax are refused', () => {
  for (const key of ['', '1abc', '-a', 'a.b', 'a b', 'temp°', 'a/b', 'k'.repeat(65)]) {
    assertTelemetryRefused(telemetryBytes([[key, 1]]), /not a valid key/, `key ${JSON.stringify(key)}`);
  }
  // The longest valid key is 64 characters.
  const longest = 'k'.repeat(64);
  assert.deepEqual(decodeTelemetry(telemetryBytes([[longest, 1]])), { [longest]: 1 });
});

test('telemetry - the key __proto__ is refused and pollutes nothing', () => {
  assertTelemetryRefused(telemetryBytes([['__proto__', 1]]), /not a valid key/, '__proto__');
  assertTelemetryRefused(telemetryBytes([['a', 1], ['__proto__', 'x']]), /not a valid key/, '__proto__ after a good key');
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'a'), false);
});

test('telemetry - nested maps and arrays are refused', () => {
  const nested: CborValue[] = [new Map<string, CborValue>([['x', 1]]), { x: 1 }, [1, 2], []];
  for (const v of nested) {
    assertTelemetryRefused(telemetryBytes([['v', v]]), /must be a scalar/, `value ${JSON.stringify(v)}`);
  }
});

test('telemetry - null and byte strings are not scalars here', () => {
  assertTelemetryRefused(telemetryBytes([['v', null]]), /must be a scalar/, 'null');
  assertTelemetryRefused(telemetryBytes([['v', Uint8Array.of(1)]]), /must be a scalar/, 'bytes');
});

test('telemetry - non-finite numbers are refused', () => {
  for (const h of ['f97c00', 'f9fc00', 'f97e00', 'fa7f800000', 'fb7ff8000000000000']) {
    assertTelemetryRefused(unhex(`a1 61 76 ${h}`), /must be a scalar/, `float ${h}`);
  }
});

test('telemetry - an unsigned integer beyond 2^53 - 1 is refused', () => {
  assertTelemetryRefused(unhex('a1 61 76 1bffffffffffffffff'), /must be a scalar/, '2^64 - 1');
});

test('ack - a long message is cut to 256 UTF-8 bytes without splitting a character, and decodes', () => {
  for (const message of ['é'.repeat(200), '😀'.repeat(200), `${'a'.repeat(255)}😀`]) {
    const back = decodeAck(encodeAck({ version: 1, status: AckStatus.Failed, message }));
    assert.ok(Buffer.byteLength(back.message ?? '') <= 256);
    assert.ok(message.startsWith(back.message ?? 'x'));
    assert.ok(!/\uFFFD/.test(back.message ?? ''));
  }
});

test('ack - the in-place scan answers the usual layouts, with the full decoder\'s answer, and leaves the rest to it', () => {
  const usual: Ack[] = [];
  for (const version of [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1]) {
    for (const status of [AckStatus.Applied, AckStatus.Rejected, AckStatus.Failed, AckStatus.Reverted]) {
      usual.push({ version, status }, { version, status, hash: HASH }, { version, status, incarnation: INCARNATION }, { version, status, hash: HASH, incarnation: INCARNATION });
    }
  }
  for (const ack of usual) {
    const bytes = encodeAck(ack);
    const scanned = scanAck(bytes);
    assert.ok(scanned, `scanned ${hex(bytes)}`);
    assert.deepEqual(scanned, decodeAckGeneral(bytes));
    // From a Buffer (a datagram's payload): copies, never views of it.
    const fromBuffer = scanAck(Buffer.from(bytes));
    if (fromBuffer?.hash) assert.equal(Object.getPrototypeOf(fromBuffer.hash), Uint8Array.prototype);
  }
  // Left to the full decoder: a message, 2^32 and more, a repeated key, keys out of range, trailing bytes.
  const others = [
    encodeAck({ version: 1, status: 0, message: 'x' }),
    encodeAck({ version: 2 ** 32, status: 0 }),
    unhex('a3 01 01 02 00 01 02'),
    unhex('a2 01 01 06 00'),
    Uint8Array.of(...encodeAck({ version: 1, status: 0 }), 0),
    unhex('a2 01 01 02 04'),
  ];
  for (const bytes of others) assert.equal(scanAck(bytes), undefined, hex(bytes));
  // Damaged copies: whenever the scan answers, the full decoder accepts the same bytes with the same ack.
  let seed = 7;
  const rand = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (const ack of usual) {
    const good = encodeAck(ack);
    for (let k = 0; k < 40; k++) {
      const bad = Uint8Array.from(good);
      bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? bad.subarray(0, Math.floor(rand() * bad.length)) : bad;
      const scanned = scanAck(cut);
      if (scanned) assert.deepEqual(scanned, decodeAckGeneral(cut), hex(cut));
    }
  }
});
