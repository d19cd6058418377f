/**
 * `henge sim --coaps` against a real hub process: the CLI issues every simulated device a key through the
 * API, the devices handshake (within the hub's per-address cap) and follow a change.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { HENGE_BIN, makeSandbox, runCli, startHubProcess } from '../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../test/helpers/processes.ts';

let sandbox: Sandbox;
let hub: HubProcess;

before(async () => {
  sandbox = await makeSandbox('henge-cli-sim-');
  hub = await startHubProcess(sandbox, [], 20_000, { insecure: false });
});

after(async () => {
  await hub?.stop();
  await sandbox?.cleanup();
});

interface SimLine {
  readonly registered: number;
  readonly notified: number;
  readonly acked: number;
}

test('sim - henge sim --coaps gives every device its own key through the API and they follow a change', { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, [HENGE_BIN, 'sim', '--devices', '12', '--add', '--coaps', '--hub', `127.0.0.1:${String(hub.coapsPort)}`, '--every', '0', '--json'], {
    env: sandbox.env,
    cwd: sandbox.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const lines: SimLine[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(JSON.parse(l) as SimLine);
    for (const w of waiters.splice(0)) w();
  });
  const until = (what: string, ok: (l: SimLine) => boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} not seen in 20 s; stderr: ${stderr}`)), 20_000);
      const check = (): void => {
        if (lines.some(ok)) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  try {
    await until('12 registered over coaps', (l) => l.registered === 12);
    assert.match(stderr, /issuing a new DTLS key for each of the 12 devices/);
    assert.match(stderr, /against coaps:\/\//);
    const set = await runCli(sandbox, ['set', 'sim-001', 'mode=eco']);
    assert.equal(set.code, 0, set.stderr);
    const before = Math.max(...lines.map((l) => l.notified));
    await until('the change notified and acked', (l) => l.notified > before && l.acked > before);
  } finally {
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  assert.equal(child.exitCode, 0, stderr);
});
