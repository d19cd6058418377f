/**
 * `henge agent` end to end: a real hub process, real agent processes, the real CLI, UDP on loopback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { makeSandbox, runCli, startHubProcess } from '../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../test/helpers/processes.ts';
import { startAgentProcess, waitFor } from '../test/helpers/agent-process.ts';
import type { AgentProcess, LogLine } from '../test/helpers/agent-process.ts';

interface DeviceState {
  desiredVersion: number;
  appliedVersion: number | null;
  sync: 'converged' | 'pending' | 'failed';
  observing: boolean;
  endpoint: string | null;
  lastAck: { version: number; status: string; message?: string; latencyMs?: number } | null;
  duplicate: { endpoints: string[]; time: number } | null;
  telemetry: { values: Record<string, unknown> } | null;
}

async function cli(sandbox: Sandbox, args: string[]): Promise<string> {
  const r = await runCli(sandbox, args);
  assert.equal(r.code, 0, `henge ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function deviceState(hub: HubProcess, token: string, id: string): Promise<DeviceState> {
  const r = await fetch(`${hub.url}/devices/${id}/state`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  return (await r.json()) as DeviceState;
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Waits until the JSON file at `path` has `key` equal to `value`; returns when it saw it (ms, performance clock). */
async function fileHas(path: string, key: string, value: unknown, timeoutMs = 10_000, intervalMs = 20): Promise<number> {
  return waitFor(
    `${path} to hold ${key}=${JSON.stringify(value)}`,
    async () => ((await readJson(path))?.[key] === value ? performance.now() : undefined),
    timeoutMs,
    intervalMs,
  );
}

const agents: AgentProcess[] = [];
function agent(sandbox: Sandbox, args: string[]): AgentProcess {
  const a = startAgentProcess(sandbox, args);
  agents.push(a);
  return a;
}
const isApplied = (version?: number) => (l: LogLine) => l.msg === 'applied' && (version === undefined || l['version'] === version);
const isAcked = (l: LogLine) => l.msg === 'ack delivered';

after(async () => {
  // Only the agents these tests started, by pid.
  await Promise.all(agents.map((a) => a.stop('SIGKILL', 5_000)));
});

describe('henge agent against one hub', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  let token: string;
  let coap: string;

  before(async () => {
    sandbox = await makeSandbox('henge-agent-');
    // A long keepalive, so that an agent re-registers only when a test asks it to (SIGHUP).
    hub = await startHubProcess(sandbox, ['--keepalive', '30']);
    assert.ok(hub.token && hub.coapPort);
    token = hub.token;
    coap = `127.0.0.1:${hub.coapPort}`;
  });

  after(async () => {
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('(1) a value set with the CLI reaches the file in under a second, and the hub sees it applied', async () => {
    await cli(sandbox, ['device', 'add', 'basic', '--set', 'mode=heat']);
    const out = join(sandbox.dir, 'basic', 'config.json');
    const a = agent(sandbox, ['--id', 'basic', '--hub', coap, '--out', out, '--state', join(sandbox.dir, 'basic', 'state')]);
    await a.waitForLog(isAcked);
    assert.deepEqual(await readJson(out), { mode: 'heat' });

    // set -> file, through the CLI (its process start included) and through the API alone.
    const t0 = performance.now();
    const set = runCli(sandbox, ['set', 'basic', 'setpoint=21.5']);
    const seen = await fileHas(out, 'setpoint', 21.5, 5_000, 2);
    const cliMs = seen - t0;
    assert.equal((await set).code, 0);
    const t1 = performance.now();
    const patch = await fetch(`${hub.url}/devices/basic/values`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ values: { setpoint: 22 } }),
    });
    assert.equal(patch.status, 200);
    const apiMs = (await fileHas(out, 'setpoint', 22, 5_000, 2)) - t1;
    const acked = await waitFor('the hub to record the ack', async () => {
      const s = await deviceState(hub, token, 'basic');
      return s.sync === 'converged' && s.lastAck?.latencyMs !== undefined ? s : undefined;
    });
    console.log(`set->file latency: ${cliMs.toFixed(1)} ms via \`henge set\` (CLI start included), ${apiMs.toFixed(1)} ms via PATCH; hub commit->ack ${String(acked.lastAck?.latencyMs)} ms`);
    assert.ok(cliMs < 1000, `henge set -> file took ${cliMs} ms`);
    assert.ok(apiMs < 1000, `PATCH -> file took ${apiMs} ms`);
    assert.deepEqual(await readJson(out), { mode: 'heat', setpoint: 22 });

    const state = await deviceState(hub, token, 'basic');
    assert.equal(state.appliedVersion, state.desiredVersion);
    assert.equal(state.sync, 'converged');
    assert.equal(state.observing, true);
    assert.equal(state.lastAck?.status, 'applied');
    assert.match(String(state.telemetry?.values['_agent']), /^henge-agent\//);
    const status = JSON.parse(await cli(sandbox, ['--json', 'status'])) as { fleet: { devices: Array<{ device: string; sync: string; appliedVersion: number; desiredVersion: number }> } };
    const row = status.fleet.devices.find((d) => d.device === 'basic');
    assert.ok(row);
    assert.equal(row.sync, 'converged');
    assert.equal(row.appliedVersion, row.desiredVersion);

    // Logs name the keys that changed, never their values.
    const applied = a.logs().filter(isApplied());
    assert.deepEqual(applied.at(-1)?.['changed'], ['setpoint']);
    assert.ok(!a.stderr().includes('21.5') && !a.stderr().includes('heat'), 'values never reach the log');

    // SIGTERM: deregister, exit 0 at once; the hub ends the relation.
    const stopAt = performance.now();
    assert.equal(await a.stop('SIGTERM'), 0);
    const stopMs = performance.now() - stopAt;
    assert.ok(stopMs < 1500, `stopped in ${stopMs} ms`);
    assert.ok(a.logs().some((l) => l.msg === 'deregistered'));
    assert.equal((await deviceState(hub, token, 'basic')).observing, false);
  });

  test('bad flags exit 2; a state folder in use exits 7', async () => {
    const base = ['agent', '--hub', coap, '--out', join(sandbox.dir, 'flags', 'c.json')];
    for (const args of [
      [...base, '--id', 'Not_An_Id'],
      [...base, '--id', 'ok', '--format', 'toml'],
      ['agent', '--id', 'ok', '--hub', '127.0.0.1:0', '--out', 'x.json'],
      [...base, '--id', 'ok', '--backoff-max', '0'],
      ['agent', '--id', 'ok', '--hub', coap],
    ]) {
      const r = await runCli(sandbox, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    await cli(sandbox, ['device', 'add', 'locked']);
    const state = join(sandbox.dir, 'locked', 'state');
    const a = agent(sandbox, ['--id', 'locked', '--hub', coap, '--out', join(sandbox.dir, 'locked', 'a.json'), '--state', state]);
    await a.waitForLog(isAcked);
    const second = await runCli(sandbox, ['agent', '--id', 'locked', '--hub', coap, '--out', join(sandbox.dir, 'locked', 'b.json'), '--state', state]);
    assert.equal(second.code, 7);
    assert.match(second.stderr, /in use by process \d+.*HENGE_E_STATE_LOCKED/);
    assert.equal(await a.stop(), 0);
  });

  test('an agent started before its device exists retries with backoff (capped by --backoff-max) and converges', async () => {
    const out = join(sandbox.dir, 'early', 'config.json');
    const a = agent(sandbox, ['--id', 'early', '--hub', coap, '--out', out, '--state', join(sandbox.dir, 'early', 'state'), '--backoff-max', '1']);
    const isRetry = (l: LogLine) => l.msg.startsWith('the hub refused') && (l['err'] as { code?: string } | undefined)?.code === 'HENGE_E_COAP_RESPONSE';
    await a.waitForLog(isRetry);
    await waitFor('three attempts', () => (a.logs().filter(isRetry).length >= 3 ? true : undefined), 10_000);
    const retries = a.logs().filter(isRetry);
    for (const l of retries) assert.ok(Number(l['retryInMs']) >= 0 && Number(l['retryInMs']) < 1000, `full jitter under the cap: ${String(l['retryInMs'])}`);
    assert.deepEqual(retries.map((l) => l['attempt']).slice(0, 3), [1, 2, 3]);
    await cli(sandbox, ['device', 'add', 'early', '--set', 'x=1']);
    await fileHas(out, 'x', 1, 5_000);
    await a.waitForLog(isAcked);
    assert.equal(await a.stop(), 0);
  });

  test('(3) a second agent with the same id replaces the first; alternating, the hub flags a duplicate', async () => {
    await cli(sandbox, ['device', 'add', 'twin', '--set', 'v=1']);
    const outA = join(sandbox.dir, 'twin-a', 'config.json');
    const outB = join(sandbox.dir, 'twin-b', 'config.json');
    const a = agent(sandbox, ['--id', 'twin', '--hub', coap, '--out', outA, '--state', join(sandbox.dir, 'twin-a', 'state')]);
    await a.waitForLog(isAcked);
    const b = agent(sandbox, ['--id', 'twin', '--hub', coap, '--out', outB, '--state', join(sandbox.dir, 'twin-b', 'state')]);
    await b.waitForLog(isAcked);
    assert.equal((await deviceState(hub, token, 'twin')).duplicate, null, 'A then B is a replacement, not yet a duplicate');

    await cli(sandbox, ['set', 'twin', 'v=2']);
    await fileHas(outB, 'v', 2);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await readJson(outA))?.['v'], 1, 'the replaced agent gets nothing more');
    assert.equal(a.logs().filter(isApplied()).length, 1);

    // A registers again (SIGHUP): A, B, A within one keepalive.
    const mark = a.logs().length;
    a.signal('SIGHUP');
    await a.waitForLog(isApplied(), 10_000, mark);
    assert.equal((await readJson(outA))?.['v'], 2, 'the registration brought A up to date');
    const dup = await waitFor('the duplicate flag', async () => (await deviceState(hub, token, 'twin')).duplicate ?? undefined);
    assert.equal(dup.endpoints.length, 2);
    assert.notEqual(dup.endpoints[0], dup.endpoints[1]);
    const status = JSON.parse(await cli(sandbox, ['--json', 'status'])) as { fleet: { devices: Array<{ device: string; duplicate: unknown }> } };
    assert.ok(status.fleet.devices.find((d) => d.device === 'twin')?.duplicate);

    // Now A holds the relation: B stops receiving.
    await cli(sandbox, ['set', 'twin', 'v=3']);
    await fileHas(outA, 'v', 3);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await readJson(outB))?.['v'], 2);
    assert.equal(await b.stop(), 0);
    twins = { a, outA };
  });

  // RFC 7641 §3.6: a deregistration cancels the sender's own observation (its endpoint and token).
  let twins: { a: AgentProcess; outA: string } | undefined;
  test('(3b) the replaced agent stopping (GET Observe 1) does not end the relation of the one that holds it', async () => {
    assert.ok(twins);
    const { a, outA } = twins;
    // B's best-effort deregistration on SIGTERM came from B's endpoint with B's token; A holds the relation.
    assert.equal((await deviceState(hub, token, 'twin')).observing, true, 'the hub still has a relation for twin');
    await cli(sandbox, ['set', 'twin', 'v=4']);
    try {
      await fileHas(outA, 'v', 4, 2_000);
    } finally {
      assert.equal(await a.stop(), 0);
    }
  });

  test('(4) a failing --exec keeps the previous file and the hub shows the failure', async () => {
    await cli(sandbox, ['device', 'add', 'hooked', '--set', 'mode=good']);
    const dir = join(sandbox.dir, 'hooked');
    const out = join(dir, 'app.env');
    const hookLog = join(dir, 'hook.log');
    await mkdir(dir, { recursive: true });
    const hook = `echo "$HENGE_DEVICE v$HENGE_CONFIG_VERSION $HENGE_CONFIG_FILE" >> ${hookLog}; if grep -q bad "$HENGE_CONFIG_FILE"; then echo "refusing v$HENGE_CONFIG_VERSION" >&2; exit 3; fi`;
    const a = agent(sandbox, ['--id', 'hooked', '--hub', coap, '--out', out, '--exec', hook, '--state', join(dir, 'state')]);
    await a.waitForLog(isAcked);
    const good = await readFile(out, 'utf8');
    assert.equal(good, "MODE='good'\n");

    await cli(sandbox, ['set', 'hooked', 'mode=bad', 'note=it\'s']);
    const failed = await waitFor('the failed ack', async () => {
      const s = await deviceState(hub, token, 'hooked');
      return s.lastAck?.status === 'failed' ? s : undefined;
    });
    assert.equal(failed.sync, 'failed');
    assert.equal(failed.lastAck?.version, failed.desiredVersion);
    assert.notEqual(failed.appliedVersion, failed.desiredVersion);
    assert.match(failed.lastAck?.message ?? '', /exited with 3/);
    assert.match(failed.lastAck?.message ?? '', new RegExp(`refusing v${failed.desiredVersion}`));
    assert.equal(await readFile(out, 'utf8'), good, 'the previous file is back');
    const hookRuns = (await readFile(hookLog, 'utf8')).trim().split('\n');
    assert.equal(hookRuns.at(-1), `hooked v${failed.desiredVersion} ${out}`);

    // A good value after that applies, and the env file quotes what a shell must not interpret.
    await cli(sandbox, ['set', 'hooked', 'mode=fine']);
    await waitFor('convergence', async () => ((await deviceState(hub, token, 'hooked')).sync === 'converged' ? true : undefined));
    assert.equal(await readFile(out, 'utf8'), "MODE='fine'\nNOTE='it'\\''s'\n");
    assert.equal(await a.stop(), 0);
  });

  test('(5) a snapshot over 2 KB reaches the agent block-wise, over IPv6', async () => {
    const long = (c: string) => c.repeat(1500);
    await cli(sandbox, ['device', 'add', 'big', '--set', `a=${long('a')}`, '--set', `b=${long('b')}`]);
    const out = join(sandbox.dir, 'big', 'config.yaml');
    const a = agent(sandbox, ['--id', 'big', '--hub', `[::1]:${String(hub.coapPort)}`, '--out', out, '--state', join(sandbox.dir, 'big', 'state')]);
    // Registration response: Block2.
    const first = await a.waitForLog(isApplied());
    assert.ok(Number(first['blocks']) >= 3, `block-wise: ${JSON.stringify(first)}`);
    assert.ok(Number(first['bytes']) > 2048);
    assert.deepEqual(parseYaml(await readFile(out, 'utf8')), { a: long('a'), b: long('b') });
    // Notification: Block2 too.
    await cli(sandbox, ['set', 'big', `c=${long('c')}`]);
    const second = await a.waitForLog((l) => isApplied()(l) && l['version'] !== first['version']);
    assert.ok(Number(second['blocks']) >= 5);
    assert.deepEqual(second['added'], ['c']);
    assert.deepEqual(parseYaml(await readFile(out, 'utf8')), { a: long('a'), b: long('b'), c: long('c') });
    const s = await waitFor('convergence', async () => {
      const st = await deviceState(hub, token, 'big');
      return st.sync === 'converged' ? st : undefined;
    });
    assert.match(s.endpoint ?? '', /^::1%/);
    assert.equal(await a.stop(), 0);
  });
});

describe('henge agent when the hub goes away', () => {
  let sandbox: Sandbox;
  let hub: HubProcess | undefined;
  let token: string;

  before(async () => {
    sandbox = await makeSandbox('henge-agent-restart-');
  });
  after(async () => {
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('(2) converges across a hub restart, after its own restart, and starts offline from its state', async () => {
    const first = await startHubProcess(sandbox, ['--keepalive', '5']);
    hub = first;
    assert.ok(first.token && first.coapPort);
    token = first.token;
    const port = String(first.coapPort);
    const restartHub = async (): Promise<HubProcess> => {
      const h = await startHubProcess(sandbox, ['--keepalive', '5', '--coap-port', port]);
      assert.equal(h.coapPort, Number(port));
      hub = h;
      return h;
    };
    await cli(sandbox, ['device', 'add', 'roamer', '--set', 'n=1']);
    const dir = join(sandbox.dir, 'roamer');
    const out = join(dir, 'config.json');
    const args = ['--id', 'roamer', '--hub', `127.0.0.1:${port}`, '--out', out, '--state', join(dir, 'state'), '--backoff-max', '2'];
    const a = agent(sandbox, args);
    await a.waitForLog(isAcked);
    assert.deepEqual(await readJson(out), { n: 1 });

    // Hub restart (same data, same port), nothing changed meanwhile; then a change while the agent reconnects.
    assert.equal(await first.stop('SIGTERM'), 0);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await readJson(out), { n: 1 }, 'the agent keeps its config while the hub is away');
    let h = await restartHub();
    await cli(sandbox, ['set', 'roamer', 'n=2']);
    await fileHas(out, 'n', 2, 30_000);
    await waitFor('convergence after the hub restart', async () => ((await deviceState(h, token, 'roamer')).sync === 'converged' ? true : undefined), 10_000);

    // A change made while the agent is stopped reaches it when it starts again.
    assert.equal(await a.stop('SIGINT'), 0);
    await cli(sandbox, ['set', 'roamer', 'n=3']);
    const a2 = agent(sandbox, args);
    await fileHas(out, 'n', 3, 10_000);
    await a2.waitForLog(isAcked);
    await waitFor('convergence after the agent restart', async () => ((await deviceState(h, token, 'roamer')).sync === 'converged' ? true : undefined), 10_000);
    assert.equal(await a2.stop(), 0);

    // Offline start: no hub, --out gone or edited -> restored from the state folder; then the hub comes back.
    assert.equal(await h.stop('SIGTERM'), 0);
    await rm(out);
    const a3 = agent(sandbox, args);
    await a3.waitForLog((l) => l.msg === 'restored --out from the state folder' && l['was'] === 'missing');
    assert.deepEqual(await readJson(out), { n: 3 });
    await a3.stop();
    await writeFile(out, '{"n": "edited by hand"}\n');
    const a4 = agent(sandbox, args);
    await a4.waitForLog((l) => l.msg === 'restored --out from the state folder' && l['was'] === 'different');
    assert.deepEqual(await readJson(out), { n: 3 });
    h = await restartHub();
    await cli(sandbox, ['set', 'roamer', 'n=4']);
    await fileHas(out, 'n', 4, 45_000);
    await waitFor('convergence after an offline start', async () => ((await deviceState(h, token, 'roamer')).sync === 'converged' ? true : undefined), 10_000);
    assert.equal(await a4.stop(), 0);
  });
});
