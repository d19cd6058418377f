/**
 * The hub's CoAP endpoint over real UDP on loopback, hostile input: unparsable datagrams are dropped and
 * counted, fuzzed ones never make it fail, unknown critical options get 4.02 (docs/protocol.md,
 * "Response codes": "No input from the network ends or stalls the hub").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Method, generateMessage } from '../../protocol/coap.ts';
import { decodeSnapshot } from '../../protocol/snapshot.ts';
import { addDevice } from '../domain/index.ts';
import { sleep, useCoapHub, waitFor } from '../../test/helpers/coap-client.ts';
import type { CoapTestClient } from '../../test/helpers/coap-client.ts';

const h = useCoapHub('henge-coap-hostile-');
const ctx = { actor: 'test' };
let shared: CoapTestClient | undefined;
/** The device socket most tests share, opened on first use. */
const device = async (): Promise<CoapTestClient> => (shared ??= await h.client());

test('hostile - random bytes, truncated headers, reserved option deltas and empty datagrams are dropped and counted', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'hostile-1', values: { ok: true } });
  const coap = h.hub.coap;
  assert.ok(coap);
  const before = { malformed: coap.counters.malformed, received: coap.counters.received };
  const junk: Buffer[] = [
    Buffer.alloc(0), // empty datagram
    Buffer.from([0x40]), // one header byte
    Buffer.from('400100', 'hex'), // truncated header
    Buffer.from('4f010001', 'hex'), // token length 15
    Buffer.from('8001000100', 'hex'), // version 2
    Buffer.from('4101000101f1', 'hex'), // option delta 15 (reserved)
    Buffer.from('4101000101e1', 'hex'), // option delta 14 without its two extension bytes
    Buffer.from('40010001d0', 'hex'), // option delta 13 without its extension byte
  ];
  let seed = 0x2545f491;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  for (let i = 0; i < 50; i++) {
    const b = Buffer.alloc(1 + Math.floor(rand() * 80));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
    b[0] = (b[0] ?? 0) & 0x3f; // version 0: never a valid CoAP header, always a parse failure
    junk.push(b);
  }
  for (const b of junk) dev.sendRaw(b);
  await waitFor('every datagram to be received', () => coap.counters.received - before.received >= junk.length);
  assert.equal(coap.counters.malformed - before.malformed, junk.length, 'every unparsable datagram is counted');
  const r = await dev.request({ code: Method.Get, path: '/d/hostile-1/c' });
  assert.equal(r.code, '2.05', 'the hub still answers');
  assert.deepEqual(decodeSnapshot(r.payload).values, { ok: true });
  const health = await h.api('GET', '/healthz');
  assert.equal(health.status, 200);
});

test('hostile - fuzzed datagrams with a valid version get an answer or nothing, never a 5.xx, and the hub stays up', async () => {
  await addDevice(h.hub.core, ctx, { id: 'fuzz-1', values: { ok: 'yes' } });
  const coap = h.hub.coap;
  assert.ok(coap);
  const fuzzer = await h.client();
  const before = coap.counters.received;
  const malformedBefore = coap.counters.malformed;
  let seed = 0x9e3779b9;
  const rand = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const bytes = (max: number): Buffer => Buffer.from(Array.from({ length: Math.floor(rand() * (max + 1)) }, () => Math.floor(rand() * 256)));
  const names: ReadonlyArray<string | number> = ['Uri-Path', 'Uri-Path', 'Observe', 'ETag', 'Block2', 'Content-Format', 'Uri-Query', 'Max-Age', 'Size2', 'Accept', 2, 60, 258, 65000];
  const segments = ['d', 'fuzz-1', 'c', 'a', 't', '.well-known', 'core', ''];
  const count = 400;
  for (let i = 0; i < count; i++) {
    let b: Buffer;
    if (i % 2 === 0) {
      // Raw: a version-1 header (any type, token length 0..8) and random bytes.
      b = Buffer.concat([Buffer.from([0x40 | (Math.floor(rand() * 4) << 4) | Math.floor(rand() * 9)]), bytes(60)]);
    } else {
      // Structured: a well-formed message with random code, options and payload.
      const options = Array.from({ length: Math.floor(rand() * 6) }, () => {
        const name = pick(names);
        return { name, value: name === 'Uri-Path' ? Buffer.from(pick(segments)) : bytes(6) };
      });
      const type = Math.floor(rand() * 4);
      b = generateMessage({
        code: pick(['0.01', '0.02', '0.03', '0.04', '0.05', '0.31', '2.05', '0.00']),
        confirmable: type === 0,
        ack: type === 2,
        reset: type === 3,
        messageId: Math.floor(rand() * 0x10000),
        token: bytes(8),
        options,
        payload: bytes(40),
      });
    }
    fuzzer.sendRaw(b);
    if (i % 50 === 49) await sleep(5); // stay under the loopback buffers
  }
  await waitFor('every fuzzed datagram to be received', () => coap.counters.received - before >= count, 5000);
  await sleep(100);
  const parsed = count - (coap.counters.malformed - malformedBefore);
  assert.ok(parsed > count / 3, `enough fuzzed datagrams parse to reach the request handler (${parsed} of ${count})`);
  const serverErrors = fuzzer.log.filter((m) => m.code.startsWith('5.'));
  assert.deepEqual(serverErrors.map((m) => m.code), [], 'no input makes the endpoint fail');
  const r = await fuzzer.request({ code: Method.Get, path: '/d/fuzz-1/c' });
  assert.equal(r.code, '2.05');
  assert.deepEqual(decodeSnapshot(r.payload).values, { ok: 'yes' });
});

test('hostile - parsable odd messages (huge option number, stray ACK/RST, responses) get no crash', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'hostile-2', values: { ok: 1 } });
  const hugeDelta = Buffer.concat([Buffer.from('4101abcd01', 'hex'), Buffer.from([0xe0, 0xff, 0xff]), Buffer.from('b1', 'hex'), Buffer.from('d')]);
  dev.sendRaw(hugeDelta); // option numbers 65804 and 65815 (beyond 16 bits): some answer or none, but no crash
  dev.sendAck(0x1234); // an ACK for nothing
  dev.sendRst(0x1235); // an RST for nothing
  dev.sendRaw(generateMessage({ code: '2.05', confirmable: true, messageId: 7, token: Buffer.from([1]) })); // a response as a request
  const r = await dev.request({ code: Method.Get, path: '/d/hostile-2/c' });
  assert.equal(r.code, '2.05');
  // A CON ping (empty CON) gets an empty ACK (or RST), never a crash.
  const ping = await dev.request({ code: '0.00', path: '', token: Buffer.alloc(0) });
  assert.ok(ping.msg.ack || ping.msg.reset);
  assert.equal(ping.code, '0.00');
});

test('hostile - an unknown critical option (65001) answers 4.02 Bad Option', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'critical-1', values: { a: 1 } });
  const r = await dev.request({ code: Method.Get, path: '/d/critical-1/c', extraOptions: [{ name: 65001, value: Buffer.from([1]) }] });
  assert.equal(r.code, '4.02', `a GET with the unknown critical option 65001 must be refused (RFC 7252 §5.4.1), got ${r.code}`);
  // An unknown elective (even) option is ignored.
  const elective = await dev.request({ code: Method.Get, path: '/d/critical-1/c', extraOptions: [{ name: 65000, value: Buffer.from([1]) }] });
  assert.equal(elective.code, '2.05');
});
