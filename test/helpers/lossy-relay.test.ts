/**
 * The lossy relay's traces and what they explain (what excuses a late device in test/faults/lossy.test.ts):
 * each transmission of a confirmable exchange is paired with its answers both ways, and runs of
 * transmissions the network failed add up, end and restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageKind, emptyMessage, generateMessage } from '../../protocol/coap.ts';
import { buildSnapshot } from '../../protocol/snapshot.ts';
import { criticalPath, cutAttempts, formatTrace, traceEvent } from './relay-trace.ts';
import type { TraceEvent } from './relay-trace.ts';

const con = (mid: number, code = '0.02'): Buffer => generateMessage({ confirmable: true, code, messageId: mid, token: Buffer.from([1, 2]) });
const piggybacked = (mid: number): Buffer => generateMessage({ ack: true, code: '2.04', messageId: mid, token: Buffer.from([1, 2]) });
/** The hub's notification: a CON 2.05 carrying snapshot `version`. */
const notificationOf = (mid: number, version = 7): Buffer =>
  generateMessage({ confirmable: true, code: '2.05', messageId: mid, token: Buffer.from([1, 2, 3, 4]), payload: Buffer.from(buildSnapshot(version, { n: version }, new Uint8Array(8)).bytes) });

/** One event, spelled out: time, direction, CoAP type and code byte, message id, dropped, and a 2.05's snapshot version. */
const ev = (t: number, up: boolean, type: number, code: number, mid: number, dropped: boolean, version?: number): TraceEvent => ({ t, up, type, code, mid, dropped, ...(version === undefined ? {} : { version }) });

/** A little language for traces: "u+" a request up delivered, "u-" dropped; "d" down; "A" an ACK, "R" an RST, "N" a notification (CON down). */
function trace(steps: string, mid = 100): TraceEvent[] {
  let t = 0;
  return steps.split(' ').map((s) => {
    const dropped = s.endsWith('-');
    const kind = s.slice(0, -1);
    t += 1000;
    const bytes =
      kind === 'u' ? con(mid) : kind === 'dA' ? piggybacked(mid) : kind === 'N' ? notificationOf(mid) : kind === 'uA' ? emptyMessage(MessageKind.Ack, mid) : kind === 'uR' ? emptyMessage(MessageKind.Rst, mid) : Buffer.alloc(0);
    const e = traceEvent(bytes, kind.startsWith('u'), dropped, t);
    assert.ok(e, `a step of the trace language: ${s}`);
    return e;
  });
}

test('lossy relay - a datagram becomes a trace event with its direction, type, code and message id (a 2.05 with a snapshot, its version too); a non-CoAP one none', () => {
  assert.equal(traceEvent(notificationOf(3, 42), false, false, 0)?.version, 42);
  assert.equal(traceEvent(generateMessage({ ack: true, code: '2.05', messageId: 3, token: Buffer.from([1]), payload: Buffer.from([0xa0]) }), false, false, 0)?.version, undefined, 'a payload that is no snapshot');
  assert.deepEqual(traceEvent(con(0x1234), true, false, 5), { t: 5, up: true, type: 0, code: 2, mid: 0x1234, dropped: false });
  assert.deepEqual(traceEvent(emptyMessage(MessageKind.Rst, 9), false, true, 6), { t: 6, up: false, type: 3, code: 0, mid: 9, dropped: true });
  assert.equal(traceEvent(Buffer.from([0x40]), true, false, 0), null, 'shorter than a header');
  assert.equal(traceEvent(Buffer.from([0x00, 0, 0, 0]), true, false, 0), null, 'CoAP version 0 (a DTLS record, say)');
  assert.match(formatTrace(trace('u- dA+')), /up {3}CON 0\.02 {2}mid {3}100 dropped\n.*down ACK 2\.04/);
});

test('lossy relay - a request whose transmissions are dropped on the way up counts each as failed; the answer getting through ends the run', () => {
  assert.equal(cutAttempts(trace('u- u- u- u+ dA+')).maxRun, 3);
  assert.equal(cutAttempts(trace('u- u- u- u- u+ dA+')).maxRun, 4, 'the exchange needed its fifth and last transmission');
  assert.equal(cutAttempts(trace('u- u- u- u- u-')).maxRun, 5, 'cut entirely');
});

test('lossy relay - a request delivered whose answer is dropped on the way back failed too: both halves of the exchange count', () => {
  assert.equal(cutAttempts(trace('u+ dA- u- u+ dA- u+ dA- u+ dA+')).maxRun, 4);
  assert.deepEqual(cutAttempts(trace('u+ dA- u+ dA- u+ dA- u+ dA-')), { maxRun: 4, at: 7000, direction: 'up' }, 'every answer lost');
});

test('lossy relay - a transmission delivered and never answered is the peer\'s doing, not the network\'s: it ends the run', () => {
  assert.equal(cutAttempts(trace('u- u- u+ u- u- u+ dA+')).maxRun, 2);
});

test('lossy relay - notifications down are one chain across message ids; only the ACK of the newest id settles it, as the hub does', () => {
  const events = [...trace('N-'), ...trace('N+ uA-', 101), ...trace('N+ uA+', 102)].map((e, i) => ({ ...e, t: i }));
  assert.equal(cutAttempts(events).maxRun, 2, 'a dropped notification, then one whose ACK was dropped, then one that got through');
  const lateAck = [...trace('N-', 200), ...trace('N+ uA-', 201), ...trace('uA+', 200), ...trace('N- N+ uA+', 202)].map((e, i) => ({ ...e, t: i }));
  assert.equal(cutAttempts(lateAck).maxRun, 3, 'a late ACK of an older id does not settle the chain');
  assert.equal(cutAttempts([...trace('N+ uA-', 300), ...trace('N+ uR+', 301)].map((e, i) => ({ ...e, t: i }))).maxRun, 1, 'an RST answers too');
});

test('lossy relay - each request is its own exchange: another message id starts a new run', () => {
  const events = [...trace('u- u-', 1), ...trace('u- u+ dA+', 2), ...trace('u+ dA+', 1)].map((e, i) => ({ ...e, t: i }));
  assert.equal(cutAttempts(events).maxRun, 2);
});

test('lossy relay - only exchanges live in the window count: one with a transmission in it, or one still unsettled when it opens', () => {
  const cut = trace('u- u- u- u- u-'); // transmissions at 1 s .. 5 s
  assert.equal(cutAttempts(cut, 200_000).maxRun, 0, 'cut long before the window (warm-up): not counted');
  assert.equal(cutAttempts(cut, 50_000).maxRun, 5, 'cut 45 s before the window, still within MAX_TRANSMIT_WAIT of its start: counted');
  assert.equal(cutAttempts(cut, 4_500).maxRun, 5, 'a transmission inside the window');
  assert.equal(cutAttempts(cut, 0, 3_500).maxRun, 3, 'nothing after `until` is read');
  const settled = trace('u- u- u- u- u+ dA+');
  assert.equal(cutAttempts(settled, 60_000).maxRun, 0, 'settled before the window opened');
  assert.equal(cutAttempts(settled, 5_500).maxRun, 4, 'its last transmission before the window, its answer inside: it needed its fifth transmission');
});

test('lossy relay - the critical path: the snapshot\'s way down (notifications, registrations), then the ack\'s way up; failed transmissions\' waits, overlaps merged, clipped', () => {
  const at = (t: number, events: TraceEvent[]): TraceEvent[] => events.map((e) => ({ ...e, t: e.t - 1000 + t }));
  // A notification dropped at 1 s, retransmitted at 3 s and delivered; the ack POST dropped at 3.1 s, delivered at 5.1 s.
  const events = [...at(1000, trace('N-', 10)), ...at(3000, trace('N+ uA+', 10)), ...at(3100, trace('u-', 20)), ...at(5100, trace('u+ dA+', 20))].sort((p, q) => p.t - q.t);
  assert.deepEqual(criticalPath(events, 0, 5100, 7), { snapshotAt: 3000, lossWaitMs: 2000 + 2000 });
  assert.equal(criticalPath(events, 2000, 5100, 7).lossWaitMs, 1000 + 2000, 'clipped to `from`');
  assert.equal(criticalPath(events, 0, 4000, 7).lossWaitMs, 2000 + 900, 'clipped to `until`');
  // The registration was the way down: its answer (2.05 with the snapshot) lost once.
  const answer = (t: number, dropped: boolean, version: number): TraceEvent => ({ ...ev(t, false, 2, 69, 30, dropped), version });
  const regAndAck = [ev(1000, true, 0, 1, 30, false), answer(1010, true, 7), ev(4000, true, 0, 1, 30, false), answer(4010, false, 7), ev(4020, true, 0, 2, 31, false), ev(4030, false, 2, 68, 31, false)];
  assert.deepEqual(criticalPath(regAndAck, 0, 4020, 7), { snapshotAt: 4010, lossWaitMs: 3000 });
  // A 2.05 with an older snapshot (the hub repeats its first answer to a retransmitted registration) is not the snapshot's arrival.
  const stale = [ev(1000, true, 0, 1, 30, false), answer(1010, false, 6), ...at(1500, trace('N-', 40)), ...at(4500, trace('N+ uA+', 40)), ...at(4600, trace('u+ dA+', 41))].sort((p, q) => p.t - q.t);
  assert.deepEqual(criticalPath(stale, 0, 4600, 7), { snapshotAt: 4500, lossWaitMs: 3000 });
  // A request that is not on the path (a re-registration after the snapshot arrived) failing in the ack's way: the device's time.
  const blocked = [...at(1000, trace('N+ uA+', 40)), ...at(1100, trace('u- u- u+', 50)).map((e) => ({ ...e, code: 1 })), ...at(9000, trace('u+ dA+', 51))].sort((p, q) => p.t - q.t);
  assert.deepEqual(criticalPath(blocked, 0, 9000, 7), { snapshotAt: 1000, lossWaitMs: 0 });
  // Cut: the last transmission's wait is what RFC 7252 allows it at most (3 s doubled once, and 100 ms of slack).
  assert.equal(criticalPath(trace('N- N-'), 0, 100_000, 7).lossWaitMs, 1000 + 6100);
});

test('lossy relay - the critical path excuses no wait longer than RFC 7252 allows, nor past the next request, and finds a snapshot delivered before the change was answered', () => {
  const ack = (t: number, mid: number, dropped = false): TraceEvent => ev(t, false, 2, 68, mid, dropped);
  const notified = ev(500, false, 0, 69, 9, false, 7);
  // An ack POST dropped, retransmitted only 10 s later: at most 3.1 s of that is the network's.
  const slow = [notified, ev(600, true, 2, 0, 9, false), ev(1000, true, 0, 2, 1, true), ev(11_000, true, 0, 2, 1, false), ack(11_010, 1)];
  assert.equal(criticalPath(slow, 0, 11_000, 7).lossWaitMs, 3100);
  // An ack POST dropped, then the device sends another request: its wait ends there.
  const abandoned = [notified, ev(1000, true, 0, 2, 1, true), ev(1500, true, 0, 2, 2, false), ack(1510, 2)];
  assert.equal(criticalPath(abandoned, 0, 1500, 7).lossWaitMs, 500);
  // The notification reached the device before the change's answer (`from`): the ack's losses after `from` count.
  const early = [ev(1000, false, 0, 69, 9, false, 7), ev(1100, true, 0, 2, 1, true), ev(3100, true, 0, 2, 1, false), ack(3110, 1)];
  assert.deepEqual(criticalPath(early, 1500, 3100, 7), { snapshotAt: 1000, lossWaitMs: 1600 });
});

test('lossy relay - a notification chain ends with a registration reaching the hub, an RST of any of its ids, or its fifth transmission', () => {
  const n = (t: number, mid: number, dropped: boolean, version = 7): TraceEvent => ev(t, false, 0, 69, mid, dropped, version);
  // Three dropped notifications, then a registration reaches the hub: the next notification is the first
  // of a new chain (3.1 s allowed), not the fourth of the old one (24.1 s).
  const replaced = [n(0, 1, true), n(3000, 1, true), n(9000, 1, true), ev(10_000, true, 0, 1, 50, false), ev(10_010, false, 2, 67, 50, false), n(20_000, 2, true), n(40_000, 2, false)];
  assert.equal(cutAttempts(replaced).maxRun, 3);
  assert.equal(criticalPath(replaced, 19_000, 40_000, 7).lossWaitMs, 3100);
  // The same with an RST of an older id instead (the device refused the relation; the notification it got was of an older version).
  const reset = [n(0, 1, true, 6), n(3000, 2, false, 6), ev(3010, true, 3, 0, 1, false), n(20_000, 3, true), n(40_000, 3, false)];
  assert.equal(criticalPath(reset, 19_000, 40_000, 7).lossWaitMs, 3100);
  // After its fifth transmission the hub gives up: a sixth notification starts a new chain.
  const five = [0, 3000, 9000, 21_000, 45_000].map((t) => n(t, 1, true));
  assert.equal(criticalPath([...five, n(100_000, 2, true), n(110_000, 2, false)], 99_000, 110_000, 7).lossWaitMs, 3100);
  assert.equal(criticalPath(five, 0, 200_000, 7).lossWaitMs, 45_000 + 48_100, 'the fifth waits its doubled timeout, then the hub gives up');
});
