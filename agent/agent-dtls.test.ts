/**
 * `henge agent` over coaps (DTLS 1.2, PSK): real hub and agent processes, the key `henge device add`
 * printed, in a 0600 key file. The push path's end-to-end cases over DTLS: apply and ack, a hub restart
 * (the session is gone; the agent handshakes again and converges), a wrong key, and no key in any log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deviceStateOf, henge, makeSandbox, runCli, startHubProcess } from '../test/helpers/processes.ts';
import type { DeviceStateView, HubProcess, Sandbox } from '../test/helpers/processes.ts';
import { startAgentProcess, waitFor } from '../test/helpers/agent-process.ts';
import type { AgentProcess, LogLine } from '../test/helpers/agent-process.ts';
import { readTerminalQr } from '../test/helpers/qr.ts';

const agents: AgentProcess[] = [];
after(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL', 5_000)));
});

const isAcked = (l: LogLine) => l.msg === 'ack delivered';

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

describe('henge agent over coaps', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  /** The first start's admin token (a restarted hub prints none). */
  let token = '';
  const keys: string[] = [];

  const cli = (...args: string[]): Promise<string> => henge(sandbox, ...args);
  /** Adds the device and writes its key to a 0600 file; returns the file. */
  const enroll = async (id: string, ...more: string[]): Promise<string> => {
    const { key } = JSON.parse(await cli('device', 'add', id, '--json', ...more)) as { key: string };
    keys.push(key);
    const dir = join(sandbox.dir, id);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'key');
    await writeFile(file, `${key}\n`, { mode: 0o600 });
    return file;
  };
  const state = (id: string): Promise<DeviceStateView> => deviceStateOf(hub, token, id);
  const start = (args: string[]): AgentProcess => {
    const a = startAgentProcess(sandbox, args);
    agents.push(a);
    return a;
  };

  before(async () => {
    sandbox = await makeSandbox('henge-agent-dtls-');
    hub = await startHubProcess(sandbox, ['--keepalive', '5']);
    assert.ok(hub.coapsPort && hub.token);
    token = hub.token;
  });

  after(async () => {
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('agent over coaps - applies and acks, a change (PATCH) reaches the file in under a second, and survives a hub restart', { timeout: 90_000 }, async () => {
    const keyFile = await enroll('dtls-basic', '--set', 'mode=heat');
    const out = join(sandbox.dir, 'dtls-basic', 'config.json');
    const port = String(hub.coapsPort);
    const args = ['--id', 'dtls-basic', '--hub', `127.0.0.1:${port}`, '--key-file', keyFile, '--out', out, '--state', join(sandbox.dir, 'dtls-basic', 'state'), '--backoff-max', '2'];
    const a = start(args);
    await a.waitForLog(isAcked);
    assert.deepEqual(await readJson(out), { mode: 'heat' });

    // Timed from the API call (a CLI process start would add most of a second on a busy machine).
    const t0 = performance.now();
    const patch = await fetch(`${hub.url}/devices/dtls-basic/values`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ values: { mode: 'cool' } }),
    });
    assert.equal(patch.status, 200);
    await waitFor('mode=cool in the file', async () => ((await readJson(out))?.['mode'] === 'cool' ? true : undefined), 5_000, 5);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `PATCH -> file over DTLS took ${ms} ms`);
    await waitFor('converged', async () => ((await state('dtls-basic')).sync === 'converged' ? true : undefined));

    // The hub restarts on the same ports: its sessions are gone; the agent handshakes again.
    assert.equal(await hub.stop('SIGTERM'), 0, `hub output:\n${hub.stdout().slice(-3000)}${hub.stderr().slice(-3000)}`);
    hub = await startHubProcess(sandbox, ['--keepalive', '5', '--coaps-port', port]);
    assert.equal(hub.coapsPort, Number(port));
    await cli('set', 'dtls-basic', 'mode=off');
    await waitFor('mode=off after the hub restart', async () => ((await readJson(out))?.['mode'] === 'off' ? true : undefined), 40_000);
    await waitFor('converged after the restart', async () => ((await state('dtls-basic')).sync === 'converged' ? true : undefined), 10_000);
    assert.equal(await a.stop('SIGTERM'), 0);
    for (const k of keys) assert.ok(!a.stderr().includes(k), 'the agent never logs its key');
  });

  test('agent over coaps - a wrong key never gets config; the agent says why', { timeout: 60_000 }, async () => {
    await enroll('dtls-wrong', '--set', 'mode=heat');
    const dir = join(sandbox.dir, 'dtls-wrong');
    const bad = join(dir, 'bad-key');
    await writeFile(bad, 'not-the-key\n', { mode: 0o600 });
    const out = join(dir, 'config.json');
    const a = start(['--id', 'dtls-wrong', '--hub', `127.0.0.1:${String(hub.coapsPort)}`, '--key-file', bad, '--out', out, '--state', join(dir, 'state'), '--backoff-max', '2']);
    const line = await a.waitForLog((l) => JSON.stringify(l).includes('DTLS'), 40_000);
    assert.match(JSON.stringify(line), /no DTLS session|DTLS session ended/);
    assert.equal(await readJson(out), undefined, 'no config was written');
    assert.equal(await a.stop('SIGTERM'), 0);
    assert.ok(!a.stderr().includes('not-the-key'), 'the agent never logs its key');
  });

  test('agent over coaps - the hub never logged a key', () => {
    for (const k of keys) assert.ok(!hub.stderr().includes(k) && !hub.stdout().includes(k));
  });
});

describe('henge agent enroll', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  before(async () => {
    sandbox = await makeSandbox('henge-agent-enroll-');
    hub = await startHubProcess(sandbox, [], 20_000, { insecure: false });
  });
  after(async () => {
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('enroll - a one-time token gets the device its key over DTLS; the agent then runs on it; the token works once', { timeout: 60_000 }, async () => {
    const added = await runCli(sandbox, ['device', 'add', 'enr-1', '--set', 'mode=eco', '--enroll', '--json']);
    assert.equal(added.code, 0, added.stderr);
    const token = (JSON.parse(added.stdout) as { enrollment: { token: string } }).enrollment.token;
    const hubArg = `127.0.0.1:${String(hub.coapsPort)}`;
    const state = join(sandbox.dir, 'enr-1-state');
    const first = await runCli(sandbox, ['agent', 'enroll', token, '--hub', hubArg, '--state', state]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /enrolled as enr-1 with hub [0-9a-f]{12}/);
    const keyText = (await readFile(join(state, 'key'), 'utf8')).trim();
    assert.match(keyText, /^[A-Za-z0-9_-]{43}$/);
    const again = await runCli(sandbox, ['agent', 'enroll', token, '--hub', hubArg, '--state', join(sandbox.dir, 'other')]);
    assert.equal(again.code, 5, 'a used token is refused');
    assert.match(again.stderr, /unknown, used/);

    const out = join(sandbox.dir, 'enr-1.json');
    const a = startAgentProcess(sandbox, ['--id', 'enr-1', '--hub', hubArg, '--out', out, '--state', state]);
    agents.push(a);
    await a.waitForLog(isAcked);
    assert.deepEqual(await readJson(out), { mode: 'eco' });
    assert.equal(await a.stop('SIGTERM'), 0);
    for (const text of [hub.stderr(), a.stderr(), first.stdout, first.stderr]) {
      assert.ok(!text.includes(keyText) && !text.includes(token), 'neither the key nor the token is logged or printed');
    }
  });
});

describe('henge device enroll --qr', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  before(async () => {
    sandbox = await makeSandbox('henge-agent-qr-');
    hub = await startHubProcess(sandbox, [], 20_000, { insecure: false });
  });
  after(async () => {
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('qr - the QR code decodes to an enrollment URI that henge agent enroll takes, checking the hub id', { timeout: 60_000 }, async () => {
    assert.equal((await runCli(sandbox, ['device', 'add', 'qr-1'])).code, 0);
    const r = await runCli(sandbox, ['device', 'enroll', 'qr-1', '--qr']);
    assert.equal(r.code, 0, r.stderr);
    const uri = readTerminalQr(r.stdout);
    const hubId = /henge-([0-9a-f]{12})/.exec(hub.stdout())?.[1] ?? /hub ([0-9a-f]{12}) started/.exec(hub.stdout())?.[1];
    assert.match(uri, new RegExp(`^henge:enroll\\?hub=${String(hubId)}&t=hge_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$`));
    const enrolled = await runCli(sandbox, ['agent', 'enroll', uri, '--hub', `127.0.0.1:${String(hub.coapsPort)}`, '--state', join(sandbox.dir, 'qr-state')]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    assert.match(enrolled.stdout, new RegExp(`enrolled as qr-1 with hub ${String(hubId)}`));
    // A URI naming another hub is refused before anything is kept.
    const other = await runCli(sandbox, ['device', 'enroll', 'qr-1', '--json']);
    const token = (JSON.parse(other.stdout) as { token: string }).token;
    const wrongHub = await runCli(sandbox, ['agent', 'enroll', `henge:enroll?hub=000000000000&t=${token}`, '--hub', `127.0.0.1:${String(hub.coapsPort)}`, '--state', join(sandbox.dir, 'qr-wrong')]);
    assert.equal(wrongHub.code, 1);
    assert.match(wrongHub.stderr, /made by hub 000000000000/);
  });
});
