/**
 * The "newest ack first" rule (docs/protocol.md, "Ack"), run the same way against henge-fw and against
 * the microcontroller client's Linux build henge-mcu-host (ports/pico-w/host; both ASan + UBSan: exit 0
 * at SIGTERM, no report), each against a real hub process over plain CoAP, through a filter relay
 * (test/helpers/filter-relay.ts) that drops exactly the datagrams a situation needs:
 *
 * - an older ack in flight: every POST of the ack of v1 is dropped, so its exchange keeps
 *   retransmitting (up to 93 s); the ack of v2 must reach the hub at once all the same, and a late
 *   answer to the v1 ack settles nothing;
 * - a re-registration in flight: the hub's answers to re-registrations are dropped, so a keepalive
 *   re-registration stays in flight; the ack of a change must reach the hub at once all the same, and
 *   the device registers again right after it (answered once the answers pass again). The change's
 *   notification itself ends that re-registration inside libcoap (it ends every request carrying the
 *   token of a notification), so what the old code got wrong here is the registration after the ack:
 *   it took the notification for the registration's answer and waited for its next keepalive;
 * - henge-fw only (the MCU client has no hook): the same, but the ack comes due without a notification
 *   (an --exec hook ends): the re-registration is still in flight, and the ack must go beside it.
 *
 * libcoap 4.3.1 cannot cancel an exchange, so the program lets the newest ack run beside the one it
 * abandons (NSTART 2 meanwhile) and ignores the abandoned exchange's answer (docs/firmware.md).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../test/helpers/agent-process.ts';
import type { LogLine } from '../test/helpers/agent-process.ts';
import { Direction, ackVersionOf, isRegistration, startFilterRelay } from '../test/helpers/filter-relay.ts';
import type { FilterRelay } from '../test/helpers/filter-relay.ts';
import { FIRMWARE_BUILD, HENGE_FW_ASAN, firmwareReady, startFirmwareProcess } from '../test/helpers/firmware.ts';
import type { FirmwareProcess } from '../test/helpers/firmware.ts';
import { deviceStateOf, henge, makeSandbox, startHubProcess } from '../test/helpers/processes.ts';
import type { DeviceStateView, HubProcess, Sandbox } from '../test/helpers/processes.ts';

/** What differs between the two programs: how each is built and started, its config, and its log's words. */
interface Program {
  /** The suite's name. */
  readonly suite: string;
  /** What the tests' names start with, and what they call the program. */
  readonly name: string;
  readonly what: 'device' | 'client';
  /** Device ids and the sandbox are named after this. */
  readonly short: string;
  /** False (test skipped) without the toolchain or libcoap3-dev; builds the program once. */
  readonly ready: (t: TestContext) => boolean;
  readonly bin: string;
  /** The program's own arguments for a device whose files live in `dir` (besides --id, --hub, --backoff-max). */
  readonly args: (dir: string) => readonly string[];
  /** The value the device is added with, a change, and the change after it. */
  readonly values: readonly [string, string, string];
  /** The log line that says `version` was applied. */
  readonly applied: (version: number) => (l: LogLine) => boolean;
  /** The log line that says the hub answered the ack of `version`. */
  readonly delivered: (version: number) => (l: LogLine) => boolean;
  /** The log line that says a late 2.04 to the superseded ack of `version` was ignored. */
  readonly lateAnswerIgnored: (version: number) => (l: LogLine) => boolean;
  /** Whether it runs an --exec hook (the MCU client has none). */
  readonly hasExec: boolean;
}

const FW: Program = {
  suite: 'henge-fw newest ack',
  name: 'henge-fw',
  what: 'device',
  short: 'fw',
  ready: (t) => firmwareReady(t, ['build/asan/henge-fw'], { libcoap: true }),
  bin: HENGE_FW_ASAN,
  args: (dir) => ['--out', join(dir, 'config.json'), '--state', join(dir, 'state'), '--log-level', 'debug'],
  values: ['mode=heat', 'mode=cool', 'mode=auto'],
  applied: (version) => (l) => l.msg === 'applied' && l['version'] === version,
  delivered: (version) => (l) => l.msg === 'ack delivered' && l['version'] === version,
  lateAnswerIgnored: (version) => (l) => l.msg === 'a late answer to a superseded ack; ignored' && l['version'] === version && l['code'] === '2.04',
  hasExec: true,
};

const MCU_HOST: Program = {
  suite: 'henge-mcu-host newest ack',
  name: 'mcu client',
  what: 'client',
  short: 'mcu',
  ready: (t) => firmwareReady(t, ['-s'], { libcoap: true, dir: join('ports', 'pico-w', 'host') }),
  bin: join(FIRMWARE_BUILD, 'mcu-host', 'henge-mcu-host'),
  args: (dir) => ['--flash', join(dir, 'flash.img')],
  values: ['led=true', 'led=false', 'led=true'],
  applied: (version) => (l) => l.msg.startsWith(`applied version ${version} `),
  delivered: (version) => (l) => new RegExp(`^ack of version ${version} \\(applied\\): 2\\.04$`).test(l.msg),
  lateAnswerIgnored: (version) => (l) => l.msg.startsWith(`a late answer to the superseded ack of version ${version}: 2.04`),
  hasExec: false,
};

/**
 * After the hub answered the ack of `version` (seen in the relay's log from `from` on): the first
 * registration the device sent afterwards that is a new request (not a retransmission of one sent
 * before), and how long after that answer it went.
 */
async function registeredAgainAfterAck(relay: FilterRelay, from: number, version: number): Promise<{ readonly gapMs: number }> {
  // The hub answers once the ack is durable, so the API may show it converged a moment before the answer passes.
  const answered = await waitFor(
    `the hub's answer to the ack of v${version} through the relay`,
    () => relay.log.find((e, i) => i >= from && e.direction === Direction.Down && !e.dropped && ackVersionOf(e.answers) === version),
    5_000,
    20,
  );
  const seenBefore = new Set(relay.log.slice(0, relay.log.indexOf(answered)).filter((e) => e.direction === Direction.Up && isRegistration(e.msg)).map((e) => e.msg?.messageId));
  const next = await waitFor(
    'a new registration after the ack',
    () => relay.log.find((e) => e.at >= answered.at && e.direction === Direction.Up && isRegistration(e.msg) && !seenBefore.has(e.msg?.messageId)),
    10_000,
    50,
  );
  return { gapMs: next.at - answered.at };
}

/** Lets every datagram pass again, and waits for an answer to a registration to reach the device. */
async function answeredAgain(relay: FilterRelay): Promise<void> {
  const from = relay.log.length;
  relay.setFilter(null);
  await waitFor(
    'a registration answered',
    () => (relay.log.slice(from).some((e) => e.direction === Direction.Down && !e.dropped && isRegistration(e.answers)) ? true : undefined),
    15_000,
    50,
  );
}

/**
 * From now on the hub's answers to (re-)registrations are lost: waits until one was dropped (the next
 * keepalive stays in flight), and returns where in the relay's log that began.
 */
async function reRegistrationInFlight(relay: FilterRelay): Promise<number> {
  const mark = relay.log.length;
  relay.setFilter((d) => d.direction === Direction.Down && isRegistration(d.answers));
  await waitFor('a re-registration in flight (its answer dropped)', () => (relay.log.slice(mark).some((e) => e.dropped) ? true : undefined), 15_000, 50);
  return mark;
}

function newestAck(program: Program): void {
  const { name, what, short } = program;
  const [first, change, another] = program.values;
  describe(program.suite, () => {
    let sandbox: Sandbox;
    let hub: HubProcess;
    let token = '';
    const running: FirmwareProcess[] = [];
    const relays: FilterRelay[] = [];

    before(async () => {
      sandbox = await makeSandbox(`henge-${short}-newest-ack-`);
      // The shortest keepalive the hub takes: a re-registration every 3.5-4.25 s.
      hub = await startHubProcess(sandbox, ['--keepalive', '5']);
      assert.ok(hub.token);
      token = hub.token;
    });
    after(async () => {
      await Promise.all(running.map((p) => p.stop('SIGKILL', 5_000)));
      await Promise.all(relays.map((r) => r.close()));
      await hub?.stop();
      await sandbox?.cleanup();
    });

    const cli = (...args: string[]): Promise<string> => henge(sandbox, ...args);
    const state = (id: string): Promise<DeviceStateView> => deviceStateOf(hub, token, id);
    /** Waits until the hub holds the device's ack of `version` (converged on it). */
    const convergedOn = (id: string, version: number, timeoutMs: number): Promise<true> =>
      waitFor(
        `${id} converged on v${version}`,
        async () => {
          const s = await state(id);
          return s.sync === 'converged' && s.appliedVersion === version ? true : undefined;
        },
        timeoutMs,
      );
    /** The program for device `id`, talking to the hub through `relay`. */
    const startDevice = async (id: string, relay: FilterRelay, extra: readonly string[] = []): Promise<FirmwareProcess> => {
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      const args = ['--id', id, '--hub', `127.0.0.1:${relay.port}`, '--backoff-max', '2', ...program.args(dir), ...extra];
      const fw = startFirmwareProcess(sandbox, args, {}, program.bin);
      running.push(fw);
      return fw;
    };
    const newRelay = async (): Promise<FilterRelay> => {
      assert.ok(hub.coapPort);
      const relay = await startFilterRelay({ host: '127.0.0.1', port: hub.coapPort });
      relays.push(relay);
      return relay;
    };
    /** The device is healthy afterwards: a change (`value`) converges as usual; SIGTERM exits 0 under ASan + UBSan. */
    const stillHealthy = async (id: string, fw: FirmwareProcess, value: string): Promise<void> => {
      await cli('set', id, value);
      await convergedOn(id, (await state(id)).desiredVersion, 10_000);
      assert.equal(await fw.stop('SIGTERM'), 0, fw.stderr().slice(-4000));
    };

    test(`${name} newest ack - an older ack in flight: the newest ack reaches the hub at once, and the late answer to the old one settles nothing`, { timeout: 90_000 }, async (t) => {
      if (!program.ready(t)) return;
      const id = `${short}-older-ack`;
      await cli('device', 'add', id, '--set', first);
      const v1 = (await state(id)).desiredVersion;
      const relay = await newRelay();
      // Every POST of the ack of v1 (or older) is lost: that exchange retransmits for up to 93 s.
      relay.setFilter((d) => d.direction === Direction.Up && (ackVersionOf(d.msg) ?? Number.POSITIVE_INFINITY) <= v1);
      const fw = await startDevice(id, relay);

      // v1 applied; its ack sent, lost, and sent again: that exchange is in flight.
      await fw.waitForLog(program.applied(v1), 20_000);
      await waitFor('the ack of v1 retransmitted', () => (relay.log.filter((e) => e.dropped && ackVersionOf(e.msg) === v1).length >= 2 ? true : undefined), 15_000);
      assert.notEqual((await state(id)).sync, 'converged');

      // v2: its ack goes beside the v1 exchange and the hub has it at once.
      const t0 = performance.now();
      await cli('set', id, change);
      const v2 = (await state(id)).desiredVersion;
      assert.ok(v2 > v1);
      await convergedOn(id, v2, 10_000);
      t.diagnostic(`henge set -> the hub holds the ack of v${v2}, the ack of v${v1} still in flight: ${(performance.now() - t0).toFixed(0)} ms`);
      await fw.waitForLog(program.delivered(v2), 5_000);
      assert.ok(relay.log.some((e) => !e.dropped && e.direction === Direction.Up && ackVersionOf(e.msg) === v2), 'the ack of v2 passed the relay');

      // The v1 exchange goes on; once its retransmission passes, the hub answers 2.04: the program ignores that answer.
      const mark = relay.log.length;
      relay.setFilter(null);
      await waitFor(
        'the hub answers a retransmission of the ack of v1',
        () => (relay.log.slice(mark).some((e) => e.direction === Direction.Down && ackVersionOf(e.answers) === v1) ? true : undefined),
        40_000,
        100,
      );
      await fw.waitForLog(program.lateAnswerIgnored(v1), 5_000);
      assert.ok(!fw.logs().some(program.delivered(v1)), 'a late answer to the superseded ack is not an ack delivered');
      const s = await state(id);
      assert.equal(s.appliedVersion, v2);
      assert.equal(s.sync, 'converged');

      await stillHealthy(id, fw, another);
    });

    test(`${name} newest ack - a re-registration in flight: the ack reaches the hub at once, then the ${what} registers again`, { timeout: 90_000 }, async (t) => {
      if (!program.ready(t)) return;
      const id = `${short}-reregistration`;
      await cli('device', 'add', id, '--set', first);
      const relay = await newRelay();
      const fw = await startDevice(id, relay);
      await convergedOn(id, (await state(id)).desiredVersion, 20_000);

      const mark = await reRegistrationInFlight(relay);

      const t0 = performance.now();
      await cli('set', id, change);
      const v2 = (await state(id)).desiredVersion;
      await convergedOn(id, v2, 5_000);
      t.diagnostic(`henge set -> the hub holds the ack of v${v2}, a re-registration in flight: ${(performance.now() - t0).toFixed(0)} ms`);

      // The notification ended the re-registration (libcoap ends every request with its token when one
      // comes), unanswered: the program registers again right after the ack, not at its next keepalive.
      const again = await registeredAgainAfterAck(relay, mark, v2);
      t.diagnostic(`the ack answered -> a new registration: ${again.gapMs} ms`);
      assert.ok(again.gapMs < 1_500, `registered again ${again.gapMs} ms after the ack (the next keepalive is 3.5-4.25 s away)`);

      // The answers pass again: the registration is answered, and the session stays up.
      await answeredAgain(relay);
      assert.ok(!fw.logs().some((l) => /hub unreachable|refused/.test(l.msg)), `the session never failed:\n${fw.stderr().slice(-4000)}`);
      await stillHealthy(id, fw, another);
    });

    if (!program.hasExec) return;

    test('henge-fw newest ack - an ack that comes due (an --exec hook ends) while a re-registration is in flight goes beside it at once', { timeout: 90_000 }, async (t) => {
      if (!program.ready(t)) return;
      const id = 'fw-hook-reregistration';
      await cli('device', 'add', id, '--set', 'mode=fast');
      const relay = await newRelay();
      // A hook that takes 2 s for mode=slow: its ack is held meanwhile. (Short: the registration that
      // stays in flight throughout must still be answered within henge-fw's 15 s registration timeout.)
      const fw = await startDevice(id, relay, ['--exec', 'if grep -q slow "$HENGE_CONFIG_FILE"; then sleep 2; fi']);
      await convergedOn(id, (await state(id)).desiredVersion, 20_000);

      const mark = await reRegistrationInFlight(relay);

      const logged = fw.logs().length;
      await cli('set', id, 'mode=slow');
      const v2 = (await state(id)).desiredVersion;
      await fw.waitForLog((l) => l.msg === '--exec succeeded', 15_000, logged);
      const t0 = performance.now();
      // No notification comes to end the re-registration this time: the ack goes beside it (NSTART 2).
      await convergedOn(id, v2, 3_000);
      t.diagnostic(`the hook ended -> the hub holds the ack of v${v2}, a re-registration in flight: ${(performance.now() - t0).toFixed(0)} ms`);
      const ackAt = relay.log.findIndex((e, i) => i >= mark && e.direction === Direction.Up && ackVersionOf(e.msg) === v2);
      assert.ok(ackAt >= 0);
      const inFlight = relay.log.slice(mark, ackAt).filter((e) => e.direction === Direction.Up && isRegistration(e.msg)).at(-1)?.msg;
      assert.ok(inFlight, 'a registration was in flight when the ack went');
      const answeredBefore = relay.log.slice(mark, ackAt).some((e) => e.direction === Direction.Down && !e.dropped && e.answers?.messageId === inFlight.messageId);
      assert.ok(!answeredBefore, 'that registration had no answer when the ack went');

      const again = await registeredAgainAfterAck(relay, mark, v2);
      t.diagnostic(`the ack answered -> a new registration: ${again.gapMs} ms`);
      assert.ok(again.gapMs < 1_500, `registered again ${again.gapMs} ms after the ack`);

      await answeredAgain(relay);
      // libcoap 4.3.1 cannot end the abandoned re-registration: it is retransmitted until answered, and
      // that late answer is ignored (the registration sent after the ack is the one that counts).
      await waitFor(
        'the hub answers the abandoned re-registration',
        () => (relay.log.some((e) => e.direction === Direction.Down && !e.dropped && isRegistration(e.answers) && e.answers?.messageId === inFlight.messageId) ? true : undefined),
        30_000,
        100,
      );
      await fw.waitForLog((l) => l.msg === 'a late answer to an abandoned re-registration; ignored', 5_000);
      assert.ok(!fw.logs().some((l) => /hub unreachable|refused/.test(l.msg)), `the session never failed:\n${fw.stderr().slice(-4000)}`);
      await stillHealthy(id, fw, 'mode=fast');
    });
  });
}

newestAck(FW);
newestAck(MCU_HOST);
