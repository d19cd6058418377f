import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CoapParseError,
  ContentFormat,
  MAX_BLOCK_SIZE,
  MAX_BLOCK_SZX,
  blockOption,
  blockSize,
  emptyMessageKind,
  encodeMessage,
  generateMessage,
  MessageKind,
  OptionNumber,
  isCritical,
  messageIdOf,
  option,
  options,
  parseMessage,
  readBlock,
  readUint,
  uintOption,
  uriPath,
  uriQuery,
} from './coap.ts';
import type { Block } from './coap.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

// ---------------------------------------------------------------------------------------------
// Unsigned integer options (RFC 7252 §3.2 "uint")
// ---------------------------------------------------------------------------------------------

test('coap - uintOption writes the shortest big-endian form, 0 as the empty value', () => {
  const fixtures: ReadonlyArray<readonly [number, string]> = [
    [0, ''],
    [1, '01'],
    [60, '3c'],
    [255, 'ff'],
    [256, '0100'],
    [65535, 'ffff'],
    [65536, '010000'],
    [2 ** 24 - 1, 'ffffff'],
    [2 ** 24, '01000000'],
    [2 ** 32 - 1, 'ffffffff'],
  ];
  for (const [n, expected] of fixtures) assert.equal(hex(uintOption(n)), expected, `uintOption(${n})`);
});

test('coap - uintOption and readUint round trip', () => {
  for (const n of [0, 1, 255, 256, 65535, 65536, 2 ** 24 - 1, 2 ** 24, 2 ** 32 - 1, 2 ** 32 + 7]) {
    assert.equal(readUint(uintOption(n)), n, `round trip of ${n}`);
  }
});

test('coap - readUint reads the empty value as 0 and accepts leading zero bytes', () => {
  assert.equal(readUint(Buffer.alloc(0)), 0);
  assert.equal(readUint(unhex('00')), 0);
  assert.equal(readUint(unhex('0000ff')), 255);
  assert.equal(readUint(unhex('000100')), 256);
});

// ---------------------------------------------------------------------------------------------
// Block options (RFC 7959 §2.2)
// ---------------------------------------------------------------------------------------------

test('coap - blockSize is 2^(szx + 4), 1024 at the largest SZX henge uses', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map(blockSize),
    [16, 32, 64, 128, 256, 512, 1024],
  );
  assert.equal(blockSize(MAX_BLOCK_SZX), MAX_BLOCK_SIZE);
});

test('coap - readBlock and blockOption round trip for every SZX, both M flags, small and large NUM', () => {
  for (const num of [0, 1, 15, 16, 4095, 4096, 2 ** 20 - 1]) {
    for (const more of [false, true]) {
      for (let szx = 0; szx <= 6; szx++) {
        const b: Block = { num, more, szx };
        const value = blockOption(b);
        assert.ok(value.length <= 3, `Block option is at most 3 bytes (${JSON.stringify(b)})`);
        assert.deepEqual(readBlock(value), b);
      }
    }
  }
});

test('coap - blockOption pinned values (RFC 7959 §2.2)', () => {
  assert.equal(hex(blockOption({ num: 0, more: false, szx: 0 })), '', 'NUM=0, M=0, SZX=0 is the empty value');
  assert.equal(hex(blockOption({ num: 0, more: true, szx: 6 })), '0e', 'the first block of a henge snapshot');
  assert.equal(hex(blockOption({ num: 1, more: false, szx: 6 })), '16');
  assert.equal(hex(blockOption({ num: 16, more: true, szx: 2 })), '010a');
  assert.equal(hex(blockOption({ num: 2 ** 20 - 1, more: true, szx: 6 })), 'fffffe');
  assert.deepEqual(readBlock(Buffer.alloc(0)), { num: 0, more: false, szx: 0 });
  assert.deepEqual(readBlock(unhex('0e')), { num: 0, more: true, szx: 6 });
  assert.deepEqual(readBlock(unhex('0105')), { num: 16, more: false, szx: 5 });
});

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

test('coap - parseMessage keeps what generateMessage wrote: code, token, message id, options, payload', () => {
  const token = unhex('a1b2c3d4');
  const payload = unhex('a50001');
  const bytes = generateMessage({
    code: 'POST',
    confirmable: true,
    messageId: 0xbeef,
    token,
    options: [
      { name: 'Uri-Path', value: Buffer.from('d') },
      { name: 'Uri-Path', value: Buffer.from('dev-1') },
      { name: 'Uri-Path', value: Buffer.from('a') },
      { name: 'Content-Format', value: uintOption(ContentFormat.Cbor) },
      { name: 'Uri-Query', value: Buffer.from('d=dev-1') },
      { name: 'Uri-Query', value: Buffer.from('flag') },
      { name: 'Uri-Query', value: Buffer.from('expr=a=b') },
    ],
    payload,
  });
  const msg = parseMessage(bytes);
  assert.equal(msg.code, '0.02');
  assert.equal(msg.confirmable, true);
  assert.equal(msg.ack, false);
  assert.equal(msg.reset, false);
  assert.equal(msg.messageId, 0xbeef);
  assert.equal(hex(msg.token), 'a1b2c3d4');
  assert.equal(hex(msg.payload), 'a50001');
  assert.deepEqual(uriPath(msg), ['d', 'dev-1', 'a']);
  assert.deepEqual(uriQuery(msg), new Map([['d', 'dev-1'], ['flag', ''], ['expr', 'a=b']]));
  const cf = option(msg, 'Content-Format');
  assert.ok(cf);
  assert.equal(readUint(cf), 60);
  assert.equal(option(msg, 'ETag'), undefined);
  assert.deepEqual(options(msg, 'ETag'), []);
  assert.equal(options(msg, 'Uri-Path').length, 3);
});

test('coap - a piggybacked 2.05 notification keeps Observe, ETag, Max-Age and Block2', () => {
  const etag = unhex('0102030405060708');
  const bytes = generateMessage({
    code: '2.05',
    ack: true,
    messageId: 1,
    token: unhex('01'),
    options: [
      { name: 'Block2', value: blockOption({ num: 0, more: true, szx: 6 }) },
      { name: 'Max-Age', value: uintOption(60) },
      { name: 'Observe', value: uintOption(2 ** 24 - 1) },
      { name: 'ETag', value: etag },
      { name: 'Content-Format', value: uintOption(ContentFormat.Cbor) },
    ],
    payload: Buffer.alloc(1024, 0x5a),
  });
  const msg = parseMessage(bytes);
  assert.equal(msg.code, '2.05');
  assert.equal(msg.ack, true);
  assert.equal(msg.confirmable, false);
  assert.equal(msg.payload.length, 1024);
  // Options come back in option-number order: ETag 4, Observe 6, Content-Format 12, Max-Age 14, Block2 23.
  assert.deepEqual(
    msg.options.map((o) => o.name),
    ['ETag', 'Observe', 'Content-Format', 'Max-Age', 'Block2'],
  );
  const get = (name: string): Buffer => {
    const v = option(msg, name);
    assert.ok(v, `option ${name}`);
    return v;
  };
  assert.equal(hex(get('ETag')), hex(etag));
  assert.equal(readUint(get('Observe')), 2 ** 24 - 1);
  assert.equal(readUint(get('Max-Age')), 60);
  assert.deepEqual(readBlock(get('Block2')), { num: 0, more: true, szx: 6 });
});

test('coap - an Observe option of 0 travels as an empty value and reads back as 0', () => {
  const msg = parseMessage(
    generateMessage({ code: 'GET', confirmable: true, messageId: 9, token: unhex('ff'), options: [{ name: 'Observe', value: uintOption(0) }] }),
  );
  const obs = option(msg, 'Observe');
  assert.ok(obs);
  assert.equal(obs.length, 0);
  assert.equal(readUint(obs), 0);
  assert.equal(msg.payload.length, 0);
});

test('coap - parseMessage accepts a plain Uint8Array view into a larger buffer', () => {
  const bytes = generateMessage({ code: 'GET', confirmable: true, messageId: 77, token: unhex('0a0b'), options: [{ name: 'Uri-Path', value: Buffer.from('d') }] });
  const backing = new Uint8Array(bytes.length + 10);
  backing.set(bytes, 5);
  const view = backing.subarray(5, 5 + bytes.length);
  const msg = parseMessage(view);
  assert.equal(msg.messageId, 77);
  assert.equal(hex(msg.token), '0a0b');
  assert.deepEqual(uriPath(msg), ['d']);
});

test('coap - an empty message (code 0.00) parses with no options and no payload', () => {
  const msg = parseMessage(unhex('60001234')); // ACK, 0.00, message id 0x1234
  assert.equal(msg.code, '0.00');
  assert.equal(msg.ack, true);
  assert.equal(msg.messageId, 0x1234);
  assert.deepEqual(msg.options, []);
  assert.equal(msg.payload.length, 0);
  const rst = parseMessage(unhex('70000001'));
  assert.equal(rst.reset, true);
});

test('coap - an unknown option number comes back by number', () => {
  const msg = parseMessage(unhex('40 01 0001 d1 ee 07')); // delta 13 + 0xee = 251, length 1
  assert.equal(msg.options.length, 1);
  assert.equal(msg.options[0]?.name, '251');
  assert.equal(hex(msg.options[0]?.value ?? Buffer.alloc(0)), '07');
});

function assertParseError(h: string, what: string): void {
  assert.throws(
    () => parseMessage(unhex(h)),
    (err: unknown) => {
      assert.ok(err instanceof CoapParseError, `${what}: expected CoapParseError, got ${String(err)}`);
      assert.equal(err.code, 'HENGE_E_COAP_PARSE');
      // Structural errors are found by our own check (no cause); the codec's own errors are kept as the cause.
      assert.ok(err.cause === undefined || err.cause instanceof Error, `${what}: a cause, if any, is an Error`);
      return true;
    },
    what,
  );
}

test('coap - parseMessage throws CoapParseError on datagrams shorter than the 4-byte header', () => {
  assertParseError('', 'empty datagram');
  assertParseError('40', 'one byte');
  assertParseError('4001', 'two bytes');
  assertParseError('400100', 'three bytes');
});

test('coap - parseMessage throws CoapParseError on a version other than 1', () => {
  assertParseError('00010001', 'version 0');
  assertParseError('80010001', 'version 2');
  assertParseError('c0010001', 'version 3');
});

test('coap - parseMessage throws CoapParseError on token length 15', () => {
  assertParseError('4f010001', 'TKL 15');
});

test('coap - parseMessage throws CoapParseError on an empty message with trailing bytes', () => {
  assertParseError('4000000100', 'code 0.00 with one extra byte');
});

test('coap - parseMessage throws CoapParseError on option delta or length 15 that is not the payload marker', () => {
  assertParseError('40010001 f0', 'delta nibble 15, length 0');
  assertParseError('40010001 f5 0102030405', 'delta nibble 15, length 5');
  assertParseError('40010001 1f', 'delta 1, length nibble 15');
});

test('coap - parseMessage throws CoapParseError on option headers cut short', () => {
  assertParseError('40010001 d0', 'delta 13 without its extension byte');
  assertParseError('40010001 e0', 'delta 14 without its two extension bytes');
  assertParseError('40010001 e0 01', 'delta 14 with one of two extension bytes');
  assertParseError('40010001 0d', 'length 13 without its extension byte');
  assertParseError('40010001 0e 00', 'length 14 with one of two extension bytes');
  assertParseError('40010001 b1 64 0d', 'second option: length 13 without its extension byte');
});

test('coap - parseMessage throws CoapParseError on random garbage that the parser rejects, and nothing else escapes', () => {
  // A deterministic sweep over short datagrams: every throw must be a CoapParseError.
  let seed = 0x2545f491;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  let thrown = 0;
  for (let i = 0; i < 5000; i++) {
    const bytes = Buffer.alloc(next() % 24);
    for (let j = 0; j < bytes.length; j++) bytes[j] = next() & 0xff;
    try {
      parseMessage(bytes);
    } catch (err) {
      assert.ok(err instanceof CoapParseError, `datagram ${hex(bytes)}: ${String(err)}`);
      thrown++;
    }
  }
  assert.ok(thrown > 0);
});

// ---------------------------------------------------------------------------------------------
// Critical options (RFC 7252 §5.4.1)
// ---------------------------------------------------------------------------------------------

test('coap - isCritical is true for odd option numbers only', () => {
  const critical = [1, 3, 5, 7, 9, 11, 15, 17, 19, 23, 27, 35, 39, 251, 2049, 65001];
  const elective = [0, 4, 6, 8, 12, 14, 20, 28, 60, 258, 2048, 65000];
  for (const n of critical) assert.equal(isCritical(n), true, `option ${n}`);
  for (const n of elective) assert.equal(isCritical(n), false, `option ${n}`);
});

test('coap - message format errors that the codec would let through are refused', () => {
  for (const hex of ['40010001b5616263', '48010001aabb', '40010001ff', '4c010001' + '00'.repeat(12), '6000000101']) {
    assert.throws(() => parseMessage(Buffer.from(hex, 'hex')), CoapParseError, hex);
  }
  // A well-formed request still parses.
  assert.equal(uriPath(parseMessage(Buffer.from('40010001b3616263', 'hex')))[0], 'abc');
});

test('coap - encodeMessage gives the same bytes as the general generator, and parses back', () => {
  const token = Buffer.from('a1b2c3d4', 'hex');
  const payload = Buffer.alloc(300, 7);
  const ours = encodeMessage({
    kind: MessageKind.Con,
    code: '2.05',
    messageId: 0xbeef,
    token,
    options: [
      [OptionNumber.ContentFormat, uintOption(60)],
      [OptionNumber.Observe, uintOption(70000)],
      [OptionNumber.ETag, Buffer.from('0102030405060708', 'hex')],
      [OptionNumber.MaxAge, uintOption(60)],
      [OptionNumber.Block2, blockOption({ num: 0, more: true, szx: 6 })],
      [OptionNumber.Size2, uintOption(1500)],
    ],
    payload,
  });
  const theirs = generateMessage({
    confirmable: true,
    code: '2.05',
    messageId: 0xbeef,
    token,
    options: [
      { name: 'Observe', value: uintOption(70000) },
      { name: 'ETag', value: Buffer.from('0102030405060708', 'hex') },
      { name: 'Content-Format', value: uintOption(60) },
      { name: 'Max-Age', value: uintOption(60) },
      { name: 'Block2', value: blockOption({ num: 0, more: true, szx: 6 }) },
      { name: 'Size2', value: uintOption(1500) },
    ],
    payload,
  });
  assert.equal(ours.toString('hex'), theirs.toString('hex'));
  // Extended deltas and lengths (13 and 269 forms), repeated options kept in order, kinds and empty messages.
  const long = Buffer.alloc(400, 0x61);
  const msg = parseMessage(
    encodeMessage({ kind: MessageKind.Non, code: '0.01', messageId: 1, token: Buffer.alloc(0), options: [[OptionNumber.UriPath, Buffer.from('d')], [OptionNumber.UriPath, Buffer.from('x')], [2000, long], [60, Buffer.from('abcdefghijklmnop')]] }),
  );
  assert.deepEqual(uriPath(msg), ['d', 'x']);
  assert.equal(msg.confirmable, false);
  assert.equal(option(msg, '2000')?.length, 400);
  assert.equal(option(msg, 'Size1')?.toString(), 'abcdefghijklmnop');
  const ack = parseMessage(encodeMessage({ kind: MessageKind.Ack, code: '0.00', messageId: 9, token: Buffer.alloc(0), options: [] }));
  assert.deepEqual([ack.ack, ack.code, ack.messageId], [true, '0.00', 9]);
  assert.throws(() => encodeMessage({ kind: MessageKind.Con, code: '2.5', messageId: 1, token: Buffer.alloc(0), options: [] }), RangeError);
  assert.throws(() => encodeMessage({ kind: MessageKind.Con, code: '2.05', messageId: 1, token: Buffer.alloc(9), options: [] }), RangeError);
});

test('coap - encodeMessage writes numeric option values as uint options, shortest form', () => {
  const values = [0, 1, 255, 256, 65535, 65536, 2 ** 24 - 1, 2 ** 24, 2 ** 32 - 1];
  for (const v of values) {
    const asNumber = encodeMessage({ kind: MessageKind.Con, code: '2.05', messageId: 7, token: Buffer.from('ab', 'hex'), options: [[OptionNumber.MaxAge, v], [OptionNumber.Observe, v]] });
    const asBytes = encodeMessage({ kind: MessageKind.Con, code: '2.05', messageId: 7, token: Buffer.from('ab', 'hex'), options: [[OptionNumber.Observe, uintOption(v)], [OptionNumber.MaxAge, uintOption(v)]] });
    assert.equal(asNumber.toString('hex'), asBytes.toString('hex'), `value ${v}`);
    assert.equal(readUint(option(parseMessage(asNumber), 'Max-Age') ?? Buffer.alloc(1, 0xff)), v);
  }
  for (const bad of [-1, 1.5, 2 ** 32, Number.NaN]) {
    assert.throws(() => encodeMessage({ kind: MessageKind.Con, code: '2.05', messageId: 7, token: Buffer.alloc(0), options: [[OptionNumber.MaxAge, bad]] }), RangeError, String(bad));
  }
});

test('coap - emptyMessageKind spots the 4-byte ACK and RST and nothing else', () => {
  assert.equal(emptyMessageKind(Buffer.from('6000beef', 'hex')), MessageKind.Ack);
  assert.equal(emptyMessageKind(Buffer.from('7000beef', 'hex')), MessageKind.Rst);
  assert.equal(emptyMessageKind(Buffer.from('4000beef', 'hex')), MessageKind.Con);
  assert.equal(messageIdOf(Buffer.from('6000beef', 'hex')), 0xbeef);
  // A token, a non-empty code, another version, another length: not the fast path.
  for (const hex of ['6100beef00', '6045beef', '2000beef', 'a000beef', '6000be', '6000beefff']) {
    assert.equal(emptyMessageKind(Buffer.from(hex, 'hex')), undefined, hex);
  }
});
