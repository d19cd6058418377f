/**
 * coaps: a real `henge hub` process with its DTLS endpoint against libcoap's own clients, built on
 * OpenSSL and on GnuTLS (Debian package libcoap3-bin), with the device keys `henge device add` prints.
 * Without the binaries the tests are skipped, except with CI=true, where they fail.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeSandbox, runCli, startHubProcess } from '../../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../../test/helpers/processes.ts';
import { waitFor } from '../../test/helpers/coap-client.ts';
import { findOnPath, needPeer, runPeer, snapshotsIn, stopAllPeers } from '../../test/helpers/libcoap.ts';

const OPENSSL = 'coap-client-openssl';
const GNUTLS = 'coap-client-gnutls';

describe('coaps', () => {
  let sb: Sandbox | undefined;
  let hub: HubProcess | undefined;
  const keysUsed: string[] = [];

  const henge = async (...args: string[]): Promise<string> => {
    assert.ok(sb);
    const r = await runCli(sb, args);
    assert.equal(r.code, 0, `henge ${args.join(' ').slice(0, 80)}: ${r.stderr}`);
    return r.stdout;
  };
  /** Adds a device; returns the key the hub shows once. */
  const addDevice = async (id: string, ...more: string[]): Promise<string> => {
    const out = JSON.parse(await henge('device', 'add', id, '--json', ...more)) as { key?: string; keyId?: string };
    assert.ok(out.key, 'device add returns a key');
    assert.match(out.key, /^[A-Za-z0-9_-]{43}$/, '256 bits as base64url');
    keysUsed.push(out.key);
    return out.key;
  };
  const uri = (device: string): string => {
    assert.ok(hub?.coapsPort, 'the hub runs a coaps endpoint');
    return `coaps://127.0.0.1:${hub.coapsPort}/d/${device}/c`;
  };
  async function metric(name: string): Promise<number> {
    assert.ok(hub?.token);
    const r = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.token}` } });
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await r.text());
    assert.ok(m?.[1], `metric ${name}`);
    return Number(m[1]);
  }

  before(async () => {
    if (!findOnPath(OPENSSL) && process.env['CI'] !== 'true') return;
    sb = await makeSandbox('henge-coaps-');
    hub = await startHubProcess(sb, ['--log-level', 'debug']);
  });

  after(async () => {
    await stopAllPeers();
    await hub?.stop();
    await sb?.cleanup();
  });

  async function observeEveryChange(t: TestContext, client: string, id: string): Promise<void> {
    const bin = needPeer(t, client);
    if (!bin) return;
    const key = await addDevice(id, '--set', 'mode=heat');
    const obs = runPeer(bin, ['-s', '20', '-B', '25', '-u', id, '-k', key, '-m', 'get', uri(id)]);
    const seen = (mode: string) => () => {
      const s = snapshotsIn(obs.stdout());
      return s?.some((x) => x.values.get('mode') === mode) ? s : undefined;
    };
    await waitFor(`${client} to print the first snapshot over DTLS (stderr: ${obs.stderr()})`, seen('heat'), 10_000);
    await henge('set', id, 'mode=cool');
    await waitFor('the notification with mode=cool', seen('cool'), 10_000);
    await henge('set', id, 'mode=off');
    const printed = await waitFor('the notification with mode=off', seen('off'), 10_000);
    await obs.stop();
    assert.deepEqual(printed.map((s) => s.values.get('mode')), ['heat', 'cool', 'off'], 'every snapshot, once each, in order');
  }

  test('coaps - coap-client-openssl with -u <id> -k <key> observes its config and gets every change', { timeout: 60_000 }, (t) => observeEveryChange(t, OPENSSL, 'dt-openssl'));

  test('coaps - coap-client-gnutls with -u <id> -k <key> observes its config and gets every change', { timeout: 60_000 }, (t) => observeEveryChange(t, GNUTLS, 'dt-gnutls'));

  test('coaps - a wrong key fails the handshake; nothing is served', { timeout: 60_000 }, async (t) => {
    const bin = needPeer(t, OPENSSL);
    if (!bin) return;
    await addDevice('dt-wrong');
    const completed = await metric('henge_dtls_handshakes_completed');
    const run = runPeer(bin, ['-B', '4', '-u', 'dt-wrong', '-k', 'not-the-key', '-m', 'get', uri('dt-wrong')]);
    await run.exited;
    assert.equal(snapshotsIn(run.stdout())?.length ?? 0, 0, 'no snapshot printed');
    assert.equal(await metric('henge_dtls_handshakes_completed'), completed, 'no handshake completed');
  });

  test('coaps - device A\'s identity cannot read /d/B/c: 4.03, counted', { timeout: 60_000 }, async (t) => {
    const bin = needPeer(t, OPENSSL);
    if (!bin) return;
    const keyA = await addDevice('dt-a');
    await addDevice('dt-b', '--set', 'secret=b-only');
    const forbidden = await metric('henge_coaps_forbidden');
    const run = runPeer(bin, ['-B', '5', '-u', 'dt-a', '-k', keyA, '-m', 'get', uri('dt-b')]);
    await run.exited;
    assert.match(run.stdout().toString() + run.stderr(), /4\.03/, 'libcoap reports 4.03');
    assert.ok(!run.stdout().includes(Buffer.from('b-only')), 'nothing of B was sent');
    assert.equal(await metric('henge_coaps_forbidden'), forbidden + 1);
  });

  test('coaps - a removed device is refused at the handshake', { timeout: 60_000 }, async (t) => {
    const bin = needPeer(t, OPENSSL);
    if (!bin) return;
    const key = await addDevice('dt-gone', '--set', 'mode=on');
    const before = runPeer(bin, ['-B', '5', '-u', 'dt-gone', '-k', key, '-m', 'get', uri('dt-gone')]);
    await before.exited;
    assert.equal(snapshotsIn(before.stdout())?.length, 1, 'the key worked while the device existed');
    await henge('device', 'rm', 'dt-gone');
    const completed = await metric('henge_dtls_handshakes_completed');
    const run = runPeer(bin, ['-B', '4', '-u', 'dt-gone', '-k', key, '-m', 'get', uri('dt-gone')]);
    await run.exited;
    assert.equal(snapshotsIn(run.stdout())?.length ?? 0, 0);
    assert.equal(await metric('henge_dtls_handshakes_completed'), completed);
  });

  test('coaps - a flood of spoofed ClientHellos gets only HelloVerifyRequests, and no session', { timeout: 60_000 }, async (t) => {
    const bin = needPeer(t, OPENSSL);
    if (!bin || !hub?.coapsPort) return;
    // A real ClientHello, as libcoap's client sends it first: caught on a socket of our own.
    const trap = createSocket('udp4');
    trap.bind(0, '127.0.0.1');
    await once(trap, 'listening');
    const caught = once(trap, 'message') as Promise<[Buffer]>;
    const run = runPeer(bin, ['-B', '3', '-u', 'x', '-k', 'y', '-m', 'get', `coaps://127.0.0.1:${trap.address().port}/d/x/c`]);
    const [hello] = await caught;
    await run.stop();
    trap.close();
    assert.equal(hello[0], 22, 'a handshake record');
    assert.equal(hello[13], 1, 'a ClientHello');

    const sessions = await metric('henge_dtls_sessions');
    const hvr = await metric('henge_dtls_hello_verify_requests');
    const sockets: Socket[] = [];
    const answers: Buffer[] = [];
    const n = 200;
    for (let i = 0; i < n; i++) {
      const s = createSocket('udp4');
      s.on('message', (m) => answers.push(m));
      s.bind(0, '127.0.0.1');
      sockets.push(s);
    }
    await Promise.all(sockets.map((s) => once(s, 'listening')));
    for (const s of sockets) s.send(hello, hub.coapsPort, '127.0.0.1');
    await waitFor(`${n} answers`, () => answers.length >= n, 10_000);
    for (const s of sockets) s.close();
    assert.ok(answers.every((a) => a[0] === 22 && a[13] === 3), 'every answer is a HelloVerifyRequest');
    assert.equal(await metric('henge_dtls_sessions'), sessions, 'no session for any of them');
    assert.equal(await metric('henge_dtls_hello_verify_requests'), hvr + n);
  });

  test('coaps - keys are encrypted at rest under a 0600 master key, and no key is in the logs', async (t) => {
    if (!findOnPath(OPENSSL) && !needPeer(t, OPENSSL)) return;
    assert.ok(hub && sb);
    if (keysUsed.length === 0) await addDevice('dt-rest');
    const master = await stat(join(hub.dataDir, 'master.key'));
    assert.equal(master.mode & 0o777, 0o600);
    assert.equal((await stat(join(hub.dataDir, 'keys'))).mode & 0o777, 0o700);
    const readAll = async (dir: string): Promise<Buffer> =>
      Buffer.concat(await Promise.all((await readdir(dir)).map((f) => readFile(join(dir, f)).catch(() => Buffer.alloc(0)))));
    const everything = await readAll(join(hub.dataDir, 'keys'));
    const log = await readAll(join(hub.dataDir, 'store'));
    for (const key of keysUsed) {
      assert.ok(!everything.includes(Buffer.from(key)), 'the keystore holds no key in clear');
      assert.ok(!log.includes(Buffer.from(key)), 'the event log and views hold no key');
      assert.ok(!hub.stderr().includes(key) && !hub.stdout().includes(key), 'the hub never logged a key');
    }
    assert.match(hub.stderr(), /DTLS session open/, 'the debug log was on (it names identities only)');
  });
});

test('coaps - secure by default: plain CoAP only with --insecure, which the banner, the log and /healthz say', { timeout: 60_000 }, async () => {
  const sb = await makeSandbox('henge-secure-default-');
  try {
    const secure = await startHubProcess(sb, [], 20_000, { insecure: false });
    try {
      assert.equal(secure.coapPort, null, 'no plain CoAP endpoint');
      assert.ok(secure.coapsPort, 'a coaps endpoint');
      assert.match(secure.stdout(), /CoAP: off \(plain CoAP only with --insecure\)/);
      const h = (await (await fetch(`${secure.url}/healthz`)).json()) as { insecure: boolean };
      assert.equal(h.insecure, false);
    } finally {
      await secure.stop();
    }
    const insecure = await startHubProcess(sb, [], 20_000, { insecure: true });
    try {
      assert.ok(insecure.coapPort, 'plain CoAP with --insecure');
      assert.match(insecure.stdout(), /NOT ENCRYPTED/);
      await waitFor('the warning in the log', () => /INSECURE \(--insecure\)/.test(insecure.stderr()), 5_000);
      const h = (await (await fetch(`${insecure.url}/healthz`)).json()) as { insecure: boolean };
      assert.equal(h.insecure, true);
    } finally {
      await insecure.stop();
    }
  } finally {
    await sb.cleanup();
  }
});
