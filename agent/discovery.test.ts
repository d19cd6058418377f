/**
 * The whole discovery path between two hosts: `henge hub` (advertising over mDNS) in network namespace A,
 * `henge agent` with no --hub in namespace B, with the key `device add` printed: the hub serves coaps only
 * (the default) and advertises `_coaps._udp`. The agent must find the hub, pin it, and apply a change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HENGE_BIN, ROOT } from '../test/helpers/processes.ts';
import { STATE_FILE } from './state.ts';
import { childEnv, createNetnsPair, netnsMissing, skipOrFail } from '../test/helpers/netns.ts';
import type { ManagedProcess } from '../test/helpers/netns.ts';

test('discovery - an agent with a key and no --hub finds the coaps hub over mDNS, pins it and applies a change', async (t) => {
  const missing = await netnsMissing();
  if (missing !== undefined) {
    skipOrFail(t, missing);
    return;
  }
  const pair = await createNetnsPair();
  const dir = pair.tempDir('henge-disco-');
  const env = childEnv({ XDG_CONFIG_HOME: join(dir, 'config'), NODE_NO_WARNINGS: '1' });
  let hub: ManagedProcess | undefined;
  let agent: ManagedProcess | undefined;
  try {
    hub = pair.a.spawn(process.execPath, [HENGE_BIN, 'hub', '--data', join(dir, 'hub'), '--port', '0', '--log-level', 'warn'], { env, cwd: ROOT });
    const banner = await hub.waitForLine((l) => l.includes('mDNS:'), 30_000, 'hub banner');
    assert.match(banner, /advertised as henge-[0-9a-f]{12} \(_henge\._sub\._coaps\._udp\)/, banner);
    const hubId = /henge-([0-9a-f]{12})/.exec(banner)?.[1] ?? '';
    const henge = (args: string[]) => pair.a.run(process.execPath, [HENGE_BIN, ...args], { timeoutMs: 30_000, env, cwd: ROOT });
    const added = await henge(['device', 'add', 'lamp', '--json']);
    assert.equal(added.code, 0);
    const keyFile = join(dir, 'lamp.key');
    await writeFile(keyFile, `${(JSON.parse(added.stdout) as { key: string }).key}\n`, { mode: 0o600 });
    assert.equal((await henge(['set', 'lamp', 'brightness=40'])).code, 0);

    const out = join(dir, 'lamp.json');
    agent = pair.b.spawn(process.execPath, [HENGE_BIN, 'agent', '--id', 'lamp', '--key-file', keyFile, '--out', out, '--state', join(dir, 'agent-state')], { env, cwd: ROOT });
    const connected = await agent.waitForStderrLine((l) => l.includes('mdns henge-'), 40_000, 'the agent finds the hub over mDNS');
    assert.ok(connected.includes(pair.a.address), `the agent uses A's address on the link: ${connected}`);
    const applied = async (want: number): Promise<void> => {
      for (let i = 0; i < 100; i++) {
        const text = await readFile(out, 'utf8').catch(() => '');
        if (text !== '' && (JSON.parse(text) as { brightness?: number }).brightness === want) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`the agent's file never held brightness=${want}`);
    };
    await applied(40);
    assert.equal((await henge(['set', 'lamp', 'brightness=75'])).code, 0);
    await applied(75);
    const state = JSON.parse(await readFile(join(dir, 'agent-state', STATE_FILE), 'utf8')) as { hubId?: string };
    assert.equal(state.hubId, hubId, 'the agent pinned the hub it found');
  } finally {
    await agent?.stop();
    await hub?.stop();
    await pair.cleanup();
  }
});
