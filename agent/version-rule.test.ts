import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './version-rule.ts';

const inc = (b: number): Uint8Array => new Uint8Array(8).fill(b);

test('the first snapshot is applied', () => {
  assert.deepEqual(decide(undefined, { version: 0, incarnation: inc(1) }), { apply: true, reason: 'first' });
});

test('same incarnation: only a greater version is applied; older and equal ones never', () => {
  const applied = { version: 10, incarnation: inc(1) };
  assert.deepEqual(decide(applied, { version: 11, incarnation: inc(1) }), { apply: true, reason: 'newer' });
  assert.deepEqual(decide(applied, { version: 1000, incarnation: inc(1) }), { apply: true, reason: 'newer' }, 'versions may skip');
  assert.deepEqual(decide(applied, { version: 10, incarnation: inc(1) }), { apply: false, reason: 'same' });
  assert.deepEqual(decide(applied, { version: 9, incarnation: inc(1) }), { apply: false, reason: 'older' });
  assert.deepEqual(decide(applied, { version: 0, incarnation: inc(1) }), { apply: false, reason: 'older' });
});

test('another incarnation is applied whatever its version, and resets the baseline', () => {
  const applied = { version: 500, incarnation: inc(1) };
  const rebuilt = { version: 3, incarnation: inc(2) };
  assert.deepEqual(decide(applied, rebuilt), { apply: true, reason: 'new-incarnation' });
  assert.deepEqual(decide(rebuilt, { version: 4, incarnation: inc(2) }), { apply: true, reason: 'newer' });
  assert.deepEqual(decide(rebuilt, { version: 2, incarnation: inc(2) }), { apply: false, reason: 'older' });
});

test('a reordered and duplicated delivery sequence ends on the newest version', () => {
  let applied: { version: number; incarnation: Uint8Array } | undefined;
  const appliedVersions: number[] = [];
  for (const v of [3, 5, 4, 5, 2, 7, 6, 7]) {
    const s = { version: v, incarnation: inc(9) };
    if (decide(applied, s).apply) {
      applied = s;
      appliedVersions.push(v);
    }
  }
  assert.deepEqual(appliedVersions, [3, 5, 7]);
});
