/**
 * A factory line end to end, with real processes: `henge provision create` on the hub, `henge agent enroll
 * <fleet token> --id` on the device, the agent waiting while the device is pending, `henge device accept`,
 * and the agent applying its config once admitted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeSandbox, runCli, startHubProcess } from '../test/helpers/processes.ts';
import type { HubProcess, Sandbox } from '../test/helpers/processes.ts';
import { startAgentProcess } from '../test/helpers/agent-process.ts';
import type { AgentProcess, LogLine } from '../test/helpers/agent-process.ts';

describe('henge provision', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  const agents: AgentProcess[] = [];
  before(async () => {
    sandbox = await makeSandbox('henge-provision-');
    hub = await startHubProcess(sandbox, [], 20_000, { insecure: false });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop('SIGKILL', 5_000)));
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('provision - a device enrolls itself with a fleet token, waits pending, and applies its config once accepted', { timeout: 90_000 }, async () => {
    const created = await runCli(sandbox, ['provision', 'create', 'line-1', '--label', 'line=1', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const fleet = JSON.parse(created.stdout) as { id: string; token: string; accept: string | null };
    assert.match(fleet.token, /^hgp_[0-9a-f]{16}_/);
    assert.equal(fleet.accept, null);
    const set = await runCli(sandbox, ['set', '--group', 'line=1', 'mode=eco']);
    assert.equal(set.code, 0, set.stderr);

    const hubArg = `127.0.0.1:${String(hub.coapsPort)}`;
    const state = join(sandbox.dir, 'fab-1-state');
    const enrolled = await runCli(sandbox, ['agent', 'enroll', fleet.token, '--id', 'fab-1', '--label', 'model=x1', '--hub', hubArg, '--state', state]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    assert.match(enrolled.stdout, /enrolled as fab-1 with hub [0-9a-f]{12}/);
    assert.match(enrolled.stdout, /pending: .*henge device accept fab-1/);
    const key = (await readFile(join(state, 'key'), 'utf8')).trim();

    const pending = await runCli(sandbox, ['device', 'list', '--pending', '--json']);
    const listed = JSON.parse(pending.stdout) as Array<{ id: string; labels: Record<string, string>; admission?: string }>;
    assert.deepEqual(
      listed.map((d) => [d.id, d.admission, d.labels]),
      [['fab-1', 'pending', { line: '1', model: 'x1' }]],
    );

    const out = join(sandbox.dir, 'fab-1.json');
    const agent = startAgentProcess(sandbox, ['--id', 'fab-1', '--hub', hubArg, '--out', out, '--state', state, '--backoff-max', '1']);
    agents.push(agent);
    // Pending: its handshakes fail and it keeps retrying, with nothing applied.
    await agent.waitForLog((l: LogLine) => typeof l.msg === 'string' && /retrying/.test(l.msg), 20_000);
    await assert.rejects(readFile(out, 'utf8'));

    const accepted = await runCli(sandbox, ['device', 'accept', 'fab-1']);
    assert.equal(accepted.code, 0, accepted.stderr);
    await agent.waitForLog((l: LogLine) => l.msg === 'ack delivered', 30_000);
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), { mode: 'eco' });

    const again = await runCli(sandbox, ['device', 'accept', 'fab-1']);
    assert.equal(again.code, 4, 'accepting a device that is not pending is refused');
    assert.match(again.stderr, /HENGE_E_NOT_PENDING/);
    const history = await runCli(sandbox, ['history', '--device', 'fab-1', '--json']);
    const types = (JSON.parse(history.stdout) as { events: Array<{ type: string }> }).events.map((e) => e.type);
    assert.ok(types.includes('device.admitted'), types.join());
    assert.equal(await agent.stop('SIGTERM'), 0);
    for (const text of [hub.stderr(), hub.stdout(), agent.stderr(), enrolled.stdout, enrolled.stderr, history.stdout]) {
      assert.ok(!text.includes(key) && !text.includes(fleet.token.slice(21)), 'neither the key nor the fleet secret is logged or printed');
    }
  });
});
