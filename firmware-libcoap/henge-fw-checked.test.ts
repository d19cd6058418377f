/**
 * henge-fw under the memory checkers through a long run against a real hub process: 100 pushes, each
 * applied (file written; every tenth a 2.5 KB snapshot, so Block2) and the device converged at the end,
 * with a hub restart after 50 (reconnecting runs under the checker too), then SIGTERM.
 *  - valgrind memcheck over DTLS-PSK (the plain build; libcoap and OpenSSL run under it too): every
 *    error and every leak kind is an error (exit 99), so the run needs "0 errors" and no heap in use
 *    at exit;
 *  - the ASan + UBSan build over plain CoAP (the DTLS story in henge-fw.test.ts runs it over coaps):
 *    a report aborts it, LeakSanitizer fails its exit.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor, watchLogs } from '../test/helpers/agent-process.ts';
import type { LoggingProcess } from '../test/helpers/agent-process.ts';
import { HENGE_FW, HENGE_FW_ASAN, VALGRIND, firmwareReady, needTools } from '../test/helpers/firmware.ts';
import { makeSandbox, runCli, startHubProcess } from '../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../test/helpers/processes.ts';

const PUSHES = 100;
/** As in sanitize/Makefile: every leak kind counts, and any error makes the exit code 99. */
const MEMCHECK = ['--tool=memcheck', '--leak-check=full', '--show-leak-kinds=all', '--errors-for-leak-kinds=all', '--track-origins=yes', '--error-exitcode=99'];

let sandbox: Sandbox;
let hub: HubProcess;
/** The admin token the hub printed on its first start (a restart prints none). */
let token = '';
const running: LoggingProcess[] = [];

before(async () => {
  sandbox = await makeSandbox('henge-fw-checked-');
  hub = await startHubProcess(sandbox, ['--keepalive', '5']);
  assert.ok(hub.token);
  token = hub.token;
});
after(async () => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await hub?.stop();
  await sandbox?.cleanup();
});

const built = (t: TestContext, target: string): boolean => firmwareReady(t, [target], { libcoap: true });

async function patch(id: string, values: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${hub.url}/devices/${id}/values`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ values }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Adds `id`, returns its key (for coaps) and the henge-fw arguments for it. */
async function device(id: string, secure: boolean): Promise<{ dir: string; args: string[] }> {
  const r = await runCli(sandbox, ['device', 'add', id, '--set', 'n=0', '--set', 'led=true', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const dir = join(sandbox.dir, id);
  await mkdir(dir, { recursive: true });
  const port = secure ? hub.coapsPort : hub.coapPort;
  assert.ok(port);
  const args = ['--id', id, '--hub', `127.0.0.1:${port}`, '--out', join(dir, 'config.json'), '--state', join(dir, 'state'), '--led', join(dir, 'led'), '--backoff-max', '2'];
  if (secure) {
    await writeFile(join(dir, 'key'), `${(JSON.parse(r.stdout) as { key: string }).key}\n`, { mode: 0o600 });
    args.push('--key-file', join(dir, 'key'));
  }
  return { dir, args };
}

/** Stops the hub and starts it again on the same data and CoAP ports (the API port may change). */
async function restartHub(): Promise<void> {
  const ports = ['--coap-port', String(hub.coapPort), '--coaps-port', String(hub.coapsPort)];
  assert.equal(await hub.stop('SIGTERM'), 0);
  hub = await startHubProcess(sandbox, ['--keepalive', '5', ...ports]);
}

/**
 * PUSHES changes, one at a time: each must be applied (logged after the file is renamed into place);
 * with `restartHalfway` the hub restarts after half of them, so reconnecting runs under the checker too
 * (over plain CoAP the new hub learns of the device at its next keepalive re-registration, within 5 s).
 */
async function pushes(t: TestContext, id: string, fw: LoggingProcess, dir: string, perPushMs: number, restartHalfway: boolean): Promise<void> {
  await fw.waitForLog((l) => l.msg === 'ack delivered', 60_000);
  const t0 = performance.now();
  for (let i = 1; i <= PUSHES; i++) {
    if (restartHalfway && i === PUSHES / 2 + 1) await restartHub();
    const from = fw.logs().length;
    // Every tenth push carries a 2.5 KB text: over 1,024 bytes, so Block2 runs under the checker too.
    await patch(id, { n: i, led: i % 2 === 0, blob: i % 10 === 0 ? `${'b'.repeat(2500)}${i}` : String(i) });
    await fw.waitForLog((l) => l.msg === 'applied', perPushMs, from);
  }
  t.diagnostic(`${PUSHES} pushes applied in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const out = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { n: number; led: boolean; blob: string };
  assert.deepEqual(out, { n: PUSHES, led: true, blob: `${'b'.repeat(2500)}${PUSHES}` });
  assert.ok(fw.logs().filter((l) => l.msg === 'applied' && l['blockwise'] === true).length >= PUSHES / 10, 'the large snapshots came blockwise');
  // The LED file is written after the `applied` line: wait for it rather than race it.
  await waitFor('the LED on', async () => ((await readFile(join(dir, 'led'), 'utf8').catch(() => '')) === 'on\n' ? true : undefined), 10_000);
  await waitFor(`${id} converged`, async () => {
    const r = await fetch(`${hub.url}/devices/${id}/state`, { headers: { authorization: `Bearer ${token}` } });
    const s = (await r.json()) as { sync: string; appliedVersion: number | null; desiredVersion: number };
    return s.sync === 'converged' && s.appliedVersion === s.desiredVersion ? true : undefined;
  }, 30_000);
}

describe('henge-fw under memory checkers', () => {
  test(`henge-fw memcheck - ${PUSHES} pushes and a hub restart over coaps under valgrind: 0 errors, 0 leaks, exit 0`, { timeout: 300_000 }, async (t) => {
    if (!needTools(t, [VALGRIND]) || !built(t, 'build/henge-fw')) return;
    const { dir, args } = await device('fw-memcheck', true);
    const vgLog = join(dir, 'valgrind.log');
    const fw = watchLogs(spawn('valgrind', [...MEMCHECK, `--log-file=${vgLog}`, HENGE_FW, ...args], { env: sandbox.env, cwd: sandbox.dir, stdio: ['ignore', 'pipe', 'pipe'] }), 'henge-fw (valgrind)');
    running.push(fw);
    await pushes(t, 'fw-memcheck', fw, dir, 30_000, true);
    // The DTLS session ended with the hub: henge-fw saw the link go down and set it up again.
    assert.ok(fw.logs().some((l) => l.msg === 'reconnected'), `no "reconnected" line after the hub restart:\n${fw.stderr().slice(-3000)}`);
    fw.child.kill('SIGTERM');
    const code = await fw.exited;
    const report = await readFile(vgLog, 'utf8');
    assert.equal(code, 0, `exit ${String(code)} (99: valgrind found an error or a leak)\n${report.slice(-6000)}\n${fw.stderr().slice(-2000)}`);
    assert.match(report, /ERROR SUMMARY: 0 errors from 0 contexts/, report.slice(-6000));
    assert.match(report, /All heap blocks were freed -- no leaks are possible/, report.slice(-6000));
    const heap = /total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated/.exec(report);
    assert.ok(heap && heap[1] === heap[2], `allocs and frees differ: ${heap?.[0] ?? 'no summary'}`);
    t.diagnostic(`valgrind: 0 errors, 0 leaks (${heap[0]})`);
  });

  test(`henge-fw asan - ${PUSHES} pushes and a hub restart over plain CoAP with the ASan + UBSan build: no report, exit 0`, { timeout: 300_000 }, async (t) => {
    if (!built(t, 'build/asan/henge-fw')) return;
    const { dir, args } = await device('fw-asan', false);
    const fw = watchLogs(spawn(HENGE_FW_ASAN, args, { env: { ...sandbox.env, ASAN_OPTIONS: 'detect_leaks=1:halt_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' }, cwd: sandbox.dir, stdio: ['ignore', 'pipe', 'pipe'] }), 'henge-fw (asan)');
    running.push(fw);
    await pushes(t, 'fw-asan', fw, dir, 30_000, true);
    fw.child.kill('SIGTERM');
    const code = await fw.exited;
    assert.equal(code, 0, fw.stderr().slice(-6000));
    assert.doesNotMatch(fw.stderr(), /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/);
  });
});
