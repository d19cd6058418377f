/** Recording device acks in batches (recordAcks, HubCore.commitAll) on a real LevelDB store. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotFoundError } from '../errors.ts';
import { LevelStore } from '../store/level-store.ts';
import { verifyStore } from '../store/verify.ts';
import { addDevice, recordAcks, removeDevice, setValues } from './commands.ts';
import { deviceState } from './queries.ts';
import { HubCore } from './core.ts';
import { EventType } from './events.ts';
import type { HengeEvent } from './events.ts';

const ctx = { actor: 'test' };
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function openCore(): Promise<{ core: HubCore; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'henge-acks-'));
  dirs.push(dir);
  const path = join(dir, 'store');
  return { core: await HubCore.open(new LevelStore(path)), path };
}

test('acks - a batch is one commit; each ack its own event with its device as actor, and the views move', async () => {
  const { core, path } = await openCore();
  const ids = ['a1', 'a2', 'a3'];
  for (const id of ids) await addDevice(core, ctx, { id, values: { x: 1 } });
  const seen: Array<readonly HengeEvent[]> = [];
  core.onCommit((c) => seen.push(c.events));
  const acks = ids.map((device) => ({ device, version: core.state.snapshots.get(device)?.snapshot.version ?? -1, status: 'applied' as const, latencyMs: 3 }));
  const outcomes = await recordAcks(core, acks);
  assert.deepEqual(outcomes, [null, null, null]);
  assert.equal(seen.length, 1, 'one durable commit for the batch');
  assert.deepEqual(
    seen[0]?.map((e) => [e.type, e.actor]),
    ids.map((id) => [EventType.AckReceived, `device:${id}`]),
  );
  for (const a of acks) assert.equal(core.state.reports.get(a.device)?.appliedVersion, a.version);
  await core.close();
  const report = await verifyStore(new LevelStore(path));
  assert.deepEqual(report.differences, [], 'the views equal a replay of the log');
});

test('acks - an ack of a device that is gone is refused alone; the rest are recorded', async () => {
  const { core } = await openCore();
  await addDevice(core, ctx, { id: 'stays', values: { x: 1 } });
  await addDevice(core, ctx, { id: 'goes', values: { x: 1 } });
  const version = (id: string): number => core.state.snapshots.get(id)?.snapshot.version ?? -1;
  const goneAck = { device: 'goes', version: version('goes'), status: 'applied' as const };
  await removeDevice(core, ctx, 'goes');
  const outcomes = await recordAcks(core, [goneAck, { device: 'stays', version: version('stays'), status: 'applied' }]);
  assert.ok(outcomes[0] instanceof NotFoundError);
  assert.equal(outcomes[0].code, 'HENGE_E_NOT_FOUND');
  assert.equal(outcomes[1], null);
  assert.equal(core.state.reports.get('stays')?.appliedVersion, version('stays'));
  const seq = core.state.seq;
  const alone = await recordAcks(core, [goneAck]);
  assert.ok(alone[0] instanceof NotFoundError);
  assert.equal(core.state.seq, seq, 'a batch of refused acks writes nothing');
  await core.close();
});

test('acks - a late ack of an older version (one a device abandoned for a newer one) is logged but does not replace the newest report', async () => {
  const { core, path } = await openCore();
  await addDevice(core, ctx, { id: 'late', values: { x: 1 } });
  const v1 = core.state.snapshots.get('late')?.snapshot.version ?? -1;
  await setValues(core, ctx, { device: 'late' }, { x: 2 }, false);
  const v2 = core.state.snapshots.get('late')?.snapshot.version ?? -1;
  assert.ok(v2 > v1);
  // The device failed to apply v2 and said so; the applied ack of v1 it had abandoned arrives afterwards.
  assert.deepEqual(await recordAcks(core, [{ device: 'late', version: v2, status: 'failed', message: 'hook exited 1' }]), [null]);
  assert.deepEqual(await recordAcks(core, [{ device: 'late', version: v1, status: 'applied' }]), [null]);
  const report = core.state.reports.get('late');
  assert.equal(report?.lastAck?.version, v2, 'the newest report stands');
  assert.equal(report.lastAck.status, 'failed');
  assert.equal(report.appliedVersion, v1, 'v1 was applied: the applied version moves');
  assert.equal(deviceState(core, undefined, 'late').sync, 'failed', 'the fleet still shows the failure');
  const logged: string[] = [];
  for await (const [, raw] of core.store.log()) logged.push(raw);
  assert.equal(logged.filter((l) => l.includes(EventType.AckReceived)).length, 2, 'both acks are in the log');
  await core.close();
  const verify = await verifyStore(new LevelStore(path));
  assert.deepEqual(verify.differences, [], 'the views equal a replay of the log');
});
