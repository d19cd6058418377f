import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEVICE_PREFIX, Resource, devicePath, parseDevicePath } from './paths.ts';

test('paths - parseDevicePath accepts the three resources of a device', () => {
  assert.deepEqual(parseDevicePath(['d', 'dev-1', 'c']), { device: 'dev-1', resource: 'c' });
  assert.deepEqual(parseDevicePath(['d', 'dev-1', 'a']), { device: 'dev-1', resource: 'a' });
  assert.deepEqual(parseDevicePath(['d', 'dev-1', 't']), { device: 'dev-1', resource: 't' });
});

test('paths - resource letters match the protocol table', () => {
  assert.equal(DEVICE_PREFIX, 'd');
  assert.deepEqual({ ...Resource }, { Config: 'c', Ack: 'a', Telemetry: 't' });
});

test('paths - parseDevicePath accepts ids at the edges of [a-z0-9][a-z0-9-]{0,62}', () => {
  for (const id of ['a', '0', '7-', 'a-b-c', 'x'.repeat(63), `9${'-'.repeat(62)}`, 'sensor-00042']) {
    assert.deepEqual(parseDevicePath(['d', id, 'c']), { device: id, resource: 'c' }, `id ${JSON.stringify(id)}`);
  }
});

test('paths - parseDevicePath refuses a prefix other than d', () => {
  for (const prefix of ['D', 'dev', '', 'devices', '.well-known']) {
    assert.equal(parseDevicePath([prefix, 'dev-1', 'c']), undefined, `prefix ${JSON.stringify(prefix)}`);
  }
});

test('paths - parseDevicePath refuses paths of the wrong length', () => {
  const bad: string[][] = [[], ['d'], ['d', 'dev-1'], ['d', 'dev-1', 'c', ''], ['d', 'dev-1', 'c', 'x'], ['.well-known', 'core']];
  for (const segments of bad) assert.equal(parseDevicePath(segments), undefined, JSON.stringify(segments));
});

test('paths - parseDevicePath refuses bad device ids', () => {
  const bad = [
    '', // empty
    'Dev-1', // uppercase
    'DEV', // uppercase
    '-dev', // leading dash
    'x'.repeat(64), // 64 characters
    'dev_1', // underscore
    'dev.1', // dot
    'dev 1', // space
    'dév', // non-ASCII
    'dev/1', // slash inside a segment
    'dev-1\n', // trailing newline must not slip past the anchors
  ];
  for (const id of bad) {
    for (const r of ['c', 'a', 't']) assert.equal(parseDevicePath(['d', id, r]), undefined, `id ${JSON.stringify(id)}`);
  }
});

test('paths - parseDevicePath refuses unknown resources', () => {
  for (const r of ['', 'C', 'x', 'config', 'ack', 'c ', 'ca']) {
    assert.equal(parseDevicePath(['d', 'dev-1', r]), undefined, `resource ${JSON.stringify(r)}`);
  }
});

test('paths - devicePath builds the segments parseDevicePath reads back', () => {
  assert.deepEqual(devicePath('dev-1', Resource.Config), ['d', 'dev-1', 'c']);
  assert.deepEqual(devicePath('dev-1', Resource.Ack), ['d', 'dev-1', 'a']);
  assert.deepEqual(devicePath('dev-1', Resource.Telemetry), ['d', 'dev-1', 't']);
  for (const r of [Resource.Config, Resource.Ack, Resource.Telemetry]) {
    assert.deepEqual(parseDevicePath(devicePath('node-7', r)), { device: 'node-7', resource: r });
  }
});
