/**
 * The microcontroller client (ports/pico-w/henge_mcu_client.c, shared by the Pico W and ESP32 ports) run
 * on Linux as henge-mcu-host (ASan + UBSan, Debian's libcoap) against a real hub, over plain CoAP and
 * over DTLS-PSK: the LED follows `led` and `blink_ms`, a snapshot over 2 KB arrives whole (Block2) and
 * fits the MCU limits, one beyond them is acked "rejected" and changes nothing, the applied config
 * survives a restart in the A/B slots of its flash image, and SIGTERM ends it cleanly. Its "newest ack
 * first" runs in firmware-libcoap/newest-ack.test.ts, the same suite as henge-fw's.
 *
 * What this cannot show: the boards' SDK glue (Wi-Fi, lwIP's raw API, the flash and LED drivers).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../../../../test/helpers/agent-process.ts';
import type { LogLine } from '../../../../test/helpers/agent-process.ts';
import { FIRMWARE_BUILD, firmwareReady, startFirmwareProcess } from '../../../../test/helpers/firmware.ts';
import type { FirmwareProcess } from '../../../../test/helpers/firmware.ts';
import { deviceStateOf, henge, makeSandbox, startHubProcess } from '../../../../test/helpers/processes.ts';
import type { DeviceStateView, HubProcess, Sandbox } from '../../../../test/helpers/processes.ts';

const BIN = join(FIRMWARE_BUILD, 'mcu-host', 'henge-mcu-host');

/** Builds henge-mcu-host (make -C ports/pico-w/host) once; false (test skipped) without the toolchain or libcoap3-dev. */
const ensureBuilt = (t: TestContext): boolean => firmwareReady(t, ['-s'], { libcoap: true, dir: join('ports', 'pico-w', 'host') });

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

    const cli = (...args: string[]): Promise<string> => henge(sandbox, ...args);
    const state = (id: string): Promise<DeviceStateView> => deviceStateOf(hub, token, id);
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
