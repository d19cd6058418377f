import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigValue } from '../../protocol/snapshot.ts';
import type { GroupRecord } from './config.ts';
import { checkDevice } from './config-checks.ts';

const many = (prefix: string, n: number): Record<string, ConfigValue> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i]));
const group = (values: Record<string, ConfigValue>): GroupRecord => ({ name: 'g', selector: '*', priority: 0, values, createdAt: 0, updatedAt: 0 });

test('config checks - a device without a schema may have at most 256 values, from any layer', () => {
  assert.deepEqual(checkDevice({ id: 'd', values: many('d', 200) }, [group(many('g', 56))], undefined), []);
  const over = checkDevice({ id: 'd', values: many('d', 200) }, [group(many('g', 57))], undefined);
  assert.deepEqual(over.map((v) => [v.field, v.rule, v.device]), [['values', 'maxFields', 'd']]);
  assert.match(over[0]?.message ?? '', /257 config values; a snapshot holds at most 256/);
});

test('config checks - a device already over 256 values can be cut back step by step, but never grow', () => {
  const now = { values: many('d', 300), groups: [group({ shared: 1 })] };
  const shrink = { ...many('d', 299) };
  assert.deepEqual(checkDevice({ id: 'd', values: shrink }, now.groups, undefined, now), [], 'one value fewer is accepted');
  assert.deepEqual(checkDevice({ id: 'd', values: { ...many('d', 300), d0: 'changed' } }, now.groups, undefined, now), [], 'the same count is accepted');
  assert.equal(checkDevice({ id: 'd', values: { ...many('d', 300), more: 1 } }, now.groups, undefined, now).length, 1, 'one more is refused');
  assert.equal(checkDevice({ id: 'd', values: many('d', 300) }, [group({ shared: 1, extra: 2 })], undefined, now).length, 1, 'a group adding one is refused');
  assert.equal(checkDevice({ id: 'd', values: shrink }, now.groups, undefined).length, 1, 'without the current layers the limit is strict (a new device)');
});
