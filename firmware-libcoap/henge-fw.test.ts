/**
 * henge-fw (the C firmware's Linux port, on libcoap) against a real hub process: apply and ack, the
 * --out file (byte for byte the Node agent's JSON) and the LED file follow `henge set`, a snapshot over
 * 2 KB arrives whole (Block2), and after a hub restart on the same data and ports it reconnects and
 * converges. Over plain CoAP (hub --insecure) and over DTLS-PSK with the key `henge device add` printed.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { render } from '../agent/formats.ts';
import { StateStore } from '../agent/state.ts';
import type { ConfigValue } from '../protocol/snapshot.ts';
import { waitFor } from '../test/helpers/agent-process.ts';
import type { LogLine } from '../test/helpers/agent-process.ts';
import { HENGE_FW, HENGE_FW_ASAN, firmwareReady, startFirmwareProcess } from '../test/helpers/firmware.ts';
import type { FirmwareProcess } from '../test/helpers/firmware.ts';
import { deviceStateOf, henge, makeSandbox, runCli, startHubProcess } from '../test/helpers/processes.ts';
import type { DeviceStateView, HubProcess, Sandbox } from '../test/helpers/processes.ts';

const isAcked = (l: LogLine): boolean => l.msg === 'ack delivered';

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  const text = await readText(path);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    return undefined; // caught between two writes? never: the file is replaced atomically; but be safe
  }
}

/** Builds henge-fw (plain and ASan + UBSan) once; false (test skipped) without the toolchain or libcoap3-dev. */
const ensureBuilt = (t: TestContext): boolean => firmwareReady(t, ['build/henge-fw', 'build/asan/henge-fw'], { libcoap: true });

const running: FirmwareProcess[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL', 5_000)));
});

/**
 * The whole story for one transport: `secure` uses the DTLS endpoint and the device key, else the plain
 * CoAP endpoint (the hub runs with --insecure and serves both). The DTLS story runs henge-fw built with
 * ASan + UBSan (every path of the port but the plain socket): an error aborts it, a leak fails its exit.
 */
function story(secure: boolean): void {
  const kind = secure ? 'coaps' : 'coap';
  describe(`henge-fw over ${kind}`, () => {
    let sandbox: Sandbox;
    let hub: HubProcess;
    let token = '';
    let key = '';

    const cli = (...args: string[]): Promise<string> => henge(sandbox, ...args);
    const state = (id: string): Promise<DeviceStateView> => deviceStateOf(hub, token, id);
    const converged = (id: string, timeoutMs = 10_000): Promise<true> =>
      waitFor(`${id} converged`, async () => ((await state(id)).sync === 'converged' ? true : undefined), timeoutMs);
    const port = (): number => {
      const p = secure ? hub.coapsPort : hub.coapPort;
      assert.ok(p);
      return p;
    };

    before(async () => {
      sandbox = await makeSandbox(`henge-fw-${kind}-`);
      hub = await startHubProcess(sandbox, ['--keepalive', '5']);
      assert.ok(hub.token);
      token = hub.token;
    });
    after(async () => {
      await hub?.stop();
      await sandbox?.cleanup();
    });

    test(`henge-fw ${kind}${secure ? ' (ASan + UBSan build)' : ''} - applies and acks; --out (the Node agent's bytes) and the LED follow henge set; a 3 KB snapshot arrives whole (Block2); a hub restart converges`, { timeout: 90_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `fw-${kind}`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      const added = await cli('device', 'add', id, '--set', 'mode=heat', '--set', 'led=true', '--json');
      const args = ['--id', id, '--hub', `127.0.0.1:${port()}`, '--out', join(dir, 'config.json'), '--state', join(dir, 'state'), '--led', join(dir, 'led'), '--backoff-max', '2'];
      if (secure) {
        key = (JSON.parse(added) as { key: string }).key;
        assert.match(key, /^[A-Za-z0-9_-]{43}$/);
        await writeFile(join(dir, 'key'), `${key}\n`, { mode: 0o600 });
        args.push('--key-file', join(dir, 'key'));
      }
      const out = join(dir, 'config.json');
      const led = join(dir, 'led');
      const fw = startFirmwareProcess(sandbox, args, {}, secure ? HENGE_FW_ASAN : HENGE_FW);
      running.push(fw);

      // 1. First registration: applied, acked, the file is what the Node agent would write.
      await fw.waitForLog(isAcked, 20_000);
      const expect = (values: Record<string, ConfigValue>): string => render('json', values);
      assert.equal(await readText(out), expect({ mode: 'heat', led: true }));
      assert.equal(await readText(led), 'on\n');
      const started = fw.logs().find((l) => l.msg === 'agent started');
      assert.equal(started?.['coaps'], secure);
      await converged(id);

      // 2. A change through the API reaches the file; timed from the API call.
      const t0 = performance.now();
      const patch = await fetch(`${hub.url}/devices/${id}/values`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ values: { mode: 'cool', led: false } }),
      });
      assert.equal(patch.status, 200);
      await waitFor('mode=cool in the file', async () => ((await readJson(out))?.['mode'] === 'cool' ? true : undefined), 5_000, 2);
      const ms = performance.now() - t0;
      t.diagnostic(`PATCH -> --out written (${kind}): ${ms.toFixed(1)} ms`);
      assert.ok(ms < 1000, `PATCH -> file took ${ms} ms`);
      assert.equal(await readText(out), expect({ mode: 'cool', led: false }));
      await waitFor('the LED off', async () => ((await readText(led)) === 'off\n' ? true : undefined));
      await converged(id);

      // 3. henge set with blink_ms and a 3,000-byte value: over 2 KB, so Block2 (1,024-byte blocks).
      const blob = 'b'.repeat(3000);
      await cli('set', id, 'led=true', 'blink_ms=250', `blob=${blob}`);
      await waitFor('the blob in the file', async () => ((await readJson(out))?.['blob'] === blob ? true : undefined), 10_000);
      assert.equal(await readText(out), expect({ mode: 'cool', led: true, blink_ms: 250, blob }));
      // The LED file is written just after --out (and state.json): wait for it rather than race it.
      await waitFor('the LED blinking', async () => ((await readText(led)) === 'blink 250\n' ? true : undefined));
      const applied = fw.logs().filter((l) => l.msg === 'applied').at(-1);
      assert.ok(applied && (applied['bytes'] as number) > 2048 && applied['blockwise'] === true, JSON.stringify(applied));
      await converged(id);

      // 4. The hub restarts on the same data and ports; a change made meanwhile arrives.
      const portArg = secure ? '--coaps-port' : '--coap-port';
      const p = String(port());
      assert.equal(await hub.stop('SIGTERM'), 0, `hub output:\n${hub.stdout().slice(-3000)}${hub.stderr().slice(-3000)}`);
      hub = await startHubProcess(sandbox, ['--keepalive', '5', portArg, p]);
      assert.equal(String(port()), p);
      const before = fw.logs().length;
      await cli('set', id, 'mode=after-restart', 'led=false');
      await waitFor('mode=after-restart in the file', async () => ((await readJson(out))?.['mode'] === 'after-restart' ? true : undefined), 30_000);
      await waitFor('the LED off again', async () => ((await readText(led)) === 'off\n' ? true : undefined));
      await fw.waitForLog((l) => l.msg === 'reconnected', 10_000, before).catch(() => undefined);
      await converged(id, 15_000);

      // 5. SIGTERM: deregisters and exits 0 (under ASan: no error, no leak); the key was never logged.
      assert.equal(await fw.stop('SIGTERM'), 0, fw.stderr().slice(-3000));
      assert.ok(fw.logs().some((l) => l.msg === 'deregistered' || l.msg === 'deregistration got no answer'));
      if (secure) {
        assert.ok(!fw.stderr().includes(key), 'henge-fw never logs its key');
        assert.ok(!hub.stderr().includes(key) && !hub.stdout().includes(key), 'the hub never logs the key');
      }
      // The state folder holds what the Node agent reads: format 1, the applied version, acked.
      const saved = JSON.parse((await readText(join(dir, 'state', 'state.json'))) ?? '{}') as { format: number; device: string; applied: { version: number; acked: boolean } };
      assert.equal(saved.format, 1);
      assert.equal(saved.device, id);
      assert.equal(saved.applied.version, (await state(id)).appliedVersion);
      assert.equal(saved.applied.acked, true);
      // ... and the Node agent's own reader takes it (the two can take over each other's folder).
      const store = new StateStore(join(dir, 'state'), id);
      const loaded = await store.load();
      assert.equal(loaded.applied?.snapshot.version, saved.applied.version);
      assert.equal(loaded.applied?.snapshot.values['mode'], 'after-restart');
      assert.equal(loaded.applied?.acked, true);
    });
  });
}

story(false);
story(true);

describe('henge-fw refusals', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  before(async () => {
    sandbox = await makeSandbox('henge-fw-refusals-');
    hub = await startHubProcess(sandbox, ['--keepalive', '5']);
  });
  after(async () => {
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('henge-fw refusals - a wrong key never gets config and says so; an unknown device is named; usage errors exit 2', { timeout: 60_000 }, async (t) => {
    if (!ensureBuilt(t)) return;
    await runCli(sandbox, ['device', 'add', 'fw-wrong', '--set', 'mode=heat']);
    const dir = join(sandbox.dir, 'fw-wrong');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'bad-key'), 'not-the-key-at-all\n', { mode: 0o600 });
    const out = join(dir, 'config.json');
    const wrong = startFirmwareProcess(sandbox, ['--id', 'fw-wrong', '--hub', `127.0.0.1:${String(hub.coapsPort)}`, '--key-file', join(dir, 'bad-key'), '--out', out, '--state', join(dir, 'state'), '--backoff-max', '1']);
    running.push(wrong);
    const line = await wrong.waitForLog((l) => JSON.stringify(l).includes('DTLS'), 30_000);
    assert.match(JSON.stringify(line), /no DTLS session|DTLS session ended/);
    assert.equal(await readText(out), undefined, 'no config was written');
    assert.equal(await wrong.stop('SIGTERM'), 0);
    assert.ok(!wrong.stderr().includes('not-the-key-at-all'), 'henge-fw never logs its key');

    // An id the hub does not know (plain CoAP): the log names the fix.
    const ghost = startFirmwareProcess(sandbox, ['--id', 'fw-ghost', '--hub', `127.0.0.1:${String(hub.coapPort)}`, '--out', join(sandbox.dir, 'ghost.json'), '--state', join(sandbox.dir, 'ghost-state'), '--backoff-max', '1']);
    running.push(ghost);
    const refused = await ghost.waitForLog((l) => JSON.stringify(l).includes('henge device add fw-ghost'), 15_000);
    assert.equal(refused.level, 50);
    assert.equal(await ghost.stop('SIGTERM'), 0);

    // Usage: no --id, a bad id, --exec-timeout out of 1..86400 (as the Node agent), yaml, an empty --hub: exit 2 with a message.
    // (No --hub at all is not one: henge-fw then looks for the hub over mDNS, henge-fw-discovery.test.ts.)
    for (const args of [['--out', 'x.json', '--hub', '127.0.0.1'], ['--id', 'Bad_Id', '--out', 'x.json', '--hub', '127.0.0.1'], ['--id', 'a', '--out', 'x.json', '--hub', '127.0.0.1', '--exec', 'true', '--exec-timeout', '0'], ['--id', 'a', '--out', 'x.yaml', '--hub', '127.0.0.1'], ['--id', 'a', '--out', 'x.json', '--hub', '']]) {
      const p = startFirmwareProcess(sandbox, args);
      assert.equal(await p.exited, 2, `henge-fw ${args.join(' ')}: ${p.stderr()}`);
      assert.match(p.stderr(), /^henge-fw: .+/);
    }
  });
});
