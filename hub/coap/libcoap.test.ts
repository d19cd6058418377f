/**
 * The hub against an independent CoAP peer: libcoap's `coap-client-notls` (Debian package libcoap3-bin)
 * observes config resources of a real `henge hub` process while the real `henge` CLI changes values.
 * Without the binary the tests are skipped, except with CI=true, where they fail.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { makeSandbox, runCli, startHubProcess } from '../../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../../test/helpers/processes.ts';
import { waitFor } from '../../test/helpers/coap-client.ts';
import { findOnPath, needPeer as needBinary, runPeer, snapshotsIn, stopAllPeers } from '../../test/helpers/libcoap.ts';

const PEER = 'coap-client-notls';
const peer = findOnPath(PEER);
const needPeer = (t: TestContext): string | undefined => needBinary(t, PEER);

describe('libcoap', () => {
  let sb: Sandbox | undefined;
  let hub: HubProcess | undefined;
  const henge = async (...args: string[]): Promise<void> => {
    assert.ok(sb);
    const r = await runCli(sb, args);
    assert.equal(r.code, 0, `henge ${args.join(' ').slice(0, 80)}: ${r.stderr}`);
  };
  const uri = (device: string): string => {
    assert.ok(hub?.coapPort, 'the hub runs a CoAP endpoint');
    return `coap://127.0.0.1:${hub.coapPort}/d/${device}/c`;
  };
  async function api<T>(path: string): Promise<T> {
    assert.ok(hub?.token);
    const r = await fetch(hub.url + path, { headers: { authorization: `Bearer ${hub.token}` } });
    assert.equal(r.status, 200);
    return (await r.json()) as T;
  }

  before(async () => {
    if (!peer) return;
    sb = await makeSandbox('henge-libcoap-');
    hub = await startHubProcess(sb);
  });

  after(async () => {
    await stopAllPeers();
    await hub?.stop();
    await sb?.cleanup();
  });

  test('libcoap - coap-client observes /d/{id}/c and prints the snapshot and every new one after henge set', { timeout: 60_000 }, async (t) => {
    const bin = needPeer(t);
    if (!bin) return;
    await henge('device', 'add', 'lc-obs', '--set', 'mode=heat');
    const obs = runPeer(bin, ['-s', '20', '-B', '25', '-m', 'get', uri('lc-obs')]);
    const seen = (mode: string) => () => {
      const s = snapshotsIn(obs.stdout());
      return s?.some((x) => x.values.get('mode') === mode) ? s : undefined;
    };
    await waitFor(`coap-client to print the first snapshot (stderr: ${obs.stderr()})`, seen('heat'), 10_000);
    const st = await api<{ observing: boolean }>('/devices/lc-obs/state');
    assert.equal(st.observing, true, 'the hub holds a relation with coap-client');
    await henge('set', 'lc-obs', 'mode=cool');
    await waitFor('the notification with mode=cool', seen('cool'), 10_000);
    await henge('set', 'lc-obs', 'mode=off', 'setpoint=19.5');
    const printed = await waitFor('the notification with mode=off', seen('off'), 10_000);
    await obs.stop();
    assert.deepEqual(printed.map((s) => s.values.get('mode')), ['heat', 'cool', 'off'], 'every snapshot, once each, in order');
    const versions = printed.map((s) => s.version);
    assert.ok(versions.every((v, i) => i === 0 || v > (versions[i - 1] ?? Infinity)), `versions grow: ${versions.join(', ')}`);
    assert.equal(printed[2]?.values.get('setpoint'), 19.5);
    const config = await api<{ version: number }>('/devices/lc-obs/config');
    assert.equal(versions[2], config.version, 'the last printed snapshot is the current one');
  });

  test('libcoap - a snapshot over 2 KB reaches coap-client in full (Block2), by GET and by notification', { timeout: 60_000 }, async (t) => {
    const bin = needPeer(t);
    if (!bin) return;
    const first = 'a'.repeat(1000) + 'b'.repeat(1000) + 'c'.repeat(1000);
    await henge('device', 'add', 'lc-big', '--set', `blob=${first}`);
    const get = runPeer(bin, ['-B', '15', '-m', 'get', uri('lc-big')]);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([get.exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 20_000)))]);
    clearTimeout(timer);
    await get.stop();
    assert.equal(code, 0, `coap-client exited ${String(code)}: ${get.stderr()}`);
    const got = snapshotsIn(get.stdout());
    assert.ok(got, 'coap-client printed whole CBOR items');
    assert.equal(got.length, 1);
    assert.equal(got[0]?.values.get('blob'), first, 'the 3000-character value arrived in full');

    const obs = runPeer(bin, ['-s', '20', '-B', '25', '-m', 'get', uri('lc-big')]);
    await waitFor('the first snapshot', () => (snapshotsIn(obs.stdout())?.length ?? 0) >= 1, 10_000);
    const second = 'x'.repeat(1500) + 'y'.repeat(1500);
    await henge('set', 'lc-big', `blob=${second}`);
    const printed = await waitFor('the big notification', () => {
      const s = snapshotsIn(obs.stdout());
      return s && s.length >= 2 ? s : undefined;
    }, 10_000);
    await obs.stop();
    assert.equal(printed[0]?.values.get('blob'), first);
    assert.equal(printed[1]?.values.get('blob'), second, 'the notification, reassembled by libcoap, carries the new value in full');
  });
});
