/**
 * The lossy relay's count of transmissions dropped in a row per exchange (what excuses a late device in
 * test/faults/lossy.test.ts): which datagrams are transmissions of one exchange, and how runs of drops add
 * up, end and restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageKind, emptyMessage, generateMessage } from '../../protocol/coap.ts';
import { exchangeOf, track } from './lossy-relay.ts';
import type { Run } from './lossy-relay.ts';

const con = (mid: number, code = '0.02'): Buffer => generateMessage({ confirmable: true, code, messageId: mid, token: Buffer.from([1, 2]) });
const non = (mid: number): Buffer => generateMessage({ confirmable: false, code: '2.05', messageId: mid, token: Buffer.from([1, 2]) });

test('lossy relay - a confirmable request up is its message id; every confirmable notification down is one chain; the rest is no exchange', () => {
  assert.equal(exchangeOf(con(0x1234), true), 0x1234);
  assert.equal(exchangeOf(con(7, '2.05'), false), exchangeOf(con(8, '2.05'), false), 'a newer notification continues the chain');
  assert.equal(exchangeOf(non(9), true), null);
  assert.equal(exchangeOf(emptyMessage(MessageKind.Ack, 5), true), null, 'an empty ACK');
  assert.equal(exchangeOf(Buffer.from([0x40]), true), null, 'shorter than a header');
});

test('lossy relay - drops in a row count per exchange: a delivered transmission ends the run, another exchange starts a new one', () => {
  const run: Run = { key: NaN, lost: 0, max: 0 };
  track(run, 1, true);
  track(run, 1, true);
  track(run, 1, true);
  assert.equal(run.max, 3);
  track(run, 1, false); // the fourth got through
  track(run, 2, true);
  track(run, 1, true); // a late copy of exchange 1 again: a new run
  assert.equal(run.lost, 1);
  track(run, null, true); // not a transmission of any exchange: no effect
  assert.equal(run.lost, 1);
  for (let i = 0; i < 4; i++) track(run, 3, true);
  assert.equal(run.max, 4, 'an exchange that needed its last transmission');
});
