/**
 * The microcontroller client (ports/pico-w/henge_mcu_client.c, shared by the Pico W and ESP32 ports) run
 * on Linux as henge-mcu-host (ASan + UBSan, Debian's libcoap) against a real hub, over plain CoAP and
 * over DTLS-PSK: the LED follows `led` and `blink_ms`, a snapshot over 2 KB arrives whole (Block2) and
 * fits the MCU limits, one beyond them is acked "rejected" and changes nothing, the applied config
 * survives a restart in the A/B slots of its flash image, and SIGTERM ends it cleanly. And "newest ack
 * first" (docs/protocol.md, "Ack") through a filter relay (test/helpers/filter-relay.ts) that drops exactly
 * the datagrams of each situation: the ack of a newer snapshot goes at once beside an older ack still in
 * flight (whose late answer settles nothing), and after a re-registration in flight the ack goes at once
 * and the client registers again right after it.
 *
 * What this cannot show: the boards' SDK glue (Wi-Fi, lwIP's raw API, the flash and LED drivers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../../../../test/helpers/agent-process.ts';
import type { LogLine } from '../../../../test/helpers/agent-process.ts';
import { FIRMWARE_BUILD, FIRMWARE_DIR, needFirmwareToolchain, startFirmwareProcess } from '../../../../test/helpers/firmware.ts';
import type { FirmwareProcess } from '../../../../test/helpers/firmware.ts';
import { Direction, ackVersionOf, isRegistration, startFilterRelay } from '../../../../test/helpers/filter-relay.ts';
import type { FilterRelay } from '../../../../test/helpers/filter-relay.ts';
import { makeSandbox, runCli, startHubProcess } from '../../../../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../../../../test/helpers/processes.ts';
import { run } from '../../../../test/helpers/firmware.ts';

const BIN = join(FIRMWARE_BUILD, 'mcu-host', 'henge-mcu-host');

let built: boolean | undefined;
function ensureBuilt(t: Parameters<typeof needFirmwareToolchain>[0]): boolean {
  if (!needFirmwareToolchain(t, { libcoap: true })) return false;
  if (built === undefined) {
    const r = run('make', ['-C', join(FIRMWARE_DIR, 'ports', 'pico-w', 'host'), '--no-print-directory', '-s'], 300_000);
    assert.equal(r.code, 0, `make -C ports/pico-w/host failed:\n${r.output}`);
    built = true;
  }
  return built;
}

const running: FirmwareProcess[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL', 5_000)));
});

const ledIs = (state: string) => (l: LogLine): boolean => l.msg === 'led' && l['led'] === state;

function story(secure: boolean): void {
  const kind = secure ? 'coaps' : 'coap';
  describe(`henge-mcu-host over ${kind}`, () => {
    let sandbox: Sandbox;
    let hub: HubProcess;
    let token = '';

    before(async () => {
      sandbox = await makeSandbox(`henge-mcu-${kind}-`);
      hub = await startHubProcess(sandbox, ['--keepalive', '5']);
      assert.ok(hub.token);
      token = hub.token;
    });
    after(async () => {
      await hub?.stop();
      await sandbox?.cleanup();
    });

    const cli = async (...args: string[]): Promise<string> => {
      const r = await runCli(sandbox, args);
      assert.equal(r.code, 0, `henge ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const state = async (id: string): Promise<{ sync: string; appliedVersion: number | null; desiredVersion: number; lastAck: { status: string } | null }> => {
      const r = await fetch(`${hub.url}/devices/${id}/state`, { headers: { authorization: `Bearer ${token}` } });
      return (await r.json()) as { sync: string; appliedVersion: number | null; desiredVersion: number; lastAck: { status: string } | null };
    };
    const converged = (id: string, timeoutMs = 10_000): Promise<true> =>
      waitFor(`${id} converged`, async () => ((await state(id)).sync === 'converged' ? true : undefined), timeoutMs);

    test(`mcu client ${kind} - the LED follows led and blink_ms, Block2 within the MCU limits, a snapshot beyond them acked rejected, the config survives a restart`, { timeout: 120_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `mcu-${kind}`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      const added = await cli('device', 'add', id, '--set', 'led=true', '--json');
      const port = secure ? hub.coapsPort : hub.coapPort;
      assert.ok(port);
      const args = ['--id', id, '--hub', `127.0.0.1:${port}`, '--flash', join(dir, 'flash.img'), '--backoff-max', '2'];
      let key = '';
      if (secure) {
        key = (JSON.parse(added) as { key: string }).key;
        await writeFile(join(dir, 'key'), `${key}\n`, { mode: 0o600 });
        args.push('--key-file', join(dir, 'key'));
      }
      const start = (): FirmwareProcess => {
        const p = startFirmwareProcess(sandbox, args, {}, BIN);
        running.push(p);
        return p;
      };
      let fw = start();

      // 1. First registration: applied (LED on), acked, converged.
      await fw.waitForLog(ledIs('on'), 20_000);
      await converged(id);
      assert.ok(fw.logs().some((l) => /^connected to /.test(l.msg)), fw.stderr());

      // 2. blink_ms: the LED blinks; led=false turns it off whatever blink_ms says.
      await cli('set', id, 'blink_ms=250');
      await fw.waitForLog(ledIs('blink 250'), 10_000);
      await cli('set', id, 'led=false');
      await fw.waitForLog(ledIs('off'), 10_000);
      await converged(id);

      // 3. Over 2 KB in 12 fields of 200 bytes (the MCU limits: 32 fields, 256-byte texts, 4 KB): Block2.
      const big = Array.from({ length: 12 }, (_, i) => `f${i}=${String.fromCharCode(97 + i).repeat(200)}`);
      await cli('set', id, 'led=true', ...big);
      const applied = await fw.waitForLog((l) => /^applied version \d+ \(14 fields, (\d+) bytes\)$/.test(l.msg), 15_000);
      const bytes = Number(/(\d+) bytes/.exec(applied.msg)?.[1]);
      assert.ok(bytes > 2048, applied.msg);
      await fw.waitForLog(ledIs('on'), 10_000);
      await converged(id);
      t.diagnostic(`Block2 snapshot: ${bytes} bytes`);

      // 4. A 300-byte text is beyond the MCU's 256: acked rejected, nothing changes on the device.
      const before = fw.logs().length;
      await cli('set', id, `blob=${'x'.repeat(300)}`, 'led=false');
      await fw.waitForLog((l) => /\(rejected\): 2\.04$/.test(l.msg), 10_000, before);
      await waitFor('the hub records the rejection', async () => ((await state(id)).lastAck?.status === 'rejected' ? true : undefined), 10_000);
      assert.ok(!fw.logs().slice(before).some((l) => l.msg === 'led'), 'the LED did not change');
      await cli('unset', id, 'blob');
      await fw.waitForLog(ledIs('off'), 10_000, before);
      await converged(id);
      const appliedVersion = (await state(id)).appliedVersion;

      // 5. Restart: the applied config comes back from the A/B slots before the hub answers.
      assert.equal(await fw.stop('SIGTERM'), 0, fw.stderr().slice(-3000));
      fw = start();
      const restored = await fw.waitForLog((l) => /^restored the applied config, version \d+$/.test(l.msg), 10_000);
      assert.equal(restored.msg, `restored the applied config, version ${String(appliedVersion)}`);
      // The LED line is logged just after `restored` and may come in a later read of the pipe: wait for it.
      await fw.waitForLog((l) => l.msg === 'led', 10_000);
      const ledLine = fw.logs().findIndex((l) => l.msg === 'led');
      const connectedLine = fw.logs().findIndex((l) => /connected to/.test(l.msg));
      assert.ok(ledLine >= 0 && (connectedLine < 0 || ledLine < connectedLine), 'the LED shows the stored config before the hub answers');
      assert.equal(fw.logs()[ledLine]?.['led'], 'off');
      await fw.waitForLog((l) => /connected to/.test(l.msg), 15_000);
      await converged(id);

      // 6. SIGTERM: exit 0 under ASan + UBSan (no error, no leak); the key never logged.
      assert.equal(await fw.stop('SIGTERM'), 0, fw.stderr().slice(-3000));
      if (secure) assert.ok(!fw.stderr().includes(key), 'the key is never logged');
    });
  });
}

story(false);
story(true);

describe('henge-mcu-host newest ack', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  let token = '';
  const relays: FilterRelay[] = [];

  before(async () => {
    sandbox = await makeSandbox('henge-mcu-newest-ack-');
    // The shortest keepalive the hub takes: a re-registration every 3.5-4.25 s.
    hub = await startHubProcess(sandbox, ['--keepalive', '5']);
    assert.ok(hub.token);
    token = hub.token;
  });
  after(async () => {
    await Promise.all(relays.map((r) => r.close()));
    await hub?.stop();
    await sandbox?.cleanup();
  });

  const cli = async (...args: string[]): Promise<void> => {
    const r = await runCli(sandbox, args);
    assert.equal(r.code, 0, `henge ${args.join(' ')}: ${r.stderr}`);
  };
  const state = async (id: string): Promise<{ sync: string; appliedVersion: number | null; desiredVersion: number }> => {
    const r = await fetch(`${hub.url}/devices/${id}/state`, { headers: { authorization: `Bearer ${token}` } });
    return (await r.json()) as { sync: string; appliedVersion: number | null; desiredVersion: number };
  };
  const convergedOn = (id: string, version: number, timeoutMs: number): Promise<true> =>
    waitFor(`${id} converged on v${version}`, async () => {
      const s = await state(id);
      return s.sync === 'converged' && s.appliedVersion === version ? true : undefined;
    }, timeoutMs);
  const newRelay = async (): Promise<FilterRelay> => {
    assert.ok(hub.coapPort);
    const relay = await startFilterRelay({ host: '127.0.0.1', port: hub.coapPort });
    relays.push(relay);
    return relay;
  };
  const start = async (id: string, relay: FilterRelay): Promise<FirmwareProcess> => {
    const dir = join(sandbox.dir, id);
    await mkdir(dir, { recursive: true });
    const p = startFirmwareProcess(sandbox, ['--id', id, '--hub', `127.0.0.1:${relay.port}`, '--flash', join(dir, 'flash.img'), '--backoff-max', '2'], {}, BIN);
    running.push(p);
    return p;
  };
  const delivered = (version: number) => (l: LogLine): boolean => new RegExp(`^ack of version ${version} \\(applied\\): 2\\.04$`).test(l.msg);

  test('mcu client newest ack - an older ack in flight: the newest ack reaches the hub at once, and the late answer to the old one settles nothing', { timeout: 90_000 }, async (t) => {
    if (!ensureBuilt(t)) return;
    const id = 'mcu-older-ack';
    await cli('device', 'add', id, '--set', 'led=true');
    const v1 = (await state(id)).desiredVersion;
    const relay = await newRelay();
    // Every POST of the ack of v1 (or older) is lost: that exchange retransmits for up to 93 s.
    relay.setFilter((d) => d.direction === Direction.Up && (ackVersionOf(d.msg) ?? Number.POSITIVE_INFINITY) <= v1);
    const fw = await start(id, relay);
    await fw.waitForLog((l) => l.msg.startsWith(`applied version ${v1} `), 20_000);
    await waitFor('the ack of v1 retransmitted', () => (relay.log.filter((e) => e.dropped && ackVersionOf(e.msg) === v1).length >= 2 ? true : undefined), 15_000);

    const t0 = performance.now();
    await cli('set', id, 'led=false');
    const v2 = (await state(id)).desiredVersion;
    await convergedOn(id, v2, 10_000);
    t.diagnostic(`henge set -> the hub holds the ack of v${v2}, the ack of v${v1} still in flight: ${(performance.now() - t0).toFixed(0)} ms`);
    await fw.waitForLog(delivered(v2), 5_000);

    // The v1 exchange goes on; once a retransmission passes, the hub answers it: the client ignores that answer.
    const mark = relay.log.length;
    relay.setFilter(null);
    await waitFor('the hub answers a retransmission of the ack of v1', () => (relay.log.slice(mark).some((e) => e.direction === Direction.Down && ackVersionOf(e.answers) === v1) ? true : undefined), 40_000, 100);
    await fw.waitForLog((l) => l.msg.startsWith(`a late answer to the superseded ack of version ${v1}: 2.04`), 5_000);
    assert.ok(!fw.logs().some(delivered(v1)), 'a late answer to the superseded ack is not an ack delivered');
    assert.equal((await state(id)).appliedVersion, v2);

    await cli('set', id, 'led=true');
    await convergedOn(id, (await state(id)).desiredVersion, 10_000);
    assert.equal(await fw.stop('SIGTERM'), 0, fw.stderr().slice(-4000));
  });

  test('mcu client newest ack - a re-registration in flight: the ack reaches the hub at once, then the client registers again', { timeout: 90_000 }, async (t) => {
    if (!ensureBuilt(t)) return;
    const id = 'mcu-reregistration';
    await cli('device', 'add', id, '--set', 'led=true');
    const relay = await newRelay();
    const fw = await start(id, relay);
    await convergedOn(id, (await state(id)).desiredVersion, 20_000);

    // From now on the hub's answers to (re-)registrations are lost: the next keepalive stays in flight.
    const mark = relay.log.length;
    relay.setFilter((d) => d.direction === Direction.Down && isRegistration(d.answers));
    await waitFor('a re-registration in flight (its answer dropped)', () => (relay.log.slice(mark).some((e) => e.dropped) ? true : undefined), 15_000, 50);

    const t0 = performance.now();
    await cli('set', id, 'led=false');
    const v2 = (await state(id)).desiredVersion;
    await convergedOn(id, v2, 5_000);
    t.diagnostic(`henge set -> the hub holds the ack of v${v2}, a re-registration in flight: ${(performance.now() - t0).toFixed(0)} ms`);

    // The notification ended the re-registration (libcoap ends every request with its token), unanswered:
    // the client registers again right after the ack, not at its next keepalive.
    const answered = relay.log.find((e, i) => i >= mark && e.direction === Direction.Down && !e.dropped && ackVersionOf(e.answers) === v2);
    assert.ok(answered, `the hub's answer to the ack of v${v2} passed the relay`);
    const before = new Set(relay.log.slice(0, relay.log.indexOf(answered)).filter((e) => e.direction === Direction.Up && isRegistration(e.msg)).map((e) => e.msg?.messageId));
    const again = await waitFor('a new registration after the ack', () => relay.log.find((e) => e.at >= answered.at && e.direction === Direction.Up && isRegistration(e.msg) && !before.has(e.msg?.messageId)), 10_000, 50);
    const gap = again.at - answered.at;
    t.diagnostic(`the ack answered -> a new registration: ${gap} ms`);
    assert.ok(gap < 1_500, `registered again ${gap} ms after the ack (the next keepalive is 3.5-4.25 s away)`);

    // The answers pass again: a registration is answered, and the client stays up.
    const back = relay.log.length;
    relay.setFilter(null);
    await waitFor('a registration answered', () => (relay.log.slice(back).some((e) => e.direction === Direction.Down && !e.dropped && isRegistration(e.answers)) ? true : undefined), 15_000, 50);
    assert.ok(!fw.logs().some((l) => /hub unreachable|refused/.test(l.msg)), `the session never failed:\n${fw.stderr().slice(-4000)}`);
    await cli('set', id, 'led=true');
    await convergedOn(id, (await state(id)).desiredVersion, 10_000);
    assert.equal(await fw.stop('SIGTERM'), 0, fw.stderr().slice(-4000));
  });
});
