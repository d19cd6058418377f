/**
 * The pure parts of discovery: address ranking, TXT checks, advertiseHub's argument checks (they throw
 * before any socket is opened, so nothing here touches a network). Addresses are documentation ranges.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { rankAddresses } from './address.ts';
import type { InterfaceMap } from './address.ts';
import { advertiseHub } from './advertise.ts';
import { AdvertiseError } from './errors.ts';
import { instanceName, parseHubTxt, serviceType, subtypeDomain } from './service.ts';

function v4(address: string, prefix: number, internal = false): NetworkInterfaceInfo {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const netmask = [24, 16, 8, 0].map((s) => (mask >>> s) & 255).join('.');
  const net = address.split('.').map((o, i) => Number(o) & Number(netmask.split('.')[i])).join('.');
  return { address, netmask, family: 'IPv4', mac: '02:00:00:00:00:01', internal, cidr: `${net}/${prefix}` };
}

function v6(address: string, cidr: string): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr, scopeid: address.startsWith('fe80') ? 2 : 0 };
}

const ONE_LINK: InterfaceMap = {
  lo: [v4('127.0.0.1', 8, true)],
  eth0: [v4('192.0.2.10', 24), v6('2001:db8:1::10', '2001:db8:1::/64'), v6('fe80::10', 'fe80::/64')],
};

test('rankAddresses: on-link IPv4, then on-link IPv6 (link-local gets the zone), then routed IPv4, then routed IPv6', () => {
  const ranked = rankAddresses(['2001:db8:9::5', 'fe80::5', '198.51.100.5', '2001:db8:1::5', '192.0.2.5'], undefined, ONE_LINK);
  assert.deepEqual(
    ranked.map((r) => [r.address, r.family, r.onLink]),
    [
      ['192.0.2.5', 4, true],
      ['fe80::5%eth0', 6, true],
      ['2001:db8:1::5', 6, true],
      ['198.51.100.5', 4, false],
      ['2001:db8:9::5', 6, false],
    ],
  );
});

test('rankAddresses: the address the answer came from is on our link even off our subnets, and is added when missing', () => {
  assert.deepEqual(
    rankAddresses(['198.51.100.7'], '203.0.113.9', ONE_LINK).map((r) => [r.address, r.onLink]),
    [['203.0.113.9', true], ['198.51.100.7', false]],
  );
  assert.deepEqual(rankAddresses([], '192.0.2.5', ONE_LINK).map((r) => r.address), ['192.0.2.5']);
});

test('rankAddresses: a link-local IPv6 address without a known zone goes last; junk and duplicates are dropped', () => {
  const twoLinks: InterfaceMap = { ...ONE_LINK, wlan0: [v4('198.51.100.10', 24), v6('fe80::20', 'fe80::/64')] };
  assert.deepEqual(
    rankAddresses(['fe80::5', 'not-an-ip', '192.0.2.5', '192.0.2.5', '2001:db8:9::5'], '192.0.2.5', twoLinks).map((r) => [r.address, r.onLink]),
    [['192.0.2.5', true], ['2001:db8:9::5', false], ['fe80::5', false]],
  );
  assert.deepEqual(rankAddresses(['127.0.0.1'], '127.0.0.1', ONE_LINK).map((r) => [r.address, r.onLink]), [['127.0.0.1', true]]);
});

test('parseHubTxt: v=1, id and api are required; keys are case-insensitive', () => {
  assert.deepEqual(parseHubTxt({ v: '1', id: 'a1b2c3d4e5f6', api: '8080' }), { hubId: 'a1b2c3d4e5f6', apiPort: 8080 });
  assert.deepEqual(parseHubTxt({ V: '1', ID: 'hub', Api: '80' }), { hubId: 'hub', apiPort: 80 });
  assert.deepEqual(parseHubTxt({ v: Buffer.from('1'), id: Buffer.from('hub'), api: 443 }), { hubId: 'hub', apiPort: 443 });
  for (const [txt, reason] of [
    [undefined, /no TXT/],
    [{ id: 'hub', api: '80' }, /no v/],
    [{ v: '2', id: 'hub', api: '80' }, /v=2/],
    [{ v: '1', api: '80' }, /id/],
    [{ v: '1', id: 'hub' }, /api/],
    [{ v: '1', id: 'hub', api: '0' }, /api=0/],
    [{ v: '1', id: 'hub', api: '65536' }, /api=65536/],
    [{ v: '1', id: 'hub', api: '80x' }, /api=80x/],
  ] as const) {
    const r = parseHubTxt(txt);
    assert.ok('reject' in r && reason.test(r.reject), `${JSON.stringify(txt)} -> ${JSON.stringify(r)}`);
  }
});

test('service names follow docs/protocol.md', () => {
  assert.equal(serviceType(true), 'coaps');
  assert.equal(serviceType(false), 'coap');
  assert.equal(subtypeDomain(true), '_henge._sub._coaps._udp.local');
  assert.equal(subtypeDomain(false), '_henge._sub._coap._udp.local');
  assert.equal(instanceName('a1b2c3d4e5f6'), 'henge-a1b2c3d4e5f6');
});

test('advertiseHub refuses what it cannot advertise, with HENGE_E_ADVERTISE, before opening any socket', async () => {
  const ok = { hubId: 'a1b2c3d4e5f6', coapPort: 5684, apiPort: 8080, secure: true };
  const cases: [Parameters<typeof advertiseHub>[0], RegExp][] = [
    [{ ...ok, hubId: '' }, /hub id/],
    [{ ...ok, hubId: 'has space' }, /hub id/],
    [{ ...ok, hubId: 'x'.repeat(58) }, /hub id/],
    [{ ...ok, coapPort: 0 }, /coapPort 0/],
    [{ ...ok, apiPort: 70_000 }, /apiPort 70000/],
    [{ ...ok, coapPort: 1.5 }, /coapPort 1.5/],
    [{ ...ok, interfaces: [] }, /interfaces is empty/],
    [{ ...ok, interfaces: ['henge-no-such-if0'] }, /no network interface named "henge-no-such-if0"/],
    [{ ...ok, interfaces: ['192.0.2.254'] }, /192\.0\.2\.254 is not an address of this host/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(advertiseHub(options), (err: unknown) => {
      assert.ok(err instanceof AdvertiseError, String(err));
      assert.equal(err.code, 'HENGE_E_ADVERTISE');
      assert.match(err.message, message);
      return true;
    });
  }
});
