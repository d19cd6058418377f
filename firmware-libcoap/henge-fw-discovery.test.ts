/**
 * henge-fw finds the hub over mDNS / DNS-SD (no --hub) between two hosts: a real `henge hub --insecure`
 * (which advertises `_henge._sub._coaps._udp` and `_henge._sub._coap._udp` with @homebridge/ciao) in
 * network namespace A, henge-fw in namespace B, joined by a veth link (test/helpers/netns.ts). No mocks:
 * henge-fw's own one-shot querier (ports/linux/discover.c, core/henge_dnssd.c) against the hub's real
 * advertiser. Over plain CoAP (no key: `_coap._udp`) and over DTLS-PSK (a key: `_coaps._udp`, the ASan +
 * UBSan build); then a device pinned to another hub id: it sees the hub, logs why it ignores it, and never
 * connects. Without `ip netns` (or root) the test skips, or fails with CI=true.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { StateStore } from '../agent/state.ts';
import { HENGE_FW, HENGE_FW_ASAN, firmwareReady } from '../test/helpers/firmware.ts';
import { childEnv, createNetnsPair, netnsMissing, skipOrFail } from '../test/helpers/netns.ts';
import type { ManagedProcess, NetnsPair } from '../test/helpers/netns.ts';
import { HENGE_BIN, ROOT } from '../test/helpers/processes.ts';

interface FwLine {
  readonly msg?: string;
  readonly [field: string]: unknown;
}

const lines = (text: string): FwLine[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as FwLine);

const isLine = (msg: string, extra: (l: FwLine) => boolean = () => true) => (line: string): boolean => {
  if (!line.startsWith('{')) return false;
  const l = JSON.parse(line) as FwLine;
  return l.msg === msg && extra(l);
};

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what}: not within ${timeoutMs} ms`);
}

describe('henge-fw - hub discovery over mDNS between two network namespaces', () => {
  let pair: NetnsPair | undefined;
  let hub: ManagedProcess | undefined;
  let dir = '';
  let hubId = '';
  let skipped: string | undefined;
  const env = (): NodeJS.ProcessEnv => childEnv({ XDG_CONFIG_HOME: join(dir, 'config'), NODE_NO_WARNINGS: '1' });
  const henge = async (args: readonly string[]): Promise<string> => {
    assert.ok(pair);
    const r = await pair.a.run(process.execPath, [HENGE_BIN, ...args], { timeoutMs: 30_000, env: env(), cwd: ROOT });
    assert.equal(r.code, 0, `henge ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    skipped = await netnsMissing();
    if (skipped !== undefined) return;
    pair = await createNetnsPair();
    dir = pair.tempDir('henge-fw-mdns-');
    // Both endpoints (--insecure adds plain CoAP), both advertised; a short keepalive as in henge-fw.test.ts.
    hub = pair.a.spawn(process.execPath, [HENGE_BIN, 'hub', '--data', join(dir, 'hub'), '--port', '0', '--insecure', '--keepalive', '5', '--log-level', 'warn'], { env: env(), cwd: ROOT });
    const banner = await hub.waitForLine((l) => l.includes('mDNS:'), 30_000, 'hub banner');
    assert.match(banner, /advertised as henge-[0-9a-f]{12} \(_henge\._sub\._coaps\._udp, _henge\._sub\._coap\._udp\)/, banner);
    hubId = /henge-([0-9a-f]{12})/.exec(banner)?.[1] ?? '';
  });

  after(async () => {
    await hub?.stop();
    await pair?.cleanup();
  });

  /** False (skipped, or failed with CI=true) without namespaces or the firmware toolchain. */
  const ready = (t: TestContext): boolean => {
    if (skipped !== undefined) {
      skipOrFail(t, skipped);
      return false;
    }
    return firmwareReady(t, ['build/henge-fw', 'build/asan/henge-fw'], { libcoap: true });
  };

  /** henge-fw in B without --hub; with `key`, over coaps (the ASan + UBSan build). */
  const startFw = async (id: string, key: string | undefined): Promise<{ fw: ManagedProcess; out: string; state: string }> => {
    assert.ok(pair);
    const base = join(dir, id);
    await mkdir(base, { recursive: true });
    const out = join(base, 'config.json');
    const state = join(base, 'state');
    const args = ['--id', id, '--out', out, '--state', state, '--backoff-max', '2'];
    if (key !== undefined) {
      await writeFile(join(base, 'key'), `${key}\n`, { mode: 0o600 });
      args.push('--key-file', join(base, 'key'));
    }
    const fw = pair.b.spawn(key !== undefined ? HENGE_FW_ASAN : HENGE_FW, args, { env: env(), cwd: base });
    return { fw, out, state };
  };

  for (const secure of [false, true]) {
    const kind = secure ? 'coaps' : 'coap';
    const service = secure ? '_henge._sub._coaps._udp.local' : '_henge._sub._coap._udp.local';
    test(`henge-fw ${kind}${secure ? ' (ASan + UBSan build)' : ''} - no --hub: finds the hub on ${service}, pins its id, applies and acks a change`, { timeout: 90_000 }, async (t) => {
      if (!ready(t)) return;
      assert.ok(pair);
      const id = `fw-mdns-${kind}`;
      const added = await henge(['device', 'add', id, '--set', 'mode=heat', '--json']);
      const key = secure ? (JSON.parse(added) as { key: string }).key : undefined;
      const { fw, out, state } = await startFw(id, key);
      try {
        // 1. Found over mDNS: the hub's address on the link, its CoAP(S) port, source `mdns henge-<id>`.
        const connected = JSON.parse(await fw.waitForStderrLine(isLine('connected'), 30_000, 'connected')) as FwLine;
        // Both instances are henge-<hub id> (with --insecure too: each service has its own host name).
        assert.equal(connected['source'], `mdns henge-${hubId}`);
        assert.equal(connected['hub'], `${pair.a.address} port ${secure ? 5684 : 5683}`);
        assert.equal(connected['coaps'], secure);
        const found = lines(fw.stderr()).find((l) => l.msg === 'hub found over mDNS');
        assert.equal(found?.['hubId'], hubId);
        assert.equal(found?.['address'], pair.a.address);
        assert.equal(typeof found?.['apiPort'], 'number');
        assert.equal(lines(fw.stderr()).find((l) => l.msg === 'agent started')?.['hub'], 'mdns');
        t.diagnostic(`found in ${String(found?.['ms'])} ms`);
        // 2. Applied and acked; pinned in state.json, which the Node agent's StateStore reads.
        await fw.waitForStderrLine(isLine('ack delivered'), 20_000, 'ack delivered');
        assert.deepEqual(JSON.parse((await readText(out)) ?? '{}'), { mode: 'heat' });
        assert.ok(lines(fw.stderr()).some((l) => l.msg === 'pinned hub' && l['hubId'] === hubId), 'logged "pinned hub"');
        const saved = await new StateStore(state, id).load();
        assert.equal(saved.hubId, hubId);
        // 3. A change made on the hub arrives and is acked.
        await henge(['set', id, 'mode=cool']);
        await until('mode=cool in --out', async () => (JSON.parse((await readText(out)) ?? '{}') as { mode?: string }).mode === 'cool', 10_000);
        await until('a second ack', async () => lines(fw.stderr()).filter((l) => l.msg === 'ack delivered').length >= 2, 10_000);
        assert.ok(!lines(fw.stderr()).some((l) => l.msg === 'ignored'), 'no instance ignored');
        assert.deepEqual(await fw.stop(5000), { code: 0, signal: null }, `henge-fw exit\n${fw.stderr()}`);
      } finally {
        await fw.stop(5000); // (already stopped unless an assertion failed: that failure is the one reported)
      }
    });
  }

  test('henge-fw - pinned to another hub id: logs the hub it ignores and why, never connects, retries with backoff', { timeout: 60_000 }, async (t) => {
    if (!ready(t)) return;
    const id = 'fw-mdns-pinned';
    await henge(['device', 'add', id, '--set', 'mode=heat']);
    const other = '0000deadbeef';
    const base = join(dir, id);
    await mkdir(join(base, 'state'), { recursive: true });
    await writeFile(join(base, 'state', 'state.json'), `${JSON.stringify({ format: 1, device: id, hubId: other, applied: null }, null, 2)}\n`);
    const { fw, out, state } = await startFw(id, undefined);
    try {
      const ignored = JSON.parse(await fw.waitForStderrLine(isLine('ignored'), 20_000, 'an "ignored" line')) as FwLine;
      assert.match(String(ignored['instance']), new RegExp(`^henge-${hubId}( \\(\\d+\\))?$`));
      assert.equal(ignored['reason'], `hub id ${hubId}, pinned ${other}`);
      const retry = JSON.parse(await fw.waitForStderrLine(isLine('hub unreachable; keeping the last applied config and retrying'), 20_000, 'a retry line')) as FwLine;
      assert.equal((retry['err'] as { message?: string }).message, `hub ${other} did not answer on _henge._sub._coap._udp.local within 3000 ms`);
      // A second search, after the backoff, ignores it again.
      await until('a second "ignored" line', async () => lines(fw.stderr()).filter((l) => l.msg === 'ignored').length >= 2, 20_000);
      const all = lines(fw.stderr());
      assert.ok(!all.some((l) => l.msg === 'connected' || l.msg === 'hub found over mDNS'), 'never connected');
      assert.equal(await readText(out), undefined, 'no config written');
      assert.equal((await new StateStore(state, id).load()).hubId, other, 'the pin is kept');
      assert.deepEqual(await fw.stop(5000), { code: 0, signal: null }, `henge-fw exit\n${fw.stderr()}`);
    } finally {
      await fw.stop(5000); // (already stopped unless an assertion failed: that failure is the one reported)
    }
  });
});
