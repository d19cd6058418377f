/** REST API, devices: CRUD, labels through PATCH, schema binding, config and state, and their errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';
import type { DeviceRecord, DeviceState, EffectiveConfig } from '../domain/index.ts';

// One hub on loopback in a temp folder for this file.
const { call, expectError, fieldsOf } = useApiHub('henge-api-devices-');

interface DeviceReply {
  readonly device: DeviceRecord;
  readonly seq: number | null;
}

test('devices - add, get, list and remove a device; removal leaves a tombstone event', async () => {
  const added = await call<DeviceReply>('POST', '/devices', { id: 'crud-1', name: 'First', labels: { site: 'crud-a', room: 'hall' } });
  assert.equal(added.status, 201);
  assert.equal(typeof added.body.seq, 'number');
  const d = added.body.device;
  assert.deepEqual([d.id, d.name, d.labels, d.schema, d.values], ['crud-1', 'First', { site: 'crud-a', room: 'hall' }, null, {}]);
  const other = await call<DeviceReply>('POST', '/devices', { id: 'crud-2', labels: { site: 'crud-b' } });
  assert.equal(other.status, 201);
  assert.equal(other.body.device.name, 'crud-2', 'the name defaults to the id');

  const got = await call<DeviceReply>('GET', '/devices/crud-1');
  assert.equal(got.status, 200);
  assert.deepEqual(got.body.device, d);

  const all = await call<{ devices: DeviceRecord[] }>('GET', '/devices');
  assert.equal(all.status, 200);
  const ids = all.body.devices.map((x) => x.id);
  assert.ok(ids.includes('crud-1') && ids.includes('crud-2'));
  assert.deepEqual(ids, [...ids].sort(), 'listed in id order');
  const selected = await call<{ devices: DeviceRecord[] }>('GET', `/devices?selector=${encodeURIComponent('site=crud-a')}`);
  assert.deepEqual(selected.body.devices.map((x) => x.id), ['crud-1']);
  const setSel = await call<{ devices: DeviceRecord[] }>('GET', `/devices?selector=${encodeURIComponent('site in (crud-a|crud-b)')}`);
  assert.deepEqual(setSel.body.devices.map((x) => x.id), ['crud-1', 'crud-2']);

  const removed = await call<{ seq: number }>('DELETE', '/devices/crud-2');
  assert.equal(removed.status, 200);
  assert.equal(typeof removed.body.seq, 'number');
  expectError(await call('GET', '/devices/crud-2'), 404, 'HENGE_E_NOT_FOUND');
  expectError(await call('DELETE', '/devices/crud-2'), 404, 'HENGE_E_NOT_FOUND');
  const tomb = await call<{ events: Array<{ seq: number; type: string }> }>('GET', '/events?device=crud-2&type=device.removed');
  assert.deepEqual(tomb.body.events.map((e) => [e.seq, e.type]), [[removed.body.seq, 'device.removed']]);

  const readded = await call<DeviceReply>('POST', '/devices', { id: 'crud-2' });
  assert.equal(readded.status, 201, 'a removed id can be added again');
  assert.deepEqual(readded.body.device.labels, {});
});

test('devices - PATCH renames and relabels; null removes a label; no change writes nothing', async () => {
  assert.equal((await call('POST', '/devices', { id: 'lab-1', labels: { site: 'x', room: 'r1' } })).status, 201);
  const patched = await call<DeviceReply>('PATCH', '/devices/lab-1', { name: 'Lab', labels: { room: null, floor: '2' } });
  assert.equal(patched.status, 200);
  assert.equal(patched.body.device.name, 'Lab');
  assert.deepEqual(patched.body.device.labels, { site: 'x', floor: '2' });
  assert.equal(typeof patched.body.seq, 'number');
  const same = await call<DeviceReply>('PATCH', '/devices/lab-1', { name: 'Lab', labels: { floor: '2' } });
  assert.equal(same.status, 200);
  assert.equal(same.body.seq, null, 'nothing changed, nothing written');
  const bySel = await call<{ devices: DeviceRecord[] }>('GET', '/devices?selector=floor%3D2');
  assert.deepEqual(bySel.body.devices.map((x) => x.id), ['lab-1']);
  const noRoom = await call<{ devices: DeviceRecord[] }>('GET', `/devices?selector=${encodeURIComponent('site=x,!room')}`);
  assert.deepEqual(noRoom.body.devices.map((x) => x.id), ['lab-1']);

  const badKey = expectError(await call('PATCH', '/devices/lab-1', { labels: { 'Bad Key': 'v' } }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(badKey), [['labels.Bad Key', 'pattern']]);
  const badValue = expectError(await call('PATCH', '/devices/lab-1', { labels: { ok: 'not ok!' } }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(badValue), [['labels.ok', 'pattern']]);
  const unknown = expectError(await call('PATCH', '/devices/lab-1', { colour: 'red' }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(unknown), [['body.colour', 'unknown']]);
  const wrongType = expectError(await call('PATCH', '/devices/lab-1', { name: 5 }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(wrongType), [['body.name', 'type']]);
  const after = await call<DeviceReply>('GET', '/devices/lab-1');
  assert.deepEqual(after.body.device.labels, { site: 'x', floor: '2' }, 'refused patches changed nothing');
  assert.equal(after.body.device.name, 'Lab');
});

test('devices - an id that breaks the id rules is refused with 400 HENGE_E_INVALID_ID', async () => {
  for (const id of ['Bad_Id', '-leading-dash', 'a'.repeat(64), 'has space', 'ünï']) {
    const e = expectError(await call('POST', '/devices', { id }), 400, 'HENGE_E_INVALID_ID');
    assert.deepEqual(fieldsOf(e), [['id', 'pattern']]);
    assert.equal(e.details['id'], id);
  }
  const long = expectError(await call('POST', '/devices', { id: 'a'.repeat(200) }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(long), [['body.id', 'maxLength']]);
  const list = await call<{ devices: DeviceRecord[] }>('GET', '/devices');
  assert.equal(list.body.devices.some((d) => d.id.includes('_') || d.id.startsWith('-')), false);
});

test('devices - adding a device twice is refused with 409 HENGE_E_ALREADY_EXISTS', async () => {
  assert.equal((await call('POST', '/devices', { id: 'twice', name: 'one' })).status, 201);
  const e = expectError(await call('POST', '/devices', { id: 'twice', name: 'two' }), 409, 'HENGE_E_ALREADY_EXISTS');
  assert.equal(e.details['device'], 'twice');
  assert.equal((await call<DeviceReply>('GET', '/devices/twice')).body.device.name, 'one');
});

test('devices - every device route answers 404 HENGE_E_NOT_FOUND for an unknown device', async () => {
  const routes: Array<[string, string, unknown]> = [
    ['GET', '/devices/ghost', undefined],
    ['PATCH', '/devices/ghost', { name: 'x' }],
    ['DELETE', '/devices/ghost', undefined],
    ['GET', '/devices/ghost/config', undefined],
    ['GET', '/devices/ghost/state', undefined],
    ['GET', '/devices/ghost/values', undefined],
    ['PUT', '/devices/ghost/values', { values: { a: 1 } }],
    ['PATCH', '/devices/ghost/values', { values: { a: 1 } }],
    ['DELETE', '/devices/ghost/values', undefined],
    ['DELETE', '/devices/ghost/values/a', undefined],
  ];
  for (const [method, path, body] of routes) {
    const e = expectError(await call(method, path, body), 404, 'HENGE_E_NOT_FOUND');
    assert.match(e.message, /ghost/, `${method} ${path} names the device`);
  }
});

test('devices - config and state of a new device', async () => {
  const added = await call<DeviceReply>('POST', '/devices', { id: 'fresh' });
  const config = await call<EffectiveConfig>('GET', '/devices/fresh/config');
  assert.equal(config.status, 200);
  assert.equal(config.body.device, 'fresh');
  assert.equal(config.body.version, added.body.seq, 'the snapshot version is the seq of the event that made it');
  assert.match(config.body.hash, /^[0-9a-f]{16}$/);
  assert.deepEqual([config.body.values, config.body.provenance, config.body.schema, config.body.groups], [{}, {}, null, []]);
  const state = await call<DeviceState>('GET', '/devices/fresh/state');
  assert.equal(state.status, 200);
  assert.deepEqual(state.body, {
    device: 'fresh',
    online: false,
    observing: false,
    lastSeen: null,
    endpoint: null,
    desiredVersion: config.body.version,
    appliedVersion: null,
    sync: 'pending',
    lastAck: null,
    duplicate: null,
    telemetry: null,
  });
});

const GAUGE = { type: 'object', properties: { level: { type: 'integer', minimum: 0, maximum: 100, default: 10 }, unit: { enum: ['mm', 'cm'] } } };

test('devices - adding with a schema checks the values; an unknown schema is 404', async () => {
  assert.equal((await call('PUT', '/schemas/gauge', GAUGE)).status, 201);
  const missing = expectError(await call('POST', '/devices', { id: 'g-0', schema: 'nope' }), 404, 'HENGE_E_NOT_FOUND');
  assert.equal(missing.details['schema'], 'nope');
  const bad = expectError(await call('POST', '/devices', { id: 'g-1', schema: 'gauge', values: { level: 101, unit: 'm' } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(
    (bad.details.violations ?? []).map((v) => [v.field, v.rule, v.device]).sort(),
    [
      ['values.level', 'maximum', 'g-1'],
      ['values.unit', 'enum', 'g-1'],
    ],
  );
  expectError(await call('GET', '/devices/g-1'), 404, 'HENGE_E_NOT_FOUND');

  const ok = await call<DeviceReply>('POST', '/devices', { id: 'g-1', schema: 'gauge', values: { unit: 'cm' } });
  assert.equal(ok.status, 201);
  const config = await call<EffectiveConfig>('GET', '/devices/g-1/config');
  assert.deepEqual(config.body.values, { level: 10, unit: 'cm' });
  assert.deepEqual(config.body.schema, { name: 'gauge', version: 1 });
});

test('devices - rebinding a device to a schema through PATCH is checked against its values', async () => {
  assert.equal((await call('PUT', '/schemas/gauge', GAUGE)).status < 300, true);
  assert.equal((await call('POST', '/devices', { id: 'rebind', values: { level: 500 } })).status, 201);
  const conflict = expectError(await call('PATCH', '/devices/rebind', { schema: 'gauge' }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(fieldsOf(conflict), [['values.level', 'maximum']]);
  assert.equal((await call<DeviceReply>('GET', '/devices/rebind')).body.device.schema, null);
  expectError(await call('PATCH', '/devices/rebind', { schema: 'nope' }), 404, 'HENGE_E_NOT_FOUND');

  assert.equal((await call('PUT', '/devices/rebind/values', { values: { level: 50 } })).status, 200);
  const bound = await call<DeviceReply>('PATCH', '/devices/rebind', { schema: 'gauge' });
  assert.equal(bound.status, 200);
  assert.equal(bound.body.device.schema, 'gauge');
  assert.deepEqual((await call<EffectiveConfig>('GET', '/devices/rebind/config')).body.schema, { name: 'gauge', version: 1 });
  const unbound = await call<DeviceReply>('PATCH', '/devices/rebind', { schema: null });
  assert.equal(unbound.body.device.schema, null);
  assert.deepEqual((await call<EffectiveConfig>('GET', '/devices/rebind/config')).body.values, { level: 50 }, 'no schema: no defaults');
});

test('devices - the body is validated strictly: unknown fields and wrong types are refused, never dropped or coerced', async () => {
  const unknown = expectError(await call('POST', '/devices', { id: 'strict-1', colour: 'red' }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(unknown), [['body.colour', 'unknown']]);
  expectError(await call('GET', '/devices/strict-1'), 404, 'HENGE_E_NOT_FOUND');
  const idType = expectError(await call('POST', '/devices', { id: 5 }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(idType), [['body.id', 'type']]);
  const noId = expectError(await call('POST', '/devices', { name: 'x' }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(noId), [['body.id', 'required']]);
  expectError(await call('POST', '/devices', { id: 'strict-2', labels: { a: 1 } }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('POST', '/devices', { id: 'strict-3', values: { a: { b: 1 } } }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('POST', '/devices', { id: 'strict-4', values: { a: [1] } }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('POST', '/devices', { id: 'strict-5', schema: 7 }), 400, 'HENGE_E_VALIDATION');
  for (const id of ['strict-2', 'strict-3', 'strict-4', 'strict-5']) expectError(await call('GET', `/devices/${id}`), 404, 'HENGE_E_NOT_FOUND');

  // A string stays a string: "5" is not turned into 5 (no schema, so any scalar is allowed).
  assert.equal((await call('POST', '/devices', { id: 'strict-6', values: { n: '5', b: 'true' } })).status, 201);
  assert.deepEqual((await call<EffectiveConfig>('GET', '/devices/strict-6/config')).body.values, { n: '5', b: 'true' });
});

test('devices - an invalid selector in the device list is refused with 400 HENGE_E_INVALID_SELECTOR', async () => {
  for (const sel of ['site=a b', '=x', 'Bad Key=1', 'site in ()']) {
    const e = expectError(await call('GET', `/devices?selector=${encodeURIComponent(sel)}`), 400, 'HENGE_E_INVALID_SELECTOR');
    assert.deepEqual(fieldsOf(e), [['selector', 'syntax']]);
  }
});
