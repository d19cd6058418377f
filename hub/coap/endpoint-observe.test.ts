/**
 * The hub's CoAP endpoint over real UDP on loopback, observe side (docs/protocol.md, "Observe lifecycle",
 * "Block-wise transfer"): registration, confirmable notifications, one in flight with newest wins, RST,
 * replacement and duplicate identities, and block-wise snapshots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AckStatus, encodeAck } from '../../protocol/ack.ts';
import { ContentFormat, Method } from '../../protocol/coap.ts';
import { decodeSnapshot } from '../../protocol/snapshot.ts';
import { addDevice, setValues } from '../domain/index.ts';
import type { DeviceState } from '../domain/queries.ts';
import type { CoapEndpoint } from './endpoint.ts';
import { sleep, useCoapHub, waitFor } from '../../test/helpers/coap-client.ts';
import type { CoapTestClient, Response } from '../../test/helpers/coap-client.ts';

const KEEPALIVE_S = 45;
const h = useCoapHub('henge-coap-observe-', KEEPALIVE_S);
const ctx = { actor: 'test' };

const coap = (): CoapEndpoint => {
  const c = h.hub.coap;
  assert.ok(c, 'the hub runs a CoAP endpoint');
  return c;
};

async function state(id: string): Promise<DeviceState> {
  const r = await h.api<DeviceState>('GET', `/devices/${id}/state`);
  assert.equal(r.status, 200);
  return r.body;
}

const snapshotOf = (id: string) => {
  const s = h.hub.core.state.snapshots.get(id);
  assert.ok(s, `device ${id} has a snapshot`);
  return s;
};

const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('hex') : '(none)');

/** GET /d/{id}/c with Observe 0. */
function register(dev: CoapTestClient, id: string, etag?: Uint8Array): Promise<Response> {
  return dev.request({ code: Method.Get, path: `/d/${id}/c`, observe: 0, ...(etag ? { etag } : {}) });
}

/** Ends a test's relation so that nothing stays in flight for the next test. */
async function deregister(dev: CoapTestClient, id: string): Promise<void> {
  await dev.request({ code: Method.Get, path: `/d/${id}/c`, observe: 1 });
  assert.equal(coap().registry.relationOf(id), undefined);
}

test('observe - registration answers 2.05 with Observe, Max-Age = keepalive, ETag and the snapshot', async () => {
  await addDevice(h.hub.core, ctx, { id: 'reg-1', values: { mode: 'auto' } });
  const dev = await h.client();
  const r = await register(dev, 'reg-1');
  assert.equal(r.code, '2.05');
  assert.equal(r.msg.ack, true);
  assert.equal(typeof r.observe, 'number', 'the answer carries an Observe option');
  assert.equal(r.maxAge, KEEPALIVE_S);
  assert.equal(r.contentFormat, ContentFormat.Cbor);
  assert.equal(hex(r.etag), hex(snapshotOf('reg-1').snapshot.hash));
  assert.deepEqual(decodeSnapshot(r.payload).values, { mode: 'auto' });
  const rel = coap().registry.relationOf('reg-1');
  assert.ok(rel, 'the hub keeps a relation');
  assert.equal(rel.peer.port, dev.port);
  assert.equal((await state('reg-1')).observing, true);
  // Once the device has acked this version, a registration with the current ETag is answered 2.03,
  // Observe kept, no payload.
  const version = decodeSnapshot(r.payload).version;
  const ack = await dev.request({ code: Method.Post, path: '/d/reg-1/a', payload: Buffer.from(encodeAck({ version, status: AckStatus.Applied })), contentFormat: ContentFormat.Cbor });
  assert.equal(ack.code, '2.04');
  const valid = await register(dev, 'reg-1', r.etag);
  assert.equal(valid.code, '2.03');
  assert.equal(typeof valid.observe, 'number');
  assert.ok((valid.observe ?? 0) > (r.observe ?? 0));
  assert.equal(valid.payload.length, 0);
  // Observe 1 deregisters.
  const dereg = await dev.request({ code: Method.Get, path: '/d/reg-1/c', observe: 1 });
  assert.equal(dereg.code, '2.05');
  assert.equal(dereg.observe, undefined, 'a deregistration is answered like a plain GET');
  assert.equal(coap().registry.relationOf('reg-1'), undefined);
  assert.equal((await state('reg-1')).observing, false);
});

test('observe - a change reaches the observer as a confirmable notification; its ACK settles it; other devices get nothing', async () => {
  await addDevice(h.hub.core, ctx, { id: 'note-1', values: { setpoint: 20 } });
  await addDevice(h.hub.core, ctx, { id: 'note-2', values: { setpoint: 18 } });
  const dev = await h.client({ autoAck: false });
  const other = await h.client();
  const token = Buffer.from('c0ffee01', 'hex');
  const reg = await dev.request({ code: Method.Get, path: '/d/note-1/c', observe: 0, token });
  assert.equal(reg.code, '2.05');
  assert.equal((await register(other, 'note-2')).code, '2.05');
  const sentBefore = coap().counters.notificationsSent;

  await setValues(h.hub.core, ctx, { device: 'note-1' }, { setpoint: 22.5 }, false);
  const [n] = await dev.waitForNotifications(1);
  assert.ok(n);
  assert.equal(n.msg.confirmable, true, 'notifications are CON');
  assert.equal(n.code, '2.05');
  assert.deepEqual(n.msg.token, token, 'the registration token');
  assert.ok((n.observe ?? 0) > (reg.observe ?? 0), `Observe grows: ${n.observe} > ${reg.observe}`);
  assert.equal(n.maxAge, KEEPALIVE_S);
  assert.equal(n.contentFormat, ContentFormat.Cbor);
  const snap = decodeSnapshot(n.payload);
  assert.deepEqual(snap.values, { setpoint: 22.5 });
  assert.equal(snap.version, snapshotOf('note-1').snapshot.version);
  assert.equal(hex(n.etag), hex(snap.hash));
  assert.equal(coap().counters.notificationsSent - sentBefore, 1);
  assert.equal(coap().registry.inflight, 1);
  assert.ok(coap().registry.relationOf('note-1')?.inflight, 'in flight until ACKed');

  dev.sendAck(n.msg.messageId);
  await waitFor('the notification to settle', () => coap().registry.inflight === 0);
  assert.equal(coap().registry.relationOf('note-1')?.inflight, null);
  assert.ok(coap().registry.relationOf('note-1'), 'the relation lives on');
  await sleep(300);
  assert.equal(other.notifications.length, 0, 'the other device got nothing');
  assert.equal(dev.notifications.length, 1, 'no retransmission after the ACK');
  // The next change is notified again, with a still greater Observe value.
  dev.autoAck = true;
  await setValues(h.hub.core, ctx, { device: 'note-1' }, { setpoint: 23 }, false);
  const [, n2] = await dev.waitForNotifications(2);
  assert.ok(n2);
  assert.ok((n2.observe ?? 0) > (n.observe ?? 0));
  assert.deepEqual(decodeSnapshot(n2.payload).values, { setpoint: 23 });
  await waitFor('the second notification to settle', () => coap().registry.inflight === 0);
  await deregister(dev, 'note-1');
  await deregister(other, 'note-2');
});

test('observe - one in flight, newest wins: the retransmission carries the newest snapshot; its ACK settles it', { timeout: 10_000 }, async () => {
  await addDevice(h.hub.core, ctx, { id: 'newest-1', values: { n: 0 } });
  const dev = await h.client({ autoAck: false });
  assert.equal((await register(dev, 'newest-1')).code, '2.05');
  const t0 = Date.now();
  await setValues(h.hub.core, ctx, { device: 'newest-1' }, { n: 1 }, false);
  await setValues(h.hub.core, ctx, { device: 'newest-1' }, { n: 2 }, false);
  const newest = snapshotOf('newest-1').snapshot.version;
  const [first] = await dev.waitForNotifications(1);
  assert.ok(first);
  await sleep(200);
  assert.equal(dev.notifications.length, 1, 'one notification in flight, not one per change');
  assert.equal(coap().registry.inflight, 1);
  assert.equal(decodeSnapshot(first.payload).values['n'], 1, 'the first transmission carries the snapshot of the first change');

  // RFC 7252: the first retransmission comes after ACK_TIMEOUT .. ACK_TIMEOUT * ACK_RANDOM_FACTOR (2-3 s).
  const [, re] = await dev.waitForNotifications(2, 4000);
  assert.ok(re);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 1900 && elapsed <= 3600, `retransmitted after ${elapsed} ms`);
  assert.equal(re.msg.confirmable, true);
  const snap = decodeSnapshot(re.payload);
  assert.equal(snap.version, newest, 'the retransmission carries the newest version');
  assert.deepEqual(snap.values, { n: 2 });
  assert.deepEqual(re.msg.token, first.msg.token);
  assert.ok((re.observe ?? 0) > (first.observe ?? 0));
  assert.equal(coap().registry.inflight, 1, 'still one in flight');
  assert.ok(coap().counters.retransmissions >= 1);

  dev.sendAck(re.msg.messageId);
  await waitFor('the notification to settle', () => coap().registry.inflight === 0);
  assert.equal(coap().registry.relationOf('newest-1')?.inflight, null);
  await sleep(300);
  assert.equal(dev.notifications.length, 2, 'nothing more after the ACK');
  await deregister(dev, 'newest-1');
});

test('observe - an RST in reply to a notification ends the relation', async () => {
  await addDevice(h.hub.core, ctx, { id: 'rst-1', values: { a: 1 } });
  const dev = await h.client({ autoAck: false });
  assert.equal((await register(dev, 'rst-1')).code, '2.05');
  assert.equal((await state('rst-1')).observing, true);
  const resetsBefore = coap().counters.relationsEnded.reset;
  await setValues(h.hub.core, ctx, { device: 'rst-1' }, { a: 2 }, false);
  const [n] = await dev.waitForNotifications(1);
  assert.ok(n);
  // An RST (or ACK) with the right message id from another endpoint is not the device's: ignored.
  const stranger = await h.client();
  stranger.sendRst(n.msg.messageId);
  stranger.sendAck(n.msg.messageId);
  await sleep(200);
  assert.ok(coap().registry.relationOf('rst-1')?.inflight, 'a stranger cannot settle or end the relation');
  dev.sendRst(n.msg.messageId);
  await waitFor('the relation to end', () => coap().registry.relationOf('rst-1') === undefined);
  assert.equal(coap().registry.inflight, 0);
  assert.equal(coap().counters.relationsEnded.reset - resetsBefore, 1);
  assert.equal((await state('rst-1')).observing, false);
  await setValues(h.hub.core, ctx, { device: 'rst-1' }, { a: 3 }, false);
  await sleep(300);
  assert.equal(dev.notifications.length, 1, 'no notification after the RST');
});

test('observe - a registration from another socket replaces the first; only the new one is notified', async () => {
  await addDevice(h.hub.core, ctx, { id: 'move-1', values: { a: 1 } });
  const a = await h.client({ autoAck: false });
  const b = await h.client();
  assert.equal((await register(a, 'move-1')).code, '2.05');
  await setValues(h.hub.core, ctx, { device: 'move-1' }, { a: 'for-a' }, false);
  await a.waitForNotifications(1);
  assert.equal(coap().registry.inflight, 1, 'A leaves its notification unacknowledged');
  const regB = await register(b, 'move-1');
  assert.equal(regB.code, '2.05');
  assert.deepEqual(decodeSnapshot(regB.payload).values, { a: 'for-a' });
  assert.equal(coap().registry.inflight, 0, 'the replaced relation\'s notification is dropped');
  assert.equal(coap().registry.relationOf('move-1')?.peer.port, b.port);
  await setValues(h.hub.core, ctx, { device: 'move-1' }, { a: 2 }, false);
  const [n] = await b.waitForNotifications(1);
  assert.ok(n);
  assert.deepEqual(decodeSnapshot(n.payload).values, { a: 2 });
  await waitFor('the notification to settle', () => coap().registry.inflight === 0);
  await sleep(300);
  assert.equal(a.notifications.length, 1, 'the old endpoint gets nothing more: no new notification, no retransmission');
  const s = await state('move-1');
  assert.equal(s.endpoint, `${coap().registry.relationOf('move-1')?.peer.address}%${b.port}`);
  assert.equal(s.duplicate, null, 'A then B is a move, not a duplicate');
  await deregister(b, 'move-1');
});

test('observe - registrations alternating A, B, A within the keepalive flag a duplicate identity', async () => {
  await addDevice(h.hub.core, ctx, { id: 'twin-1', values: { a: 1 } });
  const a = await h.client();
  const b = await h.client();
  for (const dev of [a, b, a]) assert.equal((await register(dev, 'twin-1')).code, '2.05');
  const s = await waitFor('the duplicate flag', async () => {
    const st = await state('twin-1');
    return st.duplicate ? st : undefined;
  });
  assert.ok(s.duplicate);
  assert.equal(s.duplicate.endpoints.length, 2);
  assert.ok(s.duplicate.endpoints.some((e) => e.endsWith(`%${a.port}`)), `A (${a.port}) in ${s.duplicate.endpoints.join(', ')}`);
  assert.ok(s.duplicate.endpoints.some((e) => e.endsWith(`%${b.port}`)), `B (${b.port}) in ${s.duplicate.endpoints.join(', ')}`);
  // The state is in memory and may run one fsync ahead of the log (docs/decisions.md, 2): wait for the event.
  const mine = await waitFor('the device.duplicate event in the log', async () => {
    const events = await h.api<{ events: Array<{ type: string; data: { device: string; endpoints: string[] } }> }>('GET', '/events?type=device.duplicate');
    assert.equal(events.status, 200);
    const found = events.body.events.filter((e) => e.data.device === 'twin-1');
    return found.length > 0 ? found : undefined;
  });
  assert.equal(mine.length, 1);
  assert.deepEqual([...(mine[0]?.data.endpoints ?? [])].sort(), [...s.duplicate.endpoints].sort());
  await deregister(a, 'twin-1');
});

// ---------------------------------------------------------------------------------------------
// Block-wise transfer (RFC 7959)
// ---------------------------------------------------------------------------------------------

const LONG = 'x'.repeat(1500) + 'y'.repeat(1500) + 'z'.repeat(200);

test('block2 - a snapshot over 2 KB: registration gets block 0 (M=1, SZX=6, Size2); GET + Block2 reassembles it', async () => {
  await addDevice(h.hub.core, ctx, { id: 'big-1', values: { blob: LONG, n: 1 } });
  const bytes = Buffer.from(snapshotOf('big-1').bytes);
  assert.ok(bytes.length > 2048, `the snapshot is ${bytes.length} bytes`);
  const dev = await h.client();
  const first = await register(dev, 'big-1');
  assert.equal(first.code, '2.05');
  assert.deepEqual(first.block2, { num: 0, more: true, szx: 6 });
  assert.equal(first.size2, bytes.length);
  assert.equal(first.payload.length, 1024);
  assert.equal(typeof first.observe, 'number');
  const etag = hex(first.etag);
  const parts: Buffer[] = [first.payload];
  for (let num = 1; ; num++) {
    const r = await dev.request({ code: Method.Get, path: '/d/big-1/c', block2: { num, szx: 6 } });
    assert.equal(r.code, '2.05');
    assert.equal(r.observe, undefined, 'block requests carry no Observe');
    assert.equal(hex(r.etag), etag, 'every block has the first block ETag');
    assert.equal(r.block2?.num, num);
    assert.equal(r.block2?.szx, 6);
    parts.push(r.payload);
    if (!r.block2?.more) break;
    assert.equal(r.payload.length, 1024);
    assert.ok(num < 10, 'the transfer ends');
  }
  assert.equal(parts.length, Math.ceil(bytes.length / 1024));
  assert.equal(Buffer.concat(parts).toString('hex'), bytes.toString('hex'), 'the blocks are exactly the snapshot bytes');
  assert.equal(decodeSnapshot(Buffer.concat(parts)).values['blob'], LONG);
  assert.ok(coap().registry.relationOf('big-1'), 'block requests do not end the relation');

  const past = await dev.request({ code: Method.Get, path: '/d/big-1/c', block2: { num: parts.length, szx: 6 } });
  assert.equal(past.code, '4.02', 'a block past the end');
  await deregister(dev, 'big-1');
});

test('block2 - a smaller SZX gets blocks of that size', async () => {
  await addDevice(h.hub.core, ctx, { id: 'big-2', values: { blob: LONG } });
  const bytes = Buffer.from(snapshotOf('big-2').bytes);
  const dev = await h.client();
  const b0 = await dev.request({ code: Method.Get, path: '/d/big-2/c', block2: { num: 0, szx: 2 } });
  assert.equal(b0.code, '2.05');
  assert.deepEqual(b0.block2, { num: 0, more: true, szx: 2 });
  assert.equal(b0.payload.toString('hex'), bytes.subarray(0, 64).toString('hex'));
  const b5 = await dev.request({ code: Method.Get, path: '/d/big-2/c', block2: { num: 5, szx: 2 } });
  assert.deepEqual(b5.block2, { num: 5, more: true, szx: 2 });
  assert.equal(b5.payload.toString('hex'), bytes.subarray(320, 384).toString('hex'));
  const lastNum = Math.ceil(bytes.length / 256) - 1;
  const last = await dev.request({ code: Method.Get, path: '/d/big-2/c', block2: { num: lastNum, szx: 4 } });
  assert.equal(last.code, '2.05');
  assert.deepEqual(last.block2, { num: lastNum, more: false, szx: 4 });
  assert.equal(last.payload.toString('hex'), bytes.subarray(lastNum * 256).toString('hex'));
  assert.equal((await dev.request({ code: Method.Get, path: '/d/big-2/c', block2: { num: lastNum + 1, szx: 4 } })).code, '4.02');
});

test('block2 - a notification of a big snapshot carries block 0 and the device fetches the rest', async () => {
  await addDevice(h.hub.core, ctx, { id: 'big-3', values: { blob: 'small' } });
  const dev = await h.client();
  const reg = await register(dev, 'big-3');
  assert.equal(reg.code, '2.05');
  assert.equal(reg.block2, undefined, 'a small snapshot goes in one piece');
  await setValues(h.hub.core, ctx, { device: 'big-3' }, { blob: LONG }, false);
  const [n] = await dev.waitForNotifications(1);
  assert.ok(n);
  assert.deepEqual(n.block2, { num: 0, more: true, szx: 6 });
  const bytes = Buffer.from(snapshotOf('big-3').bytes);
  assert.equal(n.size2, bytes.length);
  const parts: Buffer[] = [n.payload];
  for (let num = 1; num * 1024 < bytes.length; num++) {
    const r = await dev.request({ code: Method.Get, path: '/d/big-3/c', block2: { num, szx: 6 } });
    assert.equal(hex(r.etag), hex(n.etag));
    parts.push(r.payload);
  }
  assert.equal(decodeSnapshot(Buffer.concat(parts)).values['blob'], LONG);
  await waitFor('the notification to settle', () => coap().registry.inflight === 0);
  await deregister(dev, 'big-3');
});

test('block2 - a change between blocks shows in the next block\'s ETag', async () => {
  await addDevice(h.hub.core, ctx, { id: 'big-4', values: { blob: LONG } });
  const dev = await h.client();
  const b0 = await dev.request({ code: Method.Get, path: '/d/big-4/c', block2: { num: 0, szx: 6 } });
  assert.equal(b0.code, '2.05');
  await setValues(h.hub.core, ctx, { device: 'big-4' }, { blob: LONG.replace('x', 'w') }, false);
  const b1 = await dev.request({ code: Method.Get, path: '/d/big-4/c', block2: { num: 1, szx: 6 } });
  assert.equal(b1.code, '2.05');
  assert.notEqual(hex(b1.etag), hex(b0.etag), 'the device can tell that the snapshot changed and start again');
  assert.equal(hex(b1.etag), hex(snapshotOf('big-4').snapshot.hash));
});

test('observe - removing an observed device ends its relation', async () => {
  await addDevice(h.hub.core, ctx, { id: 'gone-1', values: { a: 1 } });
  const dev = await h.client();
  assert.equal((await register(dev, 'gone-1')).code, '2.05');
  const removedBefore = coap().counters.relationsEnded.removed;
  const del = await h.api('DELETE', '/devices/gone-1');
  assert.equal(del.status, 200);
  await waitFor('the relation to end', () => coap().registry.relationOf('gone-1') === undefined);
  assert.equal(coap().counters.relationsEnded.removed - removedBefore, 1);
  assert.equal(coap().registry.inflight, 0);
  assert.equal((await dev.request({ code: Method.Get, path: '/d/gone-1/c' })).code, '4.04');
});
