/**
 * The hub's CoAP endpoint over real UDP on loopback, requests side: config reads, /.well-known/core, acks,
 * telemetry and IPv6 (docs/protocol.md, "Resources", "Response codes", "Ack", "Telemetry").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { encodeDeterministic } from '../../protocol/cbor.ts';
import { AckStatus, encodeAck, encodeTelemetry } from '../../protocol/ack.ts';
import { ContentFormat, Method } from '../../protocol/coap.ts';
import { decodeSnapshot } from '../../protocol/snapshot.ts';
import { addDevice, setValues } from '../domain/index.ts';
import type { DeviceState } from '../domain/queries.ts';
import { sleep, useCoapHub } from '../../test/helpers/coap-client.ts';
import type { CoapTestClient } from '../../test/helpers/coap-client.ts';

const h = useCoapHub('henge-coap-requests-');
const ctx = { actor: 'test' };
let shared: CoapTestClient | undefined;
/** The device socket most tests share, opened on first use. */
const device = async (): Promise<CoapTestClient> => (shared ??= await h.client());

async function state(id: string): Promise<DeviceState> {
  const r = await h.api<DeviceState>('GET', `/devices/${id}/state`);
  assert.equal(r.status, 200);
  return r.body;
}

interface EventsPage {
  readonly events: Array<{ seq: number; type: string; data: { device?: string; version?: number; status?: string } }>;
}
async function eventsOf(type: string, device: string): Promise<EventsPage['events']> {
  const r = await h.api<EventsPage>('GET', `/events?type=${type}&device=${device}`);
  assert.equal(r.status, 200);
  return r.body.events;
}

const currentSnapshot = (id: string) => {
  const s = h.hub.core.state.snapshots.get(id);
  assert.ok(s, `device ${id} has a snapshot`);
  return s;
};

// ---------------------------------------------------------------------------------------------
// Config reads
// ---------------------------------------------------------------------------------------------

test('config - GET /d/{id}/c answers 2.05, CBOR, ETag = hash, and the effective values', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'get-1', values: { mode: 'heat', setpoint: 21.5, led: true, count: 3 } });
  const r = await dev.request({ code: Method.Get, path: '/d/get-1/c' });
  assert.equal(r.code, '2.05');
  assert.equal(r.msg.ack, true, 'piggybacked in the ACK');
  assert.equal(r.contentFormat, ContentFormat.Cbor);
  assert.equal(r.observe, undefined, 'a plain GET carries no Observe option');
  const snap = decodeSnapshot(r.payload);
  assert.deepEqual(snap.values, { mode: 'heat', setpoint: 21.5, led: true, count: 3 });
  const expected = currentSnapshot('get-1');
  assert.equal(snap.version, expected.snapshot.version);
  assert.equal(r.etag?.toString('hex'), Buffer.from(expected.snapshot.hash).toString('hex'), 'ETag is the snapshot hash');
  assert.equal(Buffer.from(snap.hash).toString('hex'), r.etag.toString('hex'));
  assert.equal(r.payload.toString('hex'), Buffer.from(expected.bytes).toString('hex'), 'the payload is the snapshot bytes');
  const rest = await h.api<{ values: Record<string, unknown>; hash: string }>('GET', '/devices/get-1/config');
  assert.deepEqual(snap.values, rest.body.values, 'CoAP and REST agree on the effective values');
  assert.equal(r.etag?.toString('hex'), rest.body.hash);
});

test('config - GET with the current ETag answers 2.03 Valid without payload; a stale ETag gets 2.05', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'etag-1', values: { a: 1 } });
  const first = await dev.request({ code: Method.Get, path: '/d/etag-1/c' });
  assert.ok(first.etag);
  // Until the hub has the device's ack for this version, even a current ETag gets the whole snapshot
  // (a hub rebuilt with equal values must still reach the device with its new incarnation).
  const unacked = await dev.request({ code: Method.Get, path: '/d/etag-1/c', etag: first.etag });
  assert.equal(unacked.code, '2.05');
  const version = decodeSnapshot(first.payload).version;
  const acked = await dev.request({ code: Method.Post, path: '/d/etag-1/a', payload: Buffer.from(encodeAck({ version, status: AckStatus.Applied })), contentFormat: ContentFormat.Cbor });
  assert.equal(acked.code, '2.04');
  const valid = await dev.request({ code: Method.Get, path: '/d/etag-1/c', etag: first.etag });
  assert.equal(valid.code, '2.03');
  assert.equal(valid.payload.length, 0);
  assert.deepEqual(valid.etag, first.etag);
  await setValues(h.hub.core, ctx, { device: 'etag-1' }, { a: 2 }, false);
  const stale = await dev.request({ code: Method.Get, path: '/d/etag-1/c', etag: first.etag });
  assert.equal(stale.code, '2.05');
  assert.deepEqual(decodeSnapshot(stale.payload).values, { a: 2 });
  assert.notDeepEqual(stale.etag, first.etag);
});

test('config - unknown device and bad paths answer 4.04; POST on /c answers 4.05', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'paths-1' });
  assert.equal((await dev.request({ code: Method.Get, path: '/d/nobody/c' })).code, '4.04');
  assert.equal((await dev.request({ code: Method.Get, path: '/d/paths-1/x' })).code, '4.04');
  assert.equal((await dev.request({ code: Method.Get, path: '/d/paths-1/c/more' })).code, '4.04');
  assert.equal((await dev.request({ code: Method.Get, path: '/nothing' })).code, '4.04');
  assert.equal((await dev.request({ code: Method.Get, path: '/' })).code, '4.04');
  assert.equal((await dev.request({ code: Method.Post, path: '/d/paths-1/c', payload: encodeAck({ version: 1, status: 0 }) })).code, '4.05');
  assert.equal((await dev.request({ code: Method.Put, path: '/d/paths-1/c' })).code, '4.05');
  assert.equal((await dev.request({ code: Method.Get, path: '/d/paths-1/a' })).code, '4.05');
  assert.equal((await dev.request({ code: Method.Get, path: '/d/paths-1/t' })).code, '4.05');
});

test('config - a NON GET gets a NON 2.05 with the same token', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'non-1', values: { x: 'y' } });
  const token = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const r = await dev.request({ code: Method.Get, path: '/d/non-1/c', confirmable: false, token });
  assert.equal(r.code, '2.05');
  assert.equal(r.msg.confirmable, false);
  assert.equal(r.msg.ack, false);
  assert.deepEqual(r.msg.token, token);
  assert.deepEqual(decodeSnapshot(r.payload).values, { x: 'y' });
});

test('discovery - /.well-known/core lists </d>; with ?d={id} the three resources, as link-format', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'wk-1' });
  const root = await dev.request({ code: Method.Get, path: '/.well-known/core' });
  assert.equal(root.code, '2.05');
  assert.equal(root.contentFormat, ContentFormat.LinkFormat);
  assert.equal(root.payload.toString(), '</d>;rt="henge.v1"');
  const one = await dev.request({ code: Method.Get, path: '/.well-known/core', query: ['d=wk-1'] });
  assert.equal(one.code, '2.05');
  assert.equal(one.contentFormat, ContentFormat.LinkFormat);
  const links = one.payload.toString().split(',');
  assert.equal(links.length, 3);
  assert.match(links[0] ?? '', /^<\/d\/wk-1\/c>;.*obs/);
  assert.match(links[1] ?? '', /^<\/d\/wk-1\/a>/);
  assert.match(links[2] ?? '', /^<\/d\/wk-1\/t>/);
  assert.ok(links.every((l) => l.includes('ct=60')), 'every resource is CBOR');
  assert.equal((await dev.request({ code: Method.Get, path: '/.well-known/core', query: ['d=nobody'] })).code, '4.04');
  assert.equal((await dev.request({ code: Method.Post, path: '/.well-known/core' })).code, '4.05');
});

// ---------------------------------------------------------------------------------------------
// Acks
// ---------------------------------------------------------------------------------------------

test('ack - an applied ack answers 2.04, converges the device, records latency and an ack.received event', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'ack-1', values: { a: 1 } });
  await setValues(h.hub.core, ctx, { device: 'ack-1' }, { a: 2 }, false);
  const version = currentSnapshot('ack-1').snapshot.version;
  assert.equal((await state('ack-1')).sync, 'pending');
  const r = await dev.request({ code: Method.Post, path: '/d/ack-1/a', contentFormat: ContentFormat.Cbor, payload: encodeAck({ version, status: AckStatus.Applied }) });
  assert.equal(r.code, '2.04');
  const s = await state('ack-1');
  assert.equal(s.appliedVersion, version);
  assert.equal(s.desiredVersion, version);
  assert.equal(s.sync, 'converged');
  assert.equal(s.lastAck?.status, 'applied');
  assert.equal(s.lastAck?.version, version);
  assert.equal(typeof s.lastAck?.latencyMs, 'number');
  assert.ok((s.lastAck?.latencyMs ?? -1) >= 0);
  const evs = await eventsOf('ack.received', 'ack-1');
  assert.equal(evs.length, 1);
  assert.equal(evs[0]?.data.version, version);
  assert.equal(evs[0]?.data.status, 'applied');
});

test('ack - status 2 (failed) for the current version marks the device failed', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'ack-2', values: { a: 1 } });
  const v1 = currentSnapshot('ack-2').snapshot.version;
  assert.equal((await dev.request({ code: Method.Post, path: '/d/ack-2/a', payload: encodeAck({ version: v1, status: AckStatus.Applied }) })).code, '2.04');
  await setValues(h.hub.core, ctx, { device: 'ack-2' }, { a: 99 }, false);
  const v2 = currentSnapshot('ack-2').snapshot.version;
  const r = await dev.request({ code: Method.Post, path: '/d/ack-2/a', contentFormat: ContentFormat.Cbor, payload: encodeAck({ version: v2, status: AckStatus.Failed, message: 'flash full' }) });
  assert.equal(r.code, '2.04');
  const s = await state('ack-2');
  assert.equal(s.sync, 'failed');
  assert.equal(s.appliedVersion, v1, 'a failed ack does not move the applied version');
  assert.equal(s.lastAck?.status, 'failed');
  assert.equal(s.lastAck?.message, 'flash full');
});

test('ack - bad CBOR 4.00, wrong shape 4.00, Content-Format 50 4.15, over 1024 bytes 4.13; nothing recorded', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'ack-3', values: { a: 1 } });
  const post = (payload: Uint8Array, contentFormat?: number) =>
    dev.request({ code: Method.Post, path: '/d/ack-3/a', payload, ...(contentFormat !== undefined ? { contentFormat } : {}) });
  assert.equal((await post(Buffer.from('a201', 'hex'))).code, '4.00', 'truncated CBOR');
  assert.equal((await post(Buffer.from([0xff, 0x00]))).code, '4.00', 'a lone break is not CBOR');
  assert.equal((await post(encodeDeterministic([1, 0]))).code, '4.00', 'an array is not an ack');
  assert.equal((await post(encodeDeterministic(new Map([[1, 1], [2, 9]])))).code, '4.00', 'status out of range');
  assert.equal((await post(encodeDeterministic(new Map([[2, 0]])))).code, '4.00', 'no version');
  assert.equal((await post(encodeAck({ version: 1, status: 0 }), 50)).code, '4.15', 'JSON is not accepted');
  assert.equal((await post(Buffer.alloc(1025, 0x41), ContentFormat.Cbor)).code, '4.13');
  assert.equal((await eventsOf('ack.received', 'ack-3')).length, 0);
  assert.equal((await state('ack-3')).lastAck, null);
});

test('ack - a retransmitted CON ack (same message id) is answered again and recorded once', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'ack-4', values: { a: 1 } });
  const version = currentSnapshot('ack-4').snapshot.version;
  const mid = dev.nextMid();
  const token = Buffer.from([9, 9, 9]);
  const payload = encodeAck({ version, status: AckStatus.Applied });
  const duplicatesBefore = h.hub.coap?.counters.duplicatesAnswered ?? 0;
  const first = await dev.request({ code: Method.Post, path: '/d/ack-4/a', payload, messageId: mid, token });
  assert.equal(first.code, '2.04');
  const again = await dev.request({ code: Method.Post, path: '/d/ack-4/a', payload, messageId: mid, token });
  assert.equal(again.code, '2.04');
  assert.equal(again.msg.messageId, mid);
  assert.deepEqual(again.msg.token, token);
  assert.equal((h.hub.coap?.counters.duplicatesAnswered ?? 0) - duplicatesBefore, 1);
  await sleep(100);
  assert.equal((await eventsOf('ack.received', 'ack-4')).length, 1, 'the duplicate is not recorded');
  // The same ack again under a new message id is answered too and changes nothing (acks are idempotent).
  assert.equal((await dev.request({ code: Method.Post, path: '/d/ack-4/a', payload })).code, '2.04');
  const s = await state('ack-4');
  assert.equal(s.appliedVersion, version);
  assert.equal(s.sync, 'converged');
});

test('ack - an ack for a version the hub never sent is recorded but does not move the applied version', async () => {
  await addDevice(h.hub.core, ctx, { id: 'ack-5', values: { a: 1 } });
  const desired = currentSnapshot('ack-5').snapshot.version;
  const never = desired + 1000;
  const dev = await device();
  const r = await dev.request({ code: Method.Post, path: '/d/ack-5/a', payload: encodeAck({ version: never, status: AckStatus.Applied }) });
  assert.equal(r.code, '2.04');
  const evs = await eventsOf('ack.received', 'ack-5');
  assert.equal(evs.length, 1, 'recorded');
  assert.equal(evs[0]?.data.version, never);
  const s = await state('ack-5');
  assert.equal(s.appliedVersion, null, `an ack for version ${never} (the hub sent only ${desired}) must not set the applied version`);
  assert.equal(s.sync, 'pending');
});

test('ack - acks arriving together share one durable batch; each is its own event, its device the actor', async () => {
  const n = 20;
  const ids = Array.from({ length: n }, (_, i) => `burst-${i}`);
  const devs = await Promise.all(ids.map(() => h.client()));
  for (const id of ids) await addDevice(h.hub.core, ctx, { id, values: { a: 1 } });
  const batchesBefore = h.hub.coap?.counters.ackBatches ?? Number.NaN;
  // Sent in one synchronous block: all are readable when the hub's loop next polls its socket.
  const answers = ids.map((id, i) => {
    const dev = devs[i];
    assert.ok(dev);
    return dev.request({ code: Method.Post, path: `/d/${id}/a`, contentFormat: ContentFormat.Cbor, payload: encodeAck({ version: currentSnapshot(id).snapshot.version, status: AckStatus.Applied }) });
  });
  const codes = (await Promise.all(answers)).map((r) => r.code);
  assert.deepEqual(codes, ids.map(() => '2.04'));
  const batches = (h.hub.coap?.counters.ackBatches ?? Number.NaN) - batchesBefore;
  assert.ok(batches >= 1 && batches <= 2, `${n} acks in ${batches} batches`);
  const r = await h.api<{ events: Array<{ actor: string; data: { device: string } }> }>('GET', '/events?type=ack.received&limit=1000');
  const burst = r.body.events.filter((e) => e.data.device.startsWith('burst-'));
  assert.deepEqual(
    burst.map((e) => e.actor).sort(),
    ids.map((id) => `device:${id}`).sort(),
  );
  for (const id of ids) assert.equal((await state(id)).sync, 'converged');
});

test('ack - an ack for an unknown device answers 4.04', async () => {
  const dev = await device();
  const r = await dev.request({ code: Method.Post, path: '/d/ghost/a', payload: encodeAck({ version: 1, status: 0 }) });
  assert.equal(r.code, '4.04');
});

// ---------------------------------------------------------------------------------------------
// Telemetry
// ---------------------------------------------------------------------------------------------

test('telemetry - POST /d/{id}/t answers 2.04; the state keeps the last values and the report count', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'tel-1' });
  const r1 = await dev.request({ code: Method.Post, path: '/d/tel-1/t', contentFormat: ContentFormat.Cbor, payload: encodeTelemetry({ rssi: -61, _agent: 'fw 1.0', up: true }) });
  assert.equal(r1.code, '2.04');
  const r2 = await dev.request({ code: Method.Post, path: '/d/tel-1/t', payload: encodeTelemetry({ rssi: -55, temp: 21.25 }) });
  assert.equal(r2.code, '2.04');
  const s = await state('tel-1');
  assert.ok(s.telemetry);
  assert.equal(s.telemetry.reports, 2);
  assert.deepEqual(s.telemetry.values, { rssi: -55, _agent: 'fw 1.0', up: true, temp: 21.25 });
  assert.equal(s.online, true, 'a request marks the device seen');
  assert.match(s.endpoint ?? '', new RegExp(`%${dev.port}$`));
  assert.equal((await h.api<EventsPage>('GET', '/events?device=tel-1&type=ack')).body.events.length, 0, 'telemetry is not logged');
});

test('telemetry - a bad report answers 4.00 and changes nothing', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'tel-2' });
  const post = (payload: Uint8Array) => dev.request({ code: Method.Post, path: '/d/tel-2/t', payload });
  assert.equal((await post(Buffer.from('a1', 'hex'))).code, '4.00', 'truncated');
  assert.equal((await post(encodeDeterministic([1, 2]))).code, '4.00', 'not a map');
  assert.equal((await post(encodeDeterministic(new Map([[1, 2]])))).code, '4.00', 'integer key');
  assert.equal((await post(encodeDeterministic({ 'bad key': 1 }))).code, '4.00', 'key syntax');
  assert.equal((await post(encodeDeterministic({ nested: { a: 1 } }))).code, '4.00', 'not a scalar');
  const tooMany = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i]));
  assert.equal((await post(encodeDeterministic(tooMany))).code, '4.00', 'more than 64 entries');
  assert.equal((await dev.request({ code: Method.Post, path: '/d/tel-2/t', payload: encodeTelemetry({ a: 1 }), contentFormat: 50 })).code, '4.15');
  assert.equal((await state('tel-2')).telemetry, null);
});

// ---------------------------------------------------------------------------------------------
// IPv6
// ---------------------------------------------------------------------------------------------

async function hasIpv6Loopback(): Promise<boolean> {
  const s = createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

test('ipv6 - a GET over ::1 works', async (t) => {
  if (!(await hasIpv6Loopback())) {
    t.skip('this machine has no IPv6 loopback (::1): cannot bind a udp6 socket to it');
    return;
  }
  await addDevice(h.hub.core, ctx, { id: 'v6-1', values: { family: 'inet6' } });
  const v6 = await h.client({ family: 6 });
  try {
    const r = await v6.request({ code: Method.Get, path: '/d/v6-1/c' });
    assert.equal(r.code, '2.05');
    assert.deepEqual(decodeSnapshot(r.payload).values, { family: 'inet6' });
    const s = await state('v6-1');
    assert.equal(s.endpoint, `::1%${v6.port}`);
  } finally {
    await v6.close();
  }
});

test('config - a plain GET carries Max-Age = the keepalive', async () => {
  const dev = await device();
  await addDevice(h.hub.core, ctx, { id: 'maxage-1' });
  const r = await dev.request({ code: Method.Get, path: '/d/maxage-1/c' });
  assert.equal(r.code, '2.05');
  assert.equal(r.maxAge, 60);
});
