/**
 * "Newest ack first" (docs/protocol.md, "Ack") in the Node agent, end to end: a real hub process, a real
 * agent process, and between them a relay (test/helpers/filter-relay.ts) that loses exactly the datagrams
 * that put the agent in each situation. Without the rule the new ack waits for the older exchange's whole
 * retransmission span (up to 93 s).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deviceStateOf, henge, makeSandbox, startHubProcess } from '../test/helpers/processes.ts';
import type { DeviceStateView, HubProcess, Sandbox } from '../test/helpers/processes.ts';
import { startAgentProcess, waitFor } from '../test/helpers/agent-process.ts';
import type { AgentProcess, LogLine } from '../test/helpers/agent-process.ts';
import { Direction, ackVersionOf, isRegistration, startFilterRelay } from '../test/helpers/filter-relay.ts';
import type { FilterRelay } from '../test/helpers/filter-relay.ts';

const isAcked = (l: LogLine): boolean => l.msg === 'ack delivered';

describe('henge agent - newest ack first', () => {
  let sandbox: Sandbox;
  let hub: HubProcess;
  /** One relay per test, so that each sees one device: another test's agent keeps running. */
  const relays: FilterRelay[] = [];
  const newRelay = async (): Promise<FilterRelay> => {
    assert.ok(hub.coapPort);
    const r = await startFilterRelay({ host: '127.0.0.1', port: hub.coapPort });
    relays.push(r);
    return r;
  };
  let token = '';
  const agents: AgentProcess[] = [];

  const cli = (...args: string[]): Promise<string> => henge(sandbox, ...args);
  const state = (id: string): Promise<DeviceStateView> => deviceStateOf(hub, token, id);
  const start = (id: string, relay: FilterRelay): AgentProcess => {
    const a = startAgentProcess(sandbox, ['--id', id, '--hub', `127.0.0.1:${relay.port}`, '--out', join(sandbox.dir, id, 'config.json'), '--state', join(sandbox.dir, id, 'state')]);
    agents.push(a);
    return a;
  };

  before(async () => {
    sandbox = await makeSandbox('henge-agent-newest-ack-');
    // The shortest keepalive the hub takes: the agent re-registers every 3.5-4.25 s.
    hub = await startHubProcess(sandbox, ['--keepalive', '5']);
    assert.ok(hub.token && hub.coapPort);
    token = hub.token;
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop('SIGKILL', 5_000)));
    await Promise.all(relays.map((r) => r.close()));
    await hub?.stop();
    await sandbox?.cleanup();
  });

  test('newest ack - the ack of a newer snapshot abandons the older ack in flight and reaches the hub at once', { timeout: 60_000 }, async () => {
    const id = 'na-older';
    await cli('device', 'add', id, '--set', 'mode=a');
    const relay = await newRelay();
    const a = start(id, relay);
    await a.waitForLog(isAcked, 15_000);

    // Every ack of the next version is lost on the way to the hub: its exchange keeps retransmitting.
    // (Versions are the hub's log positions: the next one is only known once the change is made.)
    const acked = (await state(id)).desiredVersion;
    relay.setFilter((d) => d.direction === Direction.Up && (ackVersionOf(d.msg) ?? -1) > acked);
    await cli('set', id, 'mode=b');
    const stuck = (await state(id)).desiredVersion;
    relay.setFilter((d) => d.direction === Direction.Up && (ackVersionOf(d.msg) ?? Infinity) <= stuck);
    await waitFor('the ack of the stuck version to be lost once', () => (relay.log.some((d) => d.dropped && ackVersionOf(d.msg) === stuck) ? true : undefined), 10_000);

    await cli('set', id, 'mode=c');
    const t0 = performance.now();
    const newest = (await state(id)).desiredVersion;
    assert.ok(newest > stuck);
    await waitFor(`the hub to hold the ack of ${newest}`, async () => ((await state(id)).appliedVersion === newest ? true : undefined), 15_000);
    const ms = performance.now() - t0;
    // Without the rule: the agent applies `newest` only once the stuck exchange ends (93 s).
    assert.ok(ms < 10_000, `the newest ack took ${Math.round(ms)} ms`);

    // The abandoned ack was never sent again once the newer one went.
    const firstNewest = relay.log.findIndex((d) => d.direction === Direction.Up && ackVersionOf(d.msg) === newest);
    assert.ok(firstNewest >= 0);
    const resent = relay.log.slice(firstNewest).filter((d) => d.direction === Direction.Up && ackVersionOf(d.msg) === stuck);
    assert.equal(resent.length, 0, 'the older ack was abandoned, not retransmitted');
    assert.equal((await state(id)).sync, 'converged');
    relay.setFilter(null);
  });

  test('newest ack - an ack does not wait for a re-registration in flight; the agent registers again right after it', { timeout: 60_000 }, async () => {
    const id = 'na-rereg';
    await cli('device', 'add', id, '--set', 'mode=a');
    const relay = await newRelay();
    const a = start(id, relay);
    await a.waitForLog(isAcked, 15_000);

    // From now on the hub's answers to registrations are lost: the next keepalive re-registration hangs.
    const from = relay.log.length;
    relay.setFilter((d) => d.direction === Direction.Down && isRegistration(d.answers));
    await waitFor('a re-registration whose answer was lost', () => (relay.log.slice(from).some((d) => d.dropped) ? true : undefined), 15_000);

    await cli('set', id, 'mode=z');
    const t0 = performance.now(); // from the change (a CLI process start is not what is measured)
    const version = (await state(id)).desiredVersion;
    await waitFor(`the hub to hold the ack of ${version}`, async () => ((await state(id)).appliedVersion === version ? true : undefined), 15_000);
    const ms = performance.now() - t0;
    // Without the rule the ack queues behind the registration (NSTART 1) until it is given up (93 s).
    assert.ok(ms < 5_000, `the ack took ${Math.round(ms)} ms`);

    // The registration was abandoned: not retransmitted once the ack went; a new one follows the ack.
    const ackAt = relay.log.findIndex((d, i) => i >= from && d.direction === Direction.Up && ackVersionOf(d.msg) === version);
    assert.ok(ackAt >= 0);
    const hanging = relay.log.slice(from, ackAt).filter((d) => d.direction === Direction.Up && isRegistration(d.msg)).at(-1)?.msg;
    assert.ok(hanging, 'a registration was in flight when the ack went');
    const after = await waitFor('the agent to register again after the ack', () => {
      const regs = relay.log.slice(ackAt).filter((d) => d.direction === Direction.Up && isRegistration(d.msg));
      return regs.length > 0 ? regs : undefined;
    });
    const trace = (): string =>
      relay.log
        .slice(from)
        .map((d) => `${d.at} ${d.direction} ${d.msg ? `${d.msg.confirmable ? 'CON' : d.msg.ack ? 'ACK' : d.msg.reset ? 'RST' : 'NON'} ${d.msg.code} mid ${d.msg.messageId}` : 'not CoAP'}${isRegistration(d.msg) ? ' registration' : ''}${ackVersionOf(d.msg) !== undefined ? ` ack v${String(ackVersionOf(d.msg))}` : ''}${d.answers ? ` answers mid ${d.answers.messageId}` : ''}${d.dropped ? ' DROPPED' : ''}`)
        .join('\n');
    assert.ok(
      after.every((d) => d.msg?.messageId !== hanging.messageId),
      `the abandoned registration (mid ${hanging.messageId}) was not retransmitted; relay log from the filter on:\n${trace()}\nagent log:\n${a.stderr().slice(-3000)}`,
    );

    // Answers flow again: the next registration is answered and the relation holds.
    const now = relay.log.length;
    relay.setFilter(null);
    await waitFor('a registration answered', () => (relay.log.slice(now).some((d) => d.direction === Direction.Down && isRegistration(d.answers) && !d.dropped) ? true : undefined), 15_000);
    assert.equal((await state(id)).sync, 'converged');
  });
});
