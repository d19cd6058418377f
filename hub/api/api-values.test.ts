/** REST API, values at the device and group layers: PUT/PATCH/DELETE, atomicity, layer precedence with provenance, snapshot versions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useApiHub } from '../../test/helpers/api.ts';
import type { ErrorBody } from '../../test/helpers/api.ts';
import type { ConfigValue } from '../../protocol/snapshot.ts';
import type { EffectiveConfig, Warning } from '../domain/index.ts';

// One hub on loopback in a temp folder for this file.
const { call, expectError, fieldsOf } = useApiHub('henge-api-values-');

interface ValuesReply {
  readonly seq: number | null;
  readonly changes: ReadonlyArray<{ key: string; from?: ConfigValue; to?: ConfigValue }>;
  readonly warnings: readonly Warning[];
}

async function values(path: string): Promise<Record<string, ConfigValue>> {
  const r = await call<{ values: Record<string, ConfigValue> }>('GET', `${path}/values`);
  assert.equal(r.status, 200);
  return r.body.values;
}

async function config(id: string): Promise<EffectiveConfig> {
  const r = await call<EffectiveConfig>('GET', `/devices/${id}/config`);
  assert.equal(r.status, 200);
  return r.body;
}

async function logLength(): Promise<number> {
  return (await call<{ logLength: number }>('GET', '/status')).body.logLength;
}

async function addDevice(body: Record<string, unknown>): Promise<void> {
  const r = await call('POST', '/devices', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

const THERMO = {
  type: 'object',
  properties: {
    setpoint: { type: 'number', minimum: 5, maximum: 30, default: 20 },
    mode: { enum: ['off', 'heat'], default: 'off' },
    count: { type: 'integer', minimum: 0 },
  },
};

let thermo: Promise<void> | undefined;
/** Publishes the thermo schema once, for the tests that bind devices to it. */
function withThermo(): Promise<void> {
  thermo ??= call('PUT', '/schemas/thermo', THERMO).then((r) => assert.ok(r.status === 201 || r.status === 200));
  return thermo;
}

test('values - PUT replaces the device layer, PATCH merges and null unsets', async () => {
  await addDevice({ id: 'val-1' });
  const put = await call<ValuesReply>('PUT', '/devices/val-1/values', { values: { a: 1, b: 'x' } });
  assert.equal(put.status, 200);
  assert.equal(typeof put.body.seq, 'number');
  assert.deepEqual(put.body.changes, [
    { key: 'a', to: 1 },
    { key: 'b', to: 'x' },
  ]);
  assert.deepEqual(put.body.warnings, []);
  assert.deepEqual(await values('/devices/val-1'), { a: 1, b: 'x' });

  const patch = await call<ValuesReply>('PATCH', '/devices/val-1/values', { values: { b: null, c: true, a: 1 } });
  assert.equal(patch.status, 200);
  assert.deepEqual(patch.body.changes, [
    { key: 'b', from: 'x' },
    { key: 'c', to: true },
  ]);
  assert.deepEqual(await values('/devices/val-1'), { a: 1, c: true });

  const replace = await call<ValuesReply>('PUT', '/devices/val-1/values', { values: { z: 0 } });
  assert.deepEqual(replace.body.changes, [
    { key: 'a', from: 1 },
    { key: 'c', from: true },
    { key: 'z', to: 0 },
  ]);
  assert.deepEqual(await values('/devices/val-1'), { z: 0 });
  const same = await call<ValuesReply>('PATCH', '/devices/val-1/values', { values: { z: 0 } });
  assert.deepEqual([same.status, same.body.seq, same.body.changes], [200, null, []], 'no change writes nothing');
});

test('values - DELETE unsets every value of a device, DELETE /values/:key unsets one', async () => {
  await addDevice({ id: 'val-2', values: { a: 1, b: 2, c: 3 } });
  const one = await call<ValuesReply>('DELETE', '/devices/val-2/values/b');
  assert.equal(one.status, 200);
  assert.deepEqual(one.body.changes, [{ key: 'b', from: 2 }]);
  assert.deepEqual(await values('/devices/val-2'), { a: 1, c: 3 });
  const absent = await call<ValuesReply>('DELETE', '/devices/val-2/values/nope');
  assert.deepEqual([absent.status, absent.body.seq], [200, null]);
  const all = await call<ValuesReply>('DELETE', '/devices/val-2/values');
  assert.equal(all.status, 200);
  assert.equal(all.body.changes.length, 2);
  assert.deepEqual(await values('/devices/val-2'), {});
  assert.deepEqual((await config('val-2')).values, {});
  expectError(await call('DELETE', '/devices/val-2/values/bad%20key'), 400, 'HENGE_E_VALIDATION');
});

test('values - a multi-key PATCH that breaks one key changes nothing', async () => {
  await withThermo();
  await addDevice({ id: 'th-1', schema: 'thermo', values: { setpoint: 21 } });
  const before = { values: await values('/devices/th-1'), config: await config('th-1'), log: await logLength() };

  const res = await call('PATCH', '/devices/th-1/values', { values: { mode: 'heat', setpoint: 99 } });
  const e = expectError(res, 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(
    (e.details.violations ?? []).map((v) => [v.field, v.rule, v.device]),
    [['values.setpoint', 'maximum', 'th-1']],
  );
  assert.match(e.message, /setpoint/);
  const two = expectError(await call('PATCH', '/devices/th-1/values', { values: { mode: 'cool', setpoint: 1 } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(
    fieldsOf(two).sort(),
    [
      ['values.mode', 'enum'],
      ['values.setpoint', 'minimum'],
    ],
    'every broken key is listed',
  );
  assert.equal(two.details['total'], 2);
  expectError(await call('PUT', '/devices/th-1/values', { values: { setpoint: 22, mode: 'boost' } }), 422, 'HENGE_E_SCHEMA_VIOLATION');

  assert.deepEqual(await values('/devices/th-1'), before.values);
  assert.deepEqual(await config('th-1'), before.config);
  assert.equal(await logLength(), before.log, 'no event was written');
  const last = await call<{ events: Array<{ seq: number }> }>('GET', '/events?order=desc&limit=1');
  assert.equal(last.body.events[0]?.seq, before.log);
});

test('values - a value of the wrong type for its field is refused, not coerced', async () => {
  await withThermo();
  await addDevice({ id: 'th-2', schema: 'thermo' });
  for (const [v, rule] of [
    ['5', 'type'],
    [5.5, 'type'],
    [true, 'type'],
    [-1, 'minimum'],
  ] as const) {
    const e = expectError(await call('PATCH', '/devices/th-2/values', { values: { count: v } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
    assert.deepEqual(fieldsOf(e), [['values.count', rule]], `count=${JSON.stringify(v)}`);
  }
  const sp = expectError(await call('PATCH', '/devices/th-2/values', { values: { setpoint: '21' } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(fieldsOf(sp), [['values.setpoint', 'type']]);
  assert.deepEqual(await values('/devices/th-2'), {});
  assert.equal((await call('PATCH', '/devices/th-2/values', { values: { count: 5 } })).status, 200);
  assert.deepEqual((await config('th-2')).values, { setpoint: 20, mode: 'off', count: 5 });
});

test('values - a key that is not a field of the schema, or not a valid key, is refused', async () => {
  await withThermo();
  await addDevice({ id: 'th-3', schema: 'thermo' });
  const unknown = expectError(await call('PATCH', '/devices/th-3/values', { values: { nope: 1 } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(fieldsOf(unknown), [['values.nope', 'unknown']]);
  const badKey = expectError(await call('PATCH', '/devices/th-3/values', { values: { 'bad key': 1 } }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(badKey), [['values.bad key', 'pattern']]);
  const tooLong = expectError(await call('PATCH', '/devices/th-3/values', { values: { s: 'x'.repeat(4097) } }), 400, 'HENGE_E_VALIDATION');
  assert.equal(fieldsOf(tooLong)[0]?.[0], 'body.values.s');
  expectError(await call('PATCH', '/devices/th-3/values', { values: { a: { b: 1 } } }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('PATCH', '/devices/th-3/values', { values: { a: 1 }, extra: true }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('PATCH', '/devices/th-3/values', { a: 1 }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(await values('/devices/th-3'), {});
});

test('values - a number JSON cannot carry (1e400) is refused, never stored as null', async () => {
  await addDevice({ id: 'inf-1', values: { ok: 1 } });
  assert.equal((await call('PUT', '/groups/inf-g', { selector: 'inf=1' })).status, 200);
  const log = await logLength();
  for (const [path, raw] of [
    ['/devices/inf-1/values', '{"values":{"big":1e400}}'],
    ['/devices/inf-1/values', '{"values":{"small":-1e999}}'],
    ['/groups/inf-g/values', '{"values":{"big":1e400}}'],
  ] as const) {
    const r = await call('PATCH', path, undefined, { raw });
    assert.equal(r.status, 400, `PATCH ${path} ${raw} answered ${r.status} ${JSON.stringify(r.body)}`);
    assert.ok(['HENGE_E_VALIDATION', 'HENGE_E_MALFORMED_BODY'].includes((r.body as ErrorBody).code));
  }
  assert.deepEqual(await values('/devices/inf-1'), { ok: 1 });
  assert.deepEqual(await values('/groups/inf-g'), {});
  assert.equal(await logLength(), log, 'nothing was written');
});

test('values - text is at most 4,096 bytes of UTF-8 (not characters) and never a lone surrogate; __proto__ is refused by DELETE too', async () => {
  await addDevice({ id: 'txt-1', values: { ok: 'a'.repeat(4096) } });
  const log = await logLength();
  // 1,366 × '€' is 1,366 characters (the API schema's maxLength passes it) but 4,098 bytes on the wire.
  const wide = expectError(await call('PATCH', '/devices/txt-1/values', { values: { w: '€'.repeat(1366), ok: 'b' } }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(wide), [['values.w', 'maxBytes']]);
  const lone = expectError(await call('PATCH', '/devices/txt-1/values', { values: { s: 'x\ud800y' } }), 400, 'HENGE_E_VALIDATION');
  assert.deepEqual(fieldsOf(lone), [['values.s', 'utf8']]);
  expectError(await call('PUT', '/groups/txt-g', { selector: 'txt=1', values: { w: '€'.repeat(1366) } }), 400, 'HENGE_E_VALIDATION');
  expectError(await call('DELETE', '/devices/txt-1/values/__proto__'), 400, 'HENGE_E_VALIDATION');
  assert.equal(await logLength(), log, 'nothing was written');
  assert.equal((await call('PATCH', '/devices/txt-1/values', { values: { w: '€'.repeat(1365), pair: '\ud83d\ude00' } })).status, 200);
  assert.deepEqual(await values('/devices/txt-1'), { ok: 'a'.repeat(4096), w: '€'.repeat(1365), pair: '😀' });
});

test('values - a device without a schema never gets over 256 values, whichever layer adds them', async () => {
  const many = (prefix: string, n: number): Record<string, number> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i]));
  await addDevice({ id: 'wide-1', labels: { wide: '1' }, values: many('d', 200) });
  assert.equal((await call('PUT', '/groups/wide-g', { selector: 'wide=1', values: many('g', 56) })).status, 200);
  assert.equal(Object.keys((await config('wide-1')).values).length, 256);
  const log = await logLength();
  const byGroup = expectError(await call('PATCH', '/groups/wide-g/values', { values: { g56: 1 } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.deepEqual(fieldsOf(byGroup), [['values', 'maxFields']]);
  assert.equal(byGroup.details.violations?.[0]?.device, 'wide-1');
  expectError(await call('PATCH', '/devices/wide-1/values', { values: { d200: 1 } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  expectError(await call('PUT', '/groups/wide-h', { selector: 'wide=1', values: { h: 1 } }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  expectError(await call('POST', '/devices', { id: 'wide-2', labels: { wide: '1' }, values: many('d', 201) }), 422, 'HENGE_E_SCHEMA_VIOLATION');
  assert.equal(await logLength(), log, 'nothing was written');
  // Changing a value the group has, or one the device shares with it, adds nothing.
  assert.equal((await call('PATCH', '/groups/wide-g/values', { values: { g0: 'changed' } })).status, 200);
  assert.equal((await call('PATCH', '/devices/wide-1/values', { values: { g1: 'mine', d0: null } })).status, 200);
  assert.equal((await call('PATCH', '/devices/wide-1/values', { values: { d200: 1 } })).status, 200);
});

test('values - concurrent PATCHes through the API all land, each with its own seq', async () => {
  await addDevice({ id: 'conc-1' });
  const replies = await Promise.all(
    Array.from({ length: 40 }, (_, i) => call<ValuesReply>('PATCH', '/devices/conc-1/values', { values: { [`k${i}`]: i } })),
  );
  assert.ok(replies.every((r) => r.status === 200));
  assert.equal(new Set(replies.map((r) => r.body.seq)).size, 40);
  const v = await values('/devices/conc-1');
  assert.deepEqual(v, Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i])));
});

test('values - the group layer: PUT, PATCH, DELETE and DELETE key', async () => {
  assert.equal((await call('PUT', '/groups/gv', { selector: 'grp=v' })).status, 200);
  await addDevice({ id: 'gv-1', labels: { grp: 'v' } });
  const put = await call<ValuesReply>('PUT', '/groups/gv/values', { values: { a: 1, b: 2 } });
  assert.equal(put.status, 200);
  assert.deepEqual(put.body.warnings, []);
  assert.deepEqual(await values('/groups/gv'), { a: 1, b: 2 });
  assert.deepEqual((await config('gv-1')).values, { a: 1, b: 2 });
  assert.equal((await call('PATCH', '/groups/gv/values', { values: { b: null, c: 3 } })).status, 200);
  assert.deepEqual(await values('/groups/gv'), { a: 1, c: 3 });
  assert.equal((await call('DELETE', '/groups/gv/values/a')).status, 200);
  assert.deepEqual(await values('/groups/gv'), { c: 3 });
  assert.deepEqual((await config('gv-1')).values, { c: 3 });
  assert.equal((await call('DELETE', '/groups/gv/values')).status, 200);
  assert.deepEqual(await values('/groups/gv'), {});
  assert.deepEqual((await config('gv-1')).values, {});
  for (const [method, path, body] of [
    ['GET', '/groups/ghost/values', undefined],
    ['PUT', '/groups/ghost/values', { values: { a: 1 } }],
    ['PATCH', '/groups/ghost/values', { values: { a: 1 } }],
    ['DELETE', '/groups/ghost/values', undefined],
    ['DELETE', '/groups/ghost/values/a', undefined],
  ] as const) {
    expectError(await call(method, path, body), 404, 'HENGE_E_NOT_FOUND');
  }
});

const LAMP = {
  type: 'object',
  properties: {
    brightness: { type: 'integer', minimum: 0, maximum: 100, default: 50 },
    color: { enum: ['red', 'green', 'blue'], default: 'red' },
    label: { type: 'string', default: 'none' },
    speed: { type: 'number' },
  },
};

test('values - layers: schema default < group by priority < device, with provenance', async () => {
  assert.equal((await call('PUT', '/schemas/lamp', LAMP)).status, 201);
  assert.equal((await call('PUT', '/groups/lamps-low', { selector: 'kind=lamp', priority: 1, values: { brightness: 60, color: 'green', speed: 1.5 } })).status, 200);
  assert.equal((await call('PUT', '/groups/lamps-high', { selector: 'kind=lamp,room=hall', priority: 10, values: { brightness: 70 } })).status, 200);
  await addDevice({ id: 'lamp-1', labels: { kind: 'lamp', room: 'hall' }, schema: 'lamp', values: { color: 'blue' } });

  let c = await config('lamp-1');
  assert.deepEqual(c.values, { brightness: 70, color: 'blue', label: 'none', speed: 1.5 });
  assert.deepEqual(c.provenance, {
    brightness: { value: 70, layer: 'group', group: 'lamps-high' },
    color: { value: 'blue', layer: 'device' },
    label: { value: 'none', layer: 'default' },
    speed: { value: 1.5, layer: 'group', group: 'lamps-low' },
  });
  assert.deepEqual(c.groups, ['lamps-high', 'lamps-low'], 'the winning group first');
  assert.deepEqual(c.schema, { name: 'lamp', version: 1 });

  assert.equal((await call('DELETE', '/devices/lamp-1/values/color')).status, 200);
  c = await config('lamp-1');
  assert.deepEqual(c.provenance['color'], { value: 'green', layer: 'group', group: 'lamps-low' });

  assert.equal((await call('PUT', '/groups/lamps-low', { selector: 'kind=lamp', priority: 20 })).status, 200);
  c = await config('lamp-1');
  assert.deepEqual(c.provenance['brightness'], { value: 60, layer: 'group', group: 'lamps-low' }, 'a higher priority now wins');
  assert.deepEqual(c.groups, ['lamps-low', 'lamps-high']);

  assert.equal((await call('DELETE', '/groups/lamps-low/values')).status, 200);
  c = await config('lamp-1');
  assert.deepEqual(c.values, { brightness: 70, color: 'red', label: 'none' });
  assert.deepEqual(c.provenance['color'], { value: 'red', layer: 'default' });

  assert.equal((await call('PATCH', '/devices/lamp-1', { labels: { room: null } })).status, 200);
  c = await config('lamp-1');
  assert.deepEqual(c.provenance['brightness'], { value: 50, layer: 'default' }, 'leaving a group drops its values');
  assert.deepEqual(c.groups, ['lamps-low']);
});

test('values - among equal group priorities the group whose name sorts first wins', async () => {
  assert.equal((await call('PUT', '/groups/beta-eq', { selector: 'eq=1', priority: 3, values: { k: 'beta', only: 'b' } })).status, 200);
  assert.equal((await call('PUT', '/groups/alpha-eq', { selector: 'eq=1', priority: 3, values: { k: 'alpha' } })).status, 200);
  await addDevice({ id: 'eq-dev', labels: { eq: '1' } });
  const c = await config('eq-dev');
  assert.deepEqual(c.values, { k: 'alpha', only: 'b' });
  assert.deepEqual(c.provenance['k'], { value: 'alpha', layer: 'group', group: 'alpha-eq' });
  assert.deepEqual(c.provenance['only'], { value: 'b', layer: 'group', group: 'beta-eq' });
  assert.deepEqual(c.groups, ['alpha-eq', 'beta-eq']);
});

test('values - the snapshot version moves only when the effective config changes', async () => {
  await addDevice({ id: 'snap-1' });
  const v0 = await config('snap-1');
  const state = async (): Promise<number> => (await call<{ desiredVersion: number }>('GET', '/devices/snap-1/state')).body.desiredVersion;
  assert.equal(await state(), v0.version);

  const set = await call<ValuesReply>('PATCH', '/devices/snap-1/values', { values: { a: 1 } });
  const v1 = await config('snap-1');
  assert.equal(v1.version, set.body.seq, 'a change gets the seq of its event');
  assert.notEqual(v1.hash, v0.hash);

  // A group that does not match the device: nothing moves.
  assert.equal((await call('PUT', '/groups/snap-g', { selector: 'snap=yes', values: { b: 2 } })).status, 200);
  assert.deepEqual(await config('snap-1'), v1);
  // Renaming is not a config change.
  assert.equal((await call('PATCH', '/devices/snap-1', { name: 'renamed' })).status, 200);
  assert.deepEqual(await config('snap-1'), v1);
  // Joining the group adds b: the version moves.
  const joined = await call<{ seq: number }>('PATCH', '/devices/snap-1', { labels: { snap: 'yes' } });
  const v2 = await config('snap-1');
  assert.equal(v2.version, joined.body.seq);
  assert.deepEqual(v2.values, { a: 1, b: 2 });
  // The device layer takes over b with the same value: an event, but the same config.
  const same = await call<ValuesReply>('PATCH', '/devices/snap-1/values', { values: { b: 2 } });
  assert.equal(typeof same.body.seq, 'number');
  const v3 = await config('snap-1');
  assert.deepEqual([v3.version, v3.hash, v3.values], [v2.version, v2.hash, v2.values]);
  assert.deepEqual(v3.provenance['b'], { value: 2, layer: 'device' });
  // The group drops b: the device still has it, nothing moves.
  assert.equal((await call('DELETE', '/groups/snap-g/values/b')).status, 200);
  assert.deepEqual([(await config('snap-1')).version, (await config('snap-1')).hash], [v2.version, v2.hash]);
  assert.equal(await state(), v2.version);
  // Unsetting it now changes the config.
  const unset = await call<ValuesReply>('DELETE', '/devices/snap-1/values/b');
  assert.equal((await config('snap-1')).version, unset.body.seq);
  assert.equal(await state(), unset.body.seq);
});
