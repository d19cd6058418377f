import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changedKeys, truncateUtf8 } from './agent.ts';

test('changed keys: names only, sorted, by kind', () => {
  assert.deepEqual(changedKeys({ a: 1, b: 'x', c: true, d: 0 }, { a: 1, b: 'y', d: 0, e: 2 }), { added: ['e'], removed: ['c'], changed: ['b'] });
  assert.deepEqual(changedKeys({}, { z: 1, a: 2 }), { added: ['a', 'z'], removed: [], changed: [] });
  assert.deepEqual(changedKeys({ n: 1 }, { n: '1' }).changed, ['n'], 'a type change is a change');
});

test('ack messages are cut to 256 UTF-8 bytes on a character boundary', () => {
  assert.equal(truncateUtf8('short'), 'short');
  const cut = truncateUtf8('é'.repeat(200));
  assert.ok(Buffer.byteLength(cut) <= 256);
  assert.ok(cut.endsWith('...'));
  assert.ok(!cut.includes('\uFFFD'));
  assert.equal(Buffer.byteLength(truncateUtf8('x'.repeat(256))), 256);
});
