/**
 * advertiseHub seen by an independent mDNS implementation: avahi-daemon (with its own dbus-daemon, both
 * started here) in namespace B, the hub's advertiser in namespace A, IPv4 only on the veth link. Checks
 * what `avahi-browse` resolves (address, port, TXT), the `_henge` subtype, and the goodbye on stop().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, createNetnsPair, findExecutable, netnsMissing, skipOrFail } from '../test/helpers/netns.ts';
import type { ManagedProcess, NetnsPair } from '../test/helpers/netns.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADVERTISE = fileURLToPath(new URL('./fixtures/advertise-hub.ts', import.meta.url));

/** Commands this test runs, and the Debian package of each. */
const NEEDS = { 'avahi-daemon': 'avahi-daemon', 'avahi-browse': 'avahi-utils', 'dbus-daemon': 'dbus', mount: 'mount', sh: 'dash' };

interface Resolved {
  readonly iface: string;
  readonly protocol: string;
  readonly name: string;
  readonly type: string;
  readonly hostname: string;
  readonly address: string;
  readonly port: number;
  readonly txt: readonly string[];
}

/** `=;iface;IPv4;name;type;domain;host;address;port;"k=v" "k=v"` lines of `avahi-browse -rp`. */
function resolvedLines(stdout: string): Resolved[] {
  const out: Resolved[] = [];
  for (const line of stdout.split('\n')) {
    const f = line.split(';');
    if (f[0] !== '=' || f.length < 10) continue;
    out.push({
      iface: f[1] ?? '',
      protocol: f[2] ?? '',
      name: f[3] ?? '',
      type: f[4] ?? '',
      hostname: f[6] ?? '',
      address: f[7] ?? '',
      port: Number(f[8]),
      txt: [...f.slice(9).join(';').matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? ''),
    });
  }
  return out;
}

interface Avahi {
  readonly busAddress: string;
  stop(): Promise<void>;
}

/** dbus-daemon and avahi-daemon inside `pair.b`, with configs in `dir`. */
async function startAvahi(pair: NetnsPair, dir: string): Promise<Avahi> {
  const socket = join(dir, 'system_bus.sock');
  const busAddress = `unix:path=${socket}`;
  await writeFile(
    join(dir, 'dbus.conf'),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>${busAddress}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  await writeFile(
    join(dir, 'avahi-daemon.conf'),
    `[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=${pair.b.ifname}
enable-dbus=yes

[wide-area]
enable-wide-area=no

[publish]
disable-publishing=yes
`,
  );
  const started: ManagedProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of started.reverse()) await p.stop(3000);
  };
  try {
    const dbus = pair.b.spawn(findExecutable('dbus-daemon') ?? 'dbus-daemon', [`--config-file=${join(dir, 'dbus.conf')}`, '--nofork', '--print-address']);
    started.push(dbus);
    await dbus.waitForLine((l) => l.startsWith('unix:'), 10_000, 'dbus-daemon address');
    // avahi-daemon keeps a pid file in /run/avahi-daemon and refuses to start when another daemon (the
    // host's, or another test run's) has one there: give it a /run of its own. The mount stays inside this
    // process's mount namespace (ip netns exec makes one per command).
    const avahiDaemon = findExecutable('avahi-daemon') ?? 'avahi-daemon';
    const avahi = pair.b.spawn(
      findExecutable('sh') ?? 'sh',
      [
        '-c',
        'mount -t tmpfs -o mode=0755,size=4m henge-avahi-run /run && exec "$0" -f "$1" --no-chroot --no-drop-root --no-rlimits',
        avahiDaemon,
        join(dir, 'avahi-daemon.conf'),
      ],
      { env: childEnv({ DBUS_SYSTEM_BUS_ADDRESS: busAddress }) },
    );
    started.push(avahi);
    await avahi.waitForStderrLine((l) => l.includes('Server startup complete'), 15_000, 'avahi-daemon start-up');
  } catch (err) {
    await stop();
    throw err;
  }
  return { busAddress, stop };
}

test('avahi (an independent mDNS peer) sees the hub advertised by advertiseHub, and its goodbye', async (t) => {
  const missing = await netnsMissing(NEEDS);
  if (missing !== undefined) {
    skipOrFail(t, missing);
    return;
  }
  const pair = await createNetnsPair({ ipv6: false });
  const dir = pair.tempDir('henge-avahi-');
  const plainId = randomBytes(6).toString('hex');
  const secureId = randomBytes(6).toString('hex');
  const apiPort = 20_000 + (randomBytes(2).readUInt16BE(0) % 20_000);
  let avahi: Avahi | undefined;
  let advertiser: ManagedProcess | undefined;
  try {
    avahi = await startAvahi(pair, dir);
    const env = childEnv({ DBUS_SYSTEM_BUS_ADDRESS: avahi.busAddress });
    const avahiBrowse = findExecutable('avahi-browse') ?? 'avahi-browse';

    advertiser = pair.a.spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        ADVERTISE,
        JSON.stringify({
          hubs: [
            { hubId: plainId, coapPort: 5683, apiPort, secure: false },
            { hubId: secureId, coapPort: 5684, apiPort, secure: true },
          ],
        }),
      ],
      { cwd: ROOT },
    );
    const ready = await advertiser.waitForLine((l) => l.includes('"event":"ready"') || l.includes('"event":"error"'), 20_000, 'ready line');
    assert.match(ready, /"event":"ready"/);
    const adv = advertiser;

    /** `avahi-browse -rtp <type>` until it resolves `instance` (avahi may still be collecting answers). */
    const resolve = async (type: string, instance: string): Promise<{ found: Resolved; stdout: string }> => {
      const deadline = Date.now() + 20_000;
      let last = '';
      while (Date.now() < deadline) {
        const r = await pair.b.run(avahiBrowse, ['-rtp', type], { timeoutMs: 15_000, env });
        last = `exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
        const found = resolvedLines(r.stdout).find((e) => e.name === instance);
        if (found) return { found, stdout: r.stdout };
        await new Promise((res) => setTimeout(res, 500));
      }
      assert.fail(`avahi-browse -rtp ${type} never resolved ${instance}\n${last}`);
    };

    await t.test('avahi-browse -rtp _coap._udp resolves the hub: 10.77.0.x address, port, TXT v=1 id= api=', async () => {
      const { found } = await resolve('_coap._udp', `henge-${plainId}`);
      assert.equal(found.iface, pair.b.ifname);
      assert.equal(found.protocol, 'IPv4');
      assert.equal(found.type, '_coap._udp');
      assert.equal(found.hostname, `henge-${plainId}-coap.local`, "a plain CoAP service has a host name of its own (discovery/service.ts hostName)");
      assert.equal(found.address, pair.a.address);
      assert.match(found.address, /^10\.77\.0\.\d+$/);
      assert.equal(found.port, 5683);
      assert.deepEqual([...found.txt].sort(), [`api=${apiPort}`, `id=${plainId}`, 'v=1'].sort());
    });

    await t.test('the secure hub is under _coaps._udp, and both are registered under the _henge subtype', async () => {
      const { found, stdout } = await resolve('_coaps._udp', `henge-${secureId}`);
      assert.equal(found.address, pair.a.address);
      assert.equal(found.port, 5684);
      assert.ok(found.txt.includes(`id=${secureId}`), found.txt.join(' '));
      assert.ok(!stdout.includes(`henge-${plainId}`), 'the insecure hub is not a _coaps._udp service');
      assert.equal((await resolve('_henge._sub._coap._udp', `henge-${plainId}`)).found.port, 5683);
      assert.equal((await resolve('_henge._sub._coaps._udp', `henge-${secureId}`)).found.port, 5684);
    });

    await t.test('stop() sends goodbyes: avahi-browse -p reports the removal (-) while the advertiser still runs', async (st) => {
      const browse = pair.b.spawn(avahiBrowse, ['-p', '_coap._udp'], { env });
      const added = (l: string): boolean => l.startsWith('+;') && l.includes(`;henge-${plainId};`);
      const removed = (l: string): boolean => l.startsWith('-;') && l.includes(`;henge-${plainId};`);
      await browse.waitForLine(added, 15_000, `+ line for henge-${plainId}`);
      const stopAt = Date.now();
      adv.write('stop\n');
      await adv.waitForLine((l) => l.includes('"event":"stopped"'), 10_000, 'stopped line');
      const line = await browse.waitForLine(removed, 5000, `- line for henge-${plainId}`);
      st.diagnostic(`avahi saw the goodbye ${Date.now() - stopAt} ms after stop: ${line}`);
      assert.ok(adv.running(), 'the advertiser process is still running: the removal came from goodbye packets');
      // PTR records live 75 minutes (RFC 6762 §10): without a goodbye avahi would still list the hub.
      const after = await pair.b.run(avahiBrowse, ['-rtp', '_coap._udp'], { timeoutMs: 15_000, env });
      assert.ok(!after.stdout.includes(`henge-${plainId}`), after.stdout);
      await browse.stop(2000);
    });
  } finally {
    if (advertiser?.running() === true) {
      advertiser.write('exit\n');
      await Promise.race([advertiser.exited, new Promise((r) => setTimeout(r, 3000))]);
    }
    await avahi?.stop();
    await pair.cleanup();
  }
});
