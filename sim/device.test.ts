/**
 * One simulated device without sockets or timers: a fake host records what it sends and schedules, and
 * the test plays the hub. Retransmission (RFC 7252), ACK/RST, duplicates and the version rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAck } from '../protocol/ack.ts';
import type { AckStatus } from '../protocol/ack.ts';
import { generateMessage, option, parseMessage, readUint, uintOption } from '../protocol/coap.ts';
import type { CoapMessage } from '../protocol/coap.ts';
import { buildSnapshot, decodeSnapshot } from '../protocol/snapshot.ts';
import { SimDevice, TimerKind, newCounters } from './device.ts';
import type { AckedEvent, DeviceHost, Inbound, NotifiedEvent, RegisteredEvent } from './device.ts';

class FakeHost implements DeviceHost {
  readonly counters = newCounters();
  readonly ackStatus: AckStatus = 0;
  clock = 1000;
  readonly sent: CoapMessage[] = [];
  readonly timers: Array<{ delayMs: number; kind: TimerKind; gen: number }> = [];
  readonly registeredEvents: RegisteredEvent[] = [];
  readonly notifiedEvents: NotifiedEvent[] = [];
  readonly ackedEvents: AckedEvent[] = [];
  random(): number {
    return 0;
  }
  now(): number {
    return this.clock;
  }
  send(_d: SimDevice, bytes: Buffer): void {
    this.sent.push(parseMessage(bytes));
  }
  schedule(delayMs: number, _d: SimDevice, kind: TimerKind, gen: number): void {
    this.timers.push({ delayMs, kind, gen });
  }
  defer(d: SimDevice, msg: Inbound): void {
    d.deferred(msg);
  }
  onRegistered(_d: SimDevice, e: RegisteredEvent): void {
    this.registeredEvents.push(e);
  }
  onNotified(_d: SimDevice, e: NotifiedEvent): void {
    this.notifiedEvents.push(e);
  }
  onAcked(_d: SimDevice, e: AckedEvent): void {
    this.ackedEvents.push(e);
  }
  last(): CoapMessage {
    const m = this.sent[this.sent.length - 1];
    assert.ok(m, 'something was sent');
    return m;
  }
  lastTimer(kind: TimerKind): { delayMs: number; gen: number } {
    const t = this.timers.filter((x) => x.kind === kind).pop();
    assert.ok(t, 'a timer was scheduled');
    return t;
  }
}

const INC_A = new Uint8Array(8).fill(0xaa);
const INC_B = new Uint8Array(8).fill(0xbb);
const snapshot = (version: number, incarnation = INC_A): Buffer => Buffer.from(buildSnapshot(version, { mode: 'eco', v: version }, incarnation).bytes);

function response(to: CoapMessage, code: string, opts: { observe?: number; payload?: Buffer } = {}): Buffer {
  const options = opts.observe !== undefined ? [{ name: 'Observe', value: uintOption(opts.observe) }, { name: 'Max-Age', value: uintOption(60) }] : [];
  return generateMessage({ ack: true, code, messageId: to.messageId, token: to.token, options, ...(opts.payload ? { payload: opts.payload } : {}) });
}

function notification(token: Buffer, mid: number, payload: Buffer): Buffer {
  return generateMessage({ confirmable: true, code: '2.05', messageId: mid, token, options: [{ name: 'Observe', value: uintOption(mid) }], payload });
}

/** Registers and answers with snapshot v5; acks it. Returns the registration token. */
function registered(h: FakeHost, d: SimDevice): Buffer {
  d.register();
  const reg = h.last();
  d.onDatagram(response(reg, '2.05', { observe: 2, payload: snapshot(5) }));
  const post = h.last();
  assert.equal(post.code, '0.02');
  d.onDatagram(response(post, '2.04'));
  return reg.token;
}

test('sim device - a registration is retransmitted with doubling timeouts and given up after MAX_RETRANSMIT', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-1', 0, h);
  d.register();
  const reg = h.last();
  assert.equal(reg.confirmable, true);
  assert.equal(reg.code, '0.01');
  assert.equal(readUint(option(reg, 'Observe') ?? Buffer.alloc(1, 9)), 0);
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = h.lastTimer(TimerKind.Retransmit);
    delays.push(t.delayMs);
    d.onTimer(TimerKind.Retransmit, t.gen);
  }
  assert.deepEqual(delays, [2000, 4000, 8000, 16000, 32000], 'ACK_TIMEOUT 2 s doubling (random factor 0 here)');
  assert.equal(h.sent.length, 5, 'the first transmission and 4 retransmissions');
  assert.ok(h.sent.every((m) => m.messageId === reg.messageId), 'a retransmission repeats the message id');
  assert.equal(h.counters.retransmissions, 4);
  assert.equal(h.counters.timeouts, 1);
  assert.equal(h.registeredEvents[0]?.code, 'timeout');
  assert.equal(h.lastTimer(TimerKind.Keepalive).delayMs, 5000, 'a new registration is planned');
});

test('sim device - notifications are ACKed at once, duplicates and older versions are not applied, unknown tokens get RST', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-2', 0, h);
  const token = registered(h, d);
  assert.equal(d.appliedVersion, 5);
  assert.equal(h.ackedEvents[0]?.version, 5);
  assert.equal(h.lastTimer(TimerKind.Keepalive).delayMs, 60_000 * 0.8, 're-registers before Max-Age runs out');

  d.onDatagram(notification(token, 100, snapshot(7)));
  const [ack, post] = h.sent.slice(-2);
  assert.ok(ack && post);
  assert.deepEqual([ack.ack, ack.code, ack.messageId], [true, '0.00', 100], 'an empty ACK first');
  assert.equal(post.code, '0.02');
  assert.equal(decodeAck(post.payload).version, 7);
  d.onDatagram(response(post, '2.04'));
  const before = h.sent.length;
  d.onDatagram(notification(token, 100, snapshot(7)));
  assert.equal(h.sent.length, before + 1, 'a duplicate is ACKed again, nothing else');
  assert.equal(h.counters.duplicates, 1);

  d.onDatagram(notification(token, 101, snapshot(6)));
  assert.equal(d.appliedVersion, 7, 'an older version of the same incarnation is ignored');
  assert.equal(h.counters.stale, 1);
  d.onDatagram(notification(token, 102, snapshot(1, INC_B)));
  assert.equal(d.appliedVersion, 1, 'another incarnation is applied whatever its version');

  const n = h.sent.length;
  d.onDatagram(notification(Buffer.from([9, 9, 9, 9]), 103, snapshot(9)));
  const rst = h.sent[n];
  assert.deepEqual([rst?.reset, rst?.messageId], [true, 103], 'RST for a token this device does not know');
  assert.equal(d.appliedVersion, 1);
});

test('sim device - newest ack first: a newer snapshot abandons the ack of an older one in flight (NSTART 1 kept)', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-3', 0, h);
  const token = registered(h, d);
  d.onDatagram(notification(token, 200, snapshot(8)));
  const post8 = h.last();
  assert.equal(decodeAck(post8.payload).version, 8);
  d.onDatagram(notification(token, 201, snapshot(9)));
  const post9 = h.last();
  assert.equal(post9.code, '0.02', 'the ack of 9 goes out at once');
  assert.equal(decodeAck(post9.payload).version, 9);
  assert.notEqual(post9.messageId, post8.messageId);
  // The abandoned ack is not retransmitted: its timer is stale, the live one retransmits the ack of 9.
  const sentBefore = h.sent.length;
  d.onTimer(TimerKind.Retransmit, h.lastTimer(TimerKind.Retransmit).gen);
  assert.equal(h.sent.length, sentBefore + 1);
  assert.equal(decodeAck(h.last().payload).version, 9, 'only the newest ack is retransmitted');
  // A late answer to the abandoned ack settles nothing.
  d.onDatagram(response(post8, '2.04'));
  assert.equal(h.counters.duplicates, 1);
  d.onDatagram(response(post9, '2.04'));
  assert.deepEqual(
    h.ackedEvents.map((e) => e.version),
    [5, 9],
  );
  assert.equal(h.counters.abandoned, 1);
  assert.ok(d.idle, 'nothing left to send');
});

test('sim device - newest ack first: an ack waits for neither a re-registration in flight nor a due one; the re-registration follows it', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-3b', 0, h);
  const token = registered(h, d);
  // Keepalive: a re-registration goes out; a notification arrives before its answer.
  d.onTimer(TimerKind.Keepalive, h.lastTimer(TimerKind.Keepalive).gen);
  const rereg = h.last();
  assert.equal(rereg.code, '0.01');
  d.onDatagram(notification(token, 300, snapshot(12)));
  const post = h.last();
  assert.equal(post.code, '0.02', 'the ack did not wait for the re-registration');
  assert.equal(decodeAck(post.payload).version, 12);
  d.onDatagram(response(post, '2.04'));
  const again = h.last();
  assert.equal(again.code, '0.01', 'the re-registration follows the ack');
  assert.notEqual(again.messageId, rereg.messageId);
  d.onDatagram(response(again, '2.03', { observe: 4 }));
  assert.ok(d.idle);
  assert.equal(h.counters.abandoned, 1);
});

test('sim device - a registration of a lost relation is never abandoned for an ack', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-3c', 0, h);
  const token = registered(h, d);
  // The hub ends the relation (an error notification); the device registers again later.
  d.onDatagram(generateMessage({ confirmable: true, code: '4.04', messageId: 400, token }));
  assert.equal(d.observing, false);
  d.onTimer(TimerKind.Keepalive, h.lastTimer(TimerKind.Keepalive).gen);
  const reg = h.last();
  assert.equal(reg.code, '0.01');
  // A notification of the new relation overtakes the registration's answer: applied, but its ack waits.
  d.onDatagram(notification(token, 401, snapshot(13)));
  assert.equal(h.last().ack, true, 'only the empty ACK of the notification went out');
  assert.equal(h.counters.abandoned, 0);
  d.onDatagram(response(reg, '2.05', { observe: 5, payload: snapshot(13) }));
  const post = h.last();
  assert.equal(post.code, '0.02', 'the ack follows the registration');
  assert.equal(decodeAck(post.payload).version, 13);
});

test('sim device - a re-registration that gets no answer keeps the relation: the next notification is applied and acked, not reset', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-3d', 0, h);
  const token = registered(h, d);
  d.onTimer(TimerKind.Keepalive, h.lastTimer(TimerKind.Keepalive).gen);
  assert.equal(h.last().code, '0.01');
  for (let i = 0; i < 5; i++) d.onTimer(TimerKind.Retransmit, h.lastTimer(TimerKind.Retransmit).gen);
  assert.equal(h.registeredEvents.at(-1)?.code, 'timeout', 'the re-registration was given up');
  assert.equal(d.observing, true, 'the relation it held is not known to be gone');
  d.onDatagram(notification(token, 700, snapshot(14)));
  const [ack, post] = h.sent.slice(-2);
  assert.equal(ack?.reset, false, 'no RST: that would end the relation at the hub');
  assert.deepEqual([ack?.ack, ack?.messageId], [true, 700]);
  assert.equal(d.appliedVersion, 14);
  assert.equal(post?.code, '0.02', 'acked at once');
  assert.equal(decodeAck(post?.payload ?? Buffer.alloc(0)).version, 14);
  d.onDatagram(response(post ?? h.last(), '2.04'));
  d.onTimer(TimerKind.Keepalive, h.lastTimer(TimerKind.Keepalive).gen);
  assert.equal(h.last().code, '0.01', 'and it registers again');
});

test('sim device - the snapshot it holds, sent again while its ack was never answered, is acked again', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-4', 0, h);
  d.register();
  const reg = h.last();
  d.onDatagram(response(reg, '2.05', { observe: 2, payload: snapshot(5) }));
  const post = h.last();
  assert.equal(post.code, '0.02');
  for (let i = 0; i < 5; i++) d.onTimer(TimerKind.Retransmit, h.lastTimer(TimerKind.Retransmit).gen);
  assert.equal(h.counters.timeouts, 1, 'the ack POST was given up');
  // The hub has no ack, so the next registration gets 2.05 with the same snapshot instead of 2.03.
  d.register();
  const again = h.last();
  assert.ok(option(again, 'ETag'), 'the registration carries the ETag');
  d.onDatagram(response(again, '2.05', { observe: 3, payload: snapshot(5) }));
  const repost = h.last();
  assert.equal(repost.code, '0.02', 'acked again');
  assert.equal(decodeAck(repost.payload).version, 5);
  d.onDatagram(response(repost, '2.04'));
  const n = h.sent.length;
  d.onDatagram(notification(again.token, 300, snapshot(5)));
  assert.equal(h.sent.length, n + 1, 'once answered, the same snapshot is only ACKed');
});

test('sim device - a malformed datagram is counted and changes nothing', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-5', 0, h);
  const token = registered(h, d);
  const n = h.sent.length;
  for (const hex of ['40', '4045', '40000001ff', '41000001aa', '49450001', '40450001f0', '4045000100ff', '80450001']) d.onDatagram(Buffer.from(hex, 'hex'));
  assert.equal(h.counters.malformed, 8);
  assert.equal(h.sent.length, n, 'nothing answered');
  d.onDatagram(notification(token, 400, snapshot(6)));
  assert.equal(d.appliedVersion, 6, 'still handles what comes next');
});

test('sim device - acks and the registration ETag carry the hash and incarnation of the snapshot applied last', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-6', 0, h);
  const token = registered(h, d);
  const v7 = buildSnapshot(7, { mode: 'heat' }, INC_A);
  const v8 = buildSnapshot(8, { mode: 'cool' }, INC_B);
  for (const [mid, s] of [[500, v7], [501, v8]] as const) {
    d.onDatagram(notification(token, mid, Buffer.from(s.bytes)));
    const post = h.last();
    const ack = decodeAck(post.payload);
    assert.equal(ack.version, s.snapshot.version);
    assert.deepEqual(ack.hash, s.snapshot.hash);
    assert.deepEqual(ack.incarnation, s.snapshot.incarnation);
    d.onDatagram(response(post, '2.04'));
  }
  d.register();
  assert.deepEqual(new Uint8Array(option(h.last(), 'ETag') ?? Buffer.alloc(0)), v8.snapshot.hash, 'the ETag of what it holds');
});

test('sim device - a valid snapshot in another layout than the hub\'s is decoded in full and applied', () => {
  const h = new FakeHost();
  const d = new SimDevice('dev-7', 0, h);
  const token = registered(h, d);
  const s = buildSnapshot(9, { mode: 'eco' }, INC_A);
  const b = Buffer.from(s.bytes);
  // Envelope keys 1 and 0 swapped (any valid encoding is accepted): a5 01 09 00 01 02 ...
  const reordered = Buffer.concat([Buffer.from([0xa5, 0x01, 0x09, 0x00, 0x01]), b.subarray(5)]);
  assert.equal(decodeSnapshot(reordered).version, 9);
  d.onDatagram(notification(token, 600, reordered));
  assert.equal(d.appliedVersion, 9);
  assert.deepEqual(decodeAck(h.last().payload).hash, s.snapshot.hash);
  d.onDatagram(notification(token, 601, Buffer.from([0xa5, 0x00])));
  assert.equal(h.counters.badSnapshots, 1, 'a snapshot that does not decode is counted');
  assert.equal(d.appliedVersion, 9);
});
