import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigValue } from '../../protocol/snapshot.ts';
import { Layer, applyPatch, compareGroupsForMerge, effectiveValues, effectiveWithProvenance } from './config.ts';
import type { GroupRecord } from './config.ts';
import { FieldType } from './schema.ts';
import type { SchemaRecord } from './schema.ts';

function group(name: string, priority: number, values: Record<string, ConfigValue>): GroupRecord {
  return { name, selector: '*', priority, values, createdAt: 0, updatedAt: 0 };
}

const sorted = (groups: readonly GroupRecord[]): GroupRecord[] => [...groups].sort(compareGroupsForMerge);

const schema: SchemaRecord = {
  name: 'thermostat',
  version: 1,
  publishedAt: 0,
  fields: [
    { name: 'mode', type: FieldType.Enum, required: true, enum: ['eco', 'comfort'], default: 'eco' },
    { name: 'setpoint', type: FieldType.Number, required: false, default: 20 },
    { name: 'interval', type: FieldType.Integer, required: false },
    { name: 'label', type: FieldType.String, required: false },
  ],
};

// --- compareGroupsForMerge ---------------------------------------------------------------------

test('config - compareGroupsForMerge puts higher priority later so that it is applied last', () => {
  const order = sorted([group('a', 10, {}), group('b', -5, {}), group('c', 0, {}), group('d', 100, {})]).map((g) => g.name);
  assert.deepEqual(order, ['b', 'c', 'a', 'd']);
});

test('config - compareGroupsForMerge puts the group whose name sorts first last among equal priorities', () => {
  const order = sorted([group('alpha', 1, {}), group('gamma', 1, {}), group('beta', 1, {}), group('zulu', 0, {})]).map((g) => g.name);
  assert.deepEqual(order, ['zulu', 'gamma', 'beta', 'alpha']);
});

test('config - compareGroupsForMerge gives 0 only for the same name and priority', () => {
  assert.equal(compareGroupsForMerge(group('a', 1, {}), group('a', 1, { x: 1 })), 0);
  assert.ok(compareGroupsForMerge(group('a', 1, {}), group('b', 1, {})) > 0);
  assert.ok(compareGroupsForMerge(group('b', 1, {}), group('a', 1, {})) < 0);
  assert.ok(compareGroupsForMerge(group('a', 1, {}), group('a', 2, {})) < 0);
});

// --- effectiveValues -----------------------------------------------------------------------------

test('config - effective values layer defaults < groups < device', () => {
  const groups = sorted([group('site', 1, { setpoint: 21, mode: 'comfort' })]);
  assert.deepEqual(effectiveValues({ values: {} }, [], schema), { mode: 'eco', setpoint: 20 });
  assert.deepEqual(effectiveValues({ values: {} }, groups, schema), { mode: 'comfort', setpoint: 21 });
  assert.deepEqual(effectiveValues({ values: { setpoint: 19 } }, groups, schema), { mode: 'comfort', setpoint: 19 });
});

test('config - a group with higher priority wins over a lower one', () => {
  const groups = sorted([group('zz-high', 10, { setpoint: 25 }), group('aa-low', 1, { setpoint: 18, interval: 5 })]);
  assert.deepEqual(effectiveValues({ values: {} }, groups, schema), { mode: 'eco', setpoint: 25, interval: 5 });
  assert.deepEqual(effectiveValues({ values: {} }, groups, undefined), { setpoint: 25, interval: 5 });
});

test('config - among equal priorities the group whose name sorts first wins', () => {
  const groups = sorted([group('beta', 5, { setpoint: 2 }), group('alpha', 5, { setpoint: 1 }), group('gamma', 5, { setpoint: 3, label: 'g' })]);
  assert.deepEqual(effectiveValues({ values: {} }, groups, schema), { mode: 'eco', setpoint: 1, label: 'g' });
  assert.deepEqual(effectiveValues({ values: {} }, groups, undefined), { setpoint: 1, label: 'g' });
});

test('config - device values win over every group whatever its priority', () => {
  const groups = sorted([group('top', Number.MAX_SAFE_INTEGER, { mode: 'comfort' })]);
  assert.deepEqual(effectiveValues({ values: { mode: 'eco' } }, groups, schema), { mode: 'eco', setpoint: 20 });
});

test('config - with a schema only schema fields are taken from groups', () => {
  const groups = sorted([group('g', 1, { setpoint: 22, stray: 'x', legacy: 1 })]);
  assert.deepEqual(effectiveValues({ values: {} }, groups, schema), { mode: 'eco', setpoint: 22 });
});

test('config - with a schema only its fields take part, even from the device layer', () => {
  assert.deepEqual(effectiveValues({ values: { stray: true } }, [], schema), { mode: 'eco', setpoint: 20 });
  assert.deepEqual(Object.keys(effectiveWithProvenance({ values: { stray: true } }, [], schema)).sort(), ['mode', 'setpoint']);
});

test('config - without a schema every key of every layer takes part and there are no defaults', () => {
  const groups = sorted([group('g', 1, { a: 1, b: 'x' })]);
  assert.deepEqual(effectiveValues({ values: { c: false, a: 2 } }, groups, undefined), { a: 2, b: 'x', c: false });
  assert.deepEqual(effectiveValues({ values: {} }, [], undefined), {});
});

test('config - falsy values in a layer still override lower layers', () => {
  const groups = sorted([group('g', 1, { setpoint: 0, label: '' })]);
  assert.deepEqual(effectiveValues({ values: {} }, groups, schema), { mode: 'eco', setpoint: 0, label: '' });
  assert.deepEqual(effectiveValues({ values: { setpoint: 0 } }, sorted([group('g', 1, { setpoint: 5 })]), schema).setpoint, 0);
});

test('config - effectiveValues does not change its inputs', () => {
  const g = group('g', 1, { setpoint: 22 });
  const device = { values: { mode: 'comfort' } };
  const out = effectiveValues(device, [g], schema);
  out['setpoint'] = 99;
  assert.deepEqual(g.values, { setpoint: 22 });
  assert.deepEqual(device.values, { mode: 'comfort' });
  assert.equal(schema.fields[1]?.default, 20);
});

// --- provenance ------------------------------------------------------------------------------------

test('config - provenance names the layer and the group that set each key', () => {
  const groups = sorted([group('site', 1, { setpoint: 21, interval: 30 }), group('floor', 2, { interval: 60 })]);
  const p = effectiveWithProvenance({ values: { label: 'hall' } }, groups, schema);
  assert.deepStrictEqual(p, {
    mode: { value: 'eco', layer: Layer.Default },
    setpoint: { value: 21, layer: Layer.Group, group: 'site' },
    interval: { value: 60, layer: Layer.Group, group: 'floor' },
    label: { value: 'hall', layer: Layer.Device },
  });
});

test('config - provenance names the winning group among equal priorities', () => {
  const groups = sorted([group('b', 3, { setpoint: 2 }), group('a', 3, { setpoint: 1 })]);
  assert.deepStrictEqual(effectiveWithProvenance({ values: {} }, groups, schema)['setpoint'], { value: 1, layer: Layer.Group, group: 'a' });
});

test('config - provenance leaves out group keys outside the schema', () => {
  const p = effectiveWithProvenance({ values: {} }, sorted([group('g', 1, { stray: 1, setpoint: 3 })]), schema);
  assert.deepEqual(Object.keys(p).sort(), ['mode', 'setpoint']);
});

test('config - provenance without a schema takes every group key and has no default layer', () => {
  const p = effectiveWithProvenance({ values: { b: 2 } }, sorted([group('g', 1, { a: 1, b: 1 })]), undefined);
  assert.deepStrictEqual(p, { a: { value: 1, layer: Layer.Group, group: 'g' }, b: { value: 2, layer: Layer.Device } });
});

test('config - provenance values are exactly the effective values', () => {
  const groups = sorted([group('x', 1, { setpoint: 1, mode: 'comfort', extra: 1 }), group('y', 1, { setpoint: 2 }), group('z', 0, { interval: 9 })]);
  for (const s of [schema, undefined]) {
    const devices: Array<{ values: Record<string, ConfigValue> }> = [{ values: {} }, { values: { interval: 4, other: 'o' } }];
    for (const device of devices) {
      const prov = effectiveWithProvenance(device, groups, s);
      const values = Object.fromEntries(Object.entries(prov).map(([k, v]) => [k, v.value]));
      assert.deepEqual(values, effectiveValues(device, groups, s));
    }
  }
});

test('config - the layer names are pinned', () => {
  assert.deepEqual({ ...Layer }, { Default: 'default', Group: 'group', Device: 'device' });
});

// --- applyPatch ----------------------------------------------------------------------------------

test('config - applyPatch sets new keys and reports them with `to` only', () => {
  const r = applyPatch({ a: 1 }, { b: 'x' }, false);
  assert.deepStrictEqual(r.next, { a: 1, b: 'x' });
  assert.deepStrictEqual(r.changes, [{ key: 'b', to: 'x' }]);
});

test('config - applyPatch reports a changed value with `from` and `to`', () => {
  const r = applyPatch({ a: 1, b: true }, { a: 2 }, false);
  assert.deepStrictEqual(r.next, { a: 2, b: true });
  assert.deepStrictEqual(r.changes, [{ key: 'a', from: 1, to: 2 }]);
});

test('config - applyPatch: null unsets a key and reports it with `from` only', () => {
  const r = applyPatch({ a: 1, b: 2 }, { a: null }, false);
  assert.deepStrictEqual(r.next, { b: 2 });
  assert.deepStrictEqual(r.changes, [{ key: 'a', from: 1 }]);
});

test('config - applyPatch: unsetting a key that is not set is no change', () => {
  const r = applyPatch({ a: 1 }, { missing: null }, false);
  assert.deepStrictEqual(r.next, { a: 1 });
  assert.deepStrictEqual(r.changes, []);
});

test('config - applyPatch: setting the same values gives no changes', () => {
  const r = applyPatch({ a: 1, b: 'x', c: false }, { a: 1, b: 'x', c: false }, false);
  assert.deepStrictEqual(r.next, { a: 1, b: 'x', c: false });
  assert.deepStrictEqual(r.changes, []);
  assert.deepStrictEqual(applyPatch({ a: 1 }, {}, false).changes, []);
});

test('config - applyPatch tells values of different types apart', () => {
  assert.deepStrictEqual(applyPatch({ a: 1 }, { a: '1' }, false).changes, [{ key: 'a', from: 1, to: '1' }]);
  assert.deepStrictEqual(applyPatch({ a: 0 }, { a: false }, false).changes, [{ key: 'a', from: 0, to: false }]);
  assert.deepStrictEqual(applyPatch({ a: '' }, { a: 0 }, false).changes, [{ key: 'a', from: '', to: 0 }]);
});

test('config - applyPatch in replace mode drops every key the patch does not set', () => {
  const r = applyPatch({ a: 1, b: 2, c: 3 }, { b: 2, d: 4 }, true);
  assert.deepStrictEqual(r.next, { b: 2, d: 4 });
  assert.deepStrictEqual(r.changes, [
    { key: 'a', from: 1 },
    { key: 'c', from: 3 },
    { key: 'd', to: 4 },
  ]);
});

test('config - applyPatch in replace mode with an empty patch clears the layer', () => {
  const r = applyPatch({ a: 1, b: 2 }, {}, true);
  assert.deepStrictEqual(r.next, {});
  assert.deepStrictEqual(r.changes, [
    { key: 'a', from: 1 },
    { key: 'b', from: 2 },
  ]);
});

test('config - applyPatch in replace mode: null keys stay unset', () => {
  const r = applyPatch({ a: 1 }, { a: null, b: 1 }, true);
  assert.deepStrictEqual(r.next, { b: 1 });
  assert.deepStrictEqual(r.changes, [
    { key: 'a', from: 1 },
    { key: 'b', to: 1 },
  ]);
});

test('config - applyPatch in replace mode with the same values gives no changes', () => {
  const r = applyPatch({ a: 1, b: 'x' }, { b: 'x', a: 1 }, true);
  assert.deepStrictEqual(r.changes, []);
});

test('config - applyPatch lists changes sorted by key', () => {
  const r = applyPatch({ m: 1, z: 1 }, { b: 1, z: null, a: 2, m: 3, B: 0 }, false);
  assert.deepEqual(
    r.changes.map((c) => c.key),
    ['B', 'a', 'b', 'm', 'z'],
  );
});

test('config - applyPatch does not change the current layer', () => {
  const current = { a: 1, b: 2 };
  const r = applyPatch(current, { a: null, c: 3 }, false);
  assert.deepStrictEqual(current, { a: 1, b: 2 });
  assert.notEqual(r.next, current);
  const replaced = applyPatch(current, {}, true);
  assert.deepStrictEqual(current, { a: 1, b: 2 });
  assert.deepStrictEqual(replaced.next, {});
});

test('config - schema fields named like Object.prototype members are not read from the prototype', () => {
  const s: SchemaRecord = {
    name: 'proto',
    version: 1,
    publishedAt: 0,
    fields: ['constructor', 'toString', 'valueOf', 'hasOwnProperty'].map((name) => ({ name, type: FieldType.String, required: false })),
  };
  assert.deepEqual(effectiveValues({ values: {} }, [group('g', 0, {})], s), {});
  assert.deepEqual(effectiveWithProvenance({ values: {} }, [group('g', 0, {})], s), {});
});
