/**
 * --exec and --exec-timeout against a real hub process (plain CoAP), run the same way against henge-fw
 * (its ASan + UBSan build: an error aborts it, a leak fails its exit code) and against the Node agent
 * (`henge agent`), so that the two stay interchangeable: a hook that succeeds sees the variables, the
 * new file, the working folder and an empty stdin; a hook that exits 1 puts the previous file back byte
 * for byte (or removes it when there was none) and the hub shows `failed` with the same message from
 * both; a hook past --exec-timeout 1 is killed with its process group, and a change that arrives while
 * a hook runs applies after it; a hook that leaves `sleep 30 &` behind counts as done when its shell exits.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { render } from '../agent/formats.ts';
import { startAgentProcess, waitFor } from '../test/helpers/agent-process.ts';
import type { LoggingProcess, LogLine } from '../test/helpers/agent-process.ts';
import { HENGE_FW_ASAN, firmwareReady, startFirmwareProcess } from '../test/helpers/firmware.ts';
import { deviceStateOf, henge, makeSandbox, startHubProcess } from '../test/helpers/processes.ts';
import type { DeviceStateView, HubProcess, Sandbox } from '../test/helpers/processes.ts';

async function readBytes(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/** A process that is gone, or a zombie waiting for its parent. */
async function gone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
  return /\) Z /.test(stat);
}

/** Builds henge-fw (ASan + UBSan) once; false (test skipped) without the toolchain or libcoap3-dev. */
const ensureBuilt = (t: TestContext): boolean => firmwareReady(t, ['build/asan/henge-fw'], { libcoap: true });

/** Background sleeps the hooks left running (killed at the end, by pid). */
const leftBehind: number[] = [];
const running: LoggingProcess[] = [];
after(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL', 5_000)));
  for (const pid of leftBehind) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

type Program = 'henge-fw' | 'henge agent';

function exec(program: Program): void {
  const p = program === 'henge-fw' ? 'fw' : 'agent';
  describe(`--exec in ${program}`, () => {
    let sandbox: Sandbox;
    let hub: HubProcess;
    let token = '';

    const cli = (...args: string[]): Promise<string> => henge(sandbox, ...args);
    const state = (id: string): Promise<DeviceStateView> => deviceStateOf(hub, token, id);
    const converged = (id: string, timeoutMs = 15_000): Promise<DeviceStateView> =>
      waitFor(`${id} converged`, async () => {
        const s = await state(id);
        return s.sync === 'converged' && s.lastAck?.status === 'applied' ? s : undefined;
      }, timeoutMs);
    const failedAt = (id: string, version: number, timeoutMs = 15_000): Promise<DeviceStateView> =>
      waitFor(`${id} failed at v${String(version)}`, async () => {
        const s = await state(id);
        return s.lastAck?.status === 'failed' && s.lastAck.version === version ? s : undefined;
      }, timeoutMs);
    /** Starts the program for device `id` with --out <id>/./config.json relative to the sandbox (its cwd). */
    const start = (id: string, hook: string, extra: string[] = []): LoggingProcess => {
      const args = ['--id', id, '--hub', `127.0.0.1:${String(hub.coapPort)}`, '--out', `${id}/./config.json`, '--state', join(sandbox.dir, id, 'state'), '--backoff-max', '2', '--exec', hook, ...extra];
      const proc = program === 'henge-fw' ? startFirmwareProcess(sandbox, args, {}, HENGE_FW_ASAN) : startAgentProcess(sandbox, args);
      running.push(proc);
      return proc;
    };
    const stop = async (proc: LoggingProcess): Promise<void> => {
      assert.equal(await proc.stop('SIGTERM', 15_000), 0, proc.stderr().slice(-3000));
    };
    const failedLine = (proc: LoggingProcess, version: number): LogLine | undefined =>
      proc.logs().find((l) => l.msg === 'snapshot not applied; previous config kept' && l['version'] === version);

    before(async () => {
      sandbox = await makeSandbox(`henge-exec-${p}-`);
      hub = await startHubProcess(sandbox, ['--keepalive', '5']);
      assert.ok(hub.token && hub.coapPort);
      token = hub.token;
    });
    after(async () => {
      await hub?.stop();
      await sandbox?.cleanup();
    });

    test(`${program} --exec succeeds: it sees HENGE_CONFIG_FILE (resolved), _VERSION, HENGE_DEVICE, the new file, the working folder, an empty stdin; the hub shows applied`, { timeout: 60_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `${p}-ok`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      await cli('device', 'add', id, '--set', 'mode=one');
      const hook = `printf '%s|%s|%s|%s\\n' "$HENGE_DEVICE" "$HENGE_CONFIG_VERSION" "$HENGE_CONFIG_FILE" "$(pwd)" >> '${dir}/hook.log'; cat "$HENGE_CONFIG_FILE" > "${dir}/seen-$HENGE_CONFIG_VERSION"; cat > '${dir}/stdin'; echo done`;
      const proc = start(id, hook);
      const out = join(dir, 'config.json');
      const v1 = (await converged(id)).desiredVersion;
      await cli('set', id, 'mode=two');
      const v2 = (await converged(id)).desiredVersion;
      assert.ok(v2 > v1);
      const runs = (await readFile(join(dir, 'hook.log'), 'utf8')).trim().split('\n');
      assert.deepEqual(runs, [`${id}|${String(v1)}|${out}|${sandbox.dir}`, `${id}|${String(v2)}|${out}|${sandbox.dir}`]);
      assert.equal(await readFile(join(dir, `seen-${String(v1)}`), 'utf8'), render('json', { mode: 'one' }), 'the hook saw the new file');
      assert.equal(await readFile(join(dir, `seen-${String(v2)}`), 'utf8'), render('json', { mode: 'two' }));
      assert.equal(await readFile(out, 'utf8'), render('json', { mode: 'two' }));
      assert.equal(await readFile(join(dir, 'stdin'), 'utf8'), '', 'stdin is /dev/null');
      assert.ok(proc.logs().some((l) => l.msg === 'applied' && l['version'] === v2));
      await stop(proc);
    });

    test(`${program} --exec over coaps with the key in HENGE_DEVICE_KEY: the hook never sees the key`, { timeout: 60_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `${p}-key`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      const added = JSON.parse(await cli('device', 'add', id, '--set', 'mode=one', '--json')) as { key: string };
      assert.ok(hub.coapsPort);
      const hook = `printf '%s' "\${HENGE_DEVICE_KEY:-absent}" > '${dir}/key-seen'`;
      const args = ['--id', id, '--hub', `127.0.0.1:${String(hub.coapsPort)}`, '--out', join(dir, 'config.json'), '--state', join(dir, 'state'), '--backoff-max', '2', '--exec', hook];
      const env = { HENGE_DEVICE_KEY: added.key };
      const proc = program === 'henge-fw' ? startFirmwareProcess(sandbox, args, env, HENGE_FW_ASAN) : startAgentProcess(sandbox, args, env);
      running.push(proc);
      await converged(id);
      assert.equal(await readFile(join(dir, 'key-seen'), 'utf8'), 'absent');
      // (It converged through the coaps port, so it used the key.)
      await stop(proc);
    });

    test(`${program} --exec exits 1: the previous file is back byte for byte (none: removed), the hub shows failed with the message; a later good change applies`, { timeout: 60_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `${p}-fail`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      await cli('device', 'add', id, '--set', 'mode=bad');
      const hook = 'if grep -q bad "$HENGE_CONFIG_FILE"; then echo "first line" >&2; echo "refusing v$HENGE_CONFIG_VERSION" >&2; exit 1; fi';
      const proc = start(id, hook);
      const out = join(dir, 'config.json');

      // The first config fails: there was no file before, so there is none after.
      const v1 = (await state(id)).desiredVersion;
      const f1 = await failedAt(id, v1);
      assert.equal(f1.lastAck?.message, `--exec exited with 1: first line | refusing v${String(v1)}`);
      assert.equal(f1.sync, 'failed');
      assert.equal(await readBytes(out), undefined, 'no previous file: none after the failure');

      await cli('set', id, 'mode=good');
      const v2 = (await converged(id)).desiredVersion;
      const good = await readFile(out);
      assert.equal(good.toString(), render('json', { mode: 'good' }));

      await cli('set', id, 'mode=bad', 'note=x');
      const v3 = (await state(id)).desiredVersion;
      const f3 = await failedAt(id, v3);
      assert.equal(f3.lastAck?.message, `--exec exited with 1: first line | refusing v${String(v3)}`);
      assert.notEqual(f3.appliedVersion, v3);
      assert.ok(good.equals((await readBytes(out)) ?? Buffer.alloc(0)), 'the previous file is back, byte for byte');
      const line = await proc.waitForLog((l) => l.msg === 'snapshot not applied; previous config kept' && l['version'] === v3);
      assert.equal(line.level, 50);
      const err = line['err'] as { code?: unknown; message?: unknown };
      assert.deepEqual({ code: err.code, message: err.message }, { code: 'HENGE_E_EXEC_FAILED', message: '--exec exited with 1' });
      assert.equal(line['status'], 'failed');
      assert.equal(line['keptVersion'], v2);
      assert.equal(failedLine(proc, v1)?.['keptVersion'], null);

      await cli('set', id, 'mode=fine');
      await converged(id);
      assert.equal(await readFile(out, 'utf8'), render('json', { mode: 'fine', note: 'x' }));
      await stop(proc);
    });

    test(`${program} --exec-timeout 1: a hook that sleeps is killed with its process group, the file restored, acked failed; a change made meanwhile applies after it`, { timeout: 60_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `${p}-slow`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      await cli('device', 'add', id, '--set', 'mode=fast');
      const pidFile = join(dir, 'sleeper.pid');
      const hook = `if grep -q slow "$HENGE_CONFIG_FILE"; then sleep 30 & echo $! > '${pidFile}'; wait; fi`;
      const proc = start(id, hook, ['--exec-timeout', '1']);
      const out = join(dir, 'config.json');
      await converged(id);
      const fast = await readFile(out);

      const t0 = performance.now();
      await cli('set', id, 'mode=slow');
      const v2 = (await state(id)).desiredVersion;
      const f2 = await failedAt(id, v2);
      const ms = performance.now() - t0;
      t.diagnostic(`${program}: henge set -> failed ack after the 1 s timeout: ${ms.toFixed(0)} ms`);
      assert.ok(ms >= 1000 && ms < 6000, `took ${String(ms)} ms`);
      assert.equal(f2.lastAck?.message, '--exec timed out after 1000 ms');
      assert.ok(fast.equals((await readBytes(out)) ?? Buffer.alloc(0)), 'the previous file is back');
      const sleeper = Number((await readFile(pidFile, 'utf8')).trim());
      leftBehind.push(sleeper);
      await waitFor('the background sleep killed with the group', async () => ((await gone(sleeper)) ? true : undefined), 3_000);

      // A change that arrives while a hook runs is applied when the hook is over (here: it fails first).
      await cli('set', id, 'mode=slow-again');
      const v3 = (await state(id)).desiredVersion;
      const second = await waitFor('the second slow hook running', async () => {
        const pid = Number((await readBytes(pidFile))?.toString().trim());
        return pid !== sleeper && pid > 0 ? pid : undefined;
      });
      leftBehind.push(second);
      await cli('set', id, 'mode=after');
      const s = await converged(id);
      assert.ok(s.desiredVersion > v3);
      assert.equal(await readFile(out, 'utf8'), render('json', { mode: 'after' }));
      assert.ok(failedLine(proc, v3), `${program} logged v${String(v3)} as failed`);
      await stop(proc);
    });

    test(`${program} stopped (SIGTERM) while --exec runs: after the 5 s drain the hook's process group is killed, the previous file is back, no ack; a restart agrees with state.json and converges`, { timeout: 60_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `${p}-stopped`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      await cli('device', 'add', id, '--set', 'mode=one');
      const pidFile = join(dir, 'sleeper.pid');
      const once = join(dir, 'slept');
      // Sleeps (in its own background child) the first time it sees mode=two, then never again.
      const hook = `if grep -q two "$HENGE_CONFIG_FILE" && [ ! -e '${once}' ]; then touch '${once}'; sleep 30 & echo $! > '${pidFile}'; wait; fi`;
      const args = ['--exec-timeout', '60'];
      const proc = start(id, hook, args);
      const out = join(dir, 'config.json');
      const first = await converged(id);
      const one = await readFile(out);

      await cli('set', id, 'mode=two');
      const v2 = (await state(id)).desiredVersion;
      const sleeper = await waitFor('the hook sleeping', async () => {
        const pid = Number((await readBytes(pidFile))?.toString().trim());
        return pid > 0 ? pid : undefined;
      });
      leftBehind.push(sleeper);
      const t0 = performance.now();
      await stop(proc);
      const ms = performance.now() - t0;
      t.diagnostic(`${program}: SIGTERM during a hook -> exit 0 after ${ms.toFixed(0)} ms`);
      assert.ok(ms >= 4_500 && ms < 9_000, `stopped after ${String(ms)} ms (5 s drain)`);
      assert.ok(one.equals((await readBytes(out)) ?? Buffer.alloc(0)), 'the previous file is back');
      await waitFor('the hook\'s process group killed', async () => ((await gone(sleeper)) ? true : undefined), 3_000);
      assert.ok(proc.logs().some((l) => l.msg === 'stopped during --exec; the previous config is back' && l['version'] === v2), proc.stderr().slice(-2000));
      const s = await state(id);
      assert.equal(s.lastAck?.version, first.lastAck?.version, 'no ack for the stopped apply');
      assert.equal(s.lastAck?.status, 'applied');

      // --out and state.json agree (nothing to restore); the hub sends the snapshot again and it applies.
      const again = start(id, hook, args);
      const done = await converged(id);
      assert.equal(done.appliedVersion, v2);
      assert.equal(await readFile(out, 'utf8'), render('json', { mode: 'two' }));
      assert.ok(!again.logs().some((l) => l.msg === 'restored --out from the state folder'), 'the file already was what state.json says');
      await stop(again);
    });

    test(`${program} --exec that leaves \`sleep 30 &\` running counts as done when its shell exits (not a timeout)`, { timeout: 60_000 }, async (t) => {
      if (!ensureBuilt(t)) return;
      const id = `${p}-bg`;
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      await cli('device', 'add', id, '--set', 'mode=one');
      const pids = join(dir, 'bg.pid');
      const proc = start(id, `sleep 30 & echo $! >> '${pids}'; echo started`, ['--exec-timeout', '2']);
      await converged(id);
      const t0 = performance.now();
      await cli('set', id, 'mode=two');
      const s = await converged(id);
      const ms = performance.now() - t0;
      t.diagnostic(`${program}: henge set -> applied with a background child: ${ms.toFixed(0)} ms`);
      assert.ok(ms < 1900, `took ${String(ms)} ms: it waited for the background child`);
      assert.equal(s.lastAck?.status, 'applied');
      assert.ok(!proc.logs().some((l) => l.msg === 'snapshot not applied; previous config kept'));
      const bg = (await readFile(pids, 'utf8')).trim().split('\n').map(Number);
      leftBehind.push(...bg);
      assert.equal(bg.length, 2);
      for (const pid of bg) assert.equal(await gone(pid), false, 'the background child runs on');
      await stop(proc);
    });
  });
}

exec('henge-fw');
exec('henge agent');
