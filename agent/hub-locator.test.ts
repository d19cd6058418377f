import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HubAddressError } from './errors.ts';
import { parseHubAddress, staticLocator } from './hub-locator.ts';

test('--hub: host, host:port, [v6], [v6]:port, bare v6', () => {
  assert.deepEqual(parseHubAddress('192.168.1.10'), { host: '192.168.1.10', port: 5683 });
  assert.deepEqual(parseHubAddress('192.168.1.10:6000'), { host: '192.168.1.10', port: 6000 });
  assert.deepEqual(parseHubAddress('hub.local:5683'), { host: 'hub.local', port: 5683 });
  assert.deepEqual(parseHubAddress('[::1]:6001'), { host: '::1', port: 6001 });
  assert.deepEqual(parseHubAddress('[fd00::2]'), { host: 'fd00::2', port: 5683 });
  assert.deepEqual(parseHubAddress('fe80::1'), { host: 'fe80::1', port: 5683 });
  for (const bad of ['', 'host:', 'host:0', 'host:70000', 'host:12a', '[nothost]:1', 'a:b:c', 'a b']) {
    assert.throws(() => parseHubAddress(bad), (e: unknown) => e instanceof HubAddressError && e.code === 'HENGE_E_HUB_ADDRESS', bad);
  }
});

test('the static locator gives addresses, resolving names at each call', async () => {
  assert.deepEqual(await staticLocator('127.0.0.1:7000')(), { address: '127.0.0.1', family: 4, port: 7000, source: '--hub 127.0.0.1:7000' });
  assert.equal((await staticLocator('[::1]:7000')()).family, 6);
  const local = await staticLocator('localhost:7000')();
  assert.ok(local.address === '127.0.0.1' || local.address === '::1');
  await assert.rejects(staticLocator('no-such-host.invalid')(), HubAddressError);
});
