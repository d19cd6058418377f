/**
 * The store's promises, on a real LevelDB in a temp folder: a refused command leaves no trace, a restart
 * keeps everything, start-up loads the views without replaying the log, and `verifyStore` finds exactly
 * what was corrupted on purpose (the folder is edited with `level` directly while the hub is closed).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { HengeError, SchemaConflictError, SchemaViolationError } from '../errors.ts';
import {
  HubCore,
  addDevice,
  createToken,
  defineGroup,
  effectiveConfig,
  getGroup,
  listGroups,
  publishSchema,
  removeDevice,
  removeGroup,
  revokeToken,
  setValues,
  updateDevice,
} from '../domain/index.ts';
import type { CommandContext } from '../domain/index.ts';
import { logKey } from '../domain/views.ts';
import { LevelStore } from './level-store.ts';
import { verifyStore } from './verify.ts';
import type { VerifyReport } from './verify.ts';

const ctx: CommandContext = { actor: 'test', reason: 'store test' };
const dirs: string[] = [];
const open: Array<{ close(): Promise<void> }> = [];

after(async () => {
  for (const o of open) await o.close().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempStorePath(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'henge-store-'));
  dirs.push(d);
  return join(d, 'store');
}

async function openCore(path: string): Promise<HubCore> {
  const core = await HubCore.open(new LevelStore(path));
  open.push(core);
  return core;
}

async function closeCore(core: HubCore): Promise<void> {
  await core.close();
  open.splice(open.indexOf(core), 1);
}

/** Runs `fn` on the raw LevelDB folder (the hub must be closed). */
async function withLevel(path: string, fn: (db: Level<string, string>) => Promise<void>): Promise<void> {
  const db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function verify(path: string): Promise<VerifyReport> {
  const store = new LevelStore(path);
  await store.open();
  try {
    return await verifyStore(store);
  } finally {
    await store.close();
  }
}

const THERMO_V1 = {
  type: 'object',
  properties: {
    setpoint: { type: 'number', minimum: 5, maximum: 30, default: 20 },
    mode: { enum: ['off', 'heat'], default: 'off' },
  },
  required: ['mode'],
};
const THERMO_V2 = { ...THERMO_V1, properties: { ...THERMO_V1.properties, name: { type: 'string', maxLength: 20 } } };
const LAMP_V1 = { type: 'object', properties: { brightness: { type: 'integer', minimum: 0, maximum: 100, default: 50 } } };

/** A hub with some of everything: schemas with several versions, devices, groups, values, tokens. */
async function populate(core: HubCore, opts: { removeOne?: boolean } = {}): Promise<void> {
  await publishSchema(core, ctx, 'thermo', THERMO_V1);
  await publishSchema(core, ctx, 'thermo', THERMO_V2);
  await publishSchema(core, ctx, 'lamp', LAMP_V1);
  await addDevice(core, ctx, { id: 'd1', name: 'Thermostat', labels: { site: 'a' }, schema: 'thermo', values: { setpoint: 22 } });
  await addDevice(core, ctx, { id: 'd2', labels: { site: 'b' }, values: { x: 'y', n: 3 } });
  await addDevice(core, ctx, { id: 'lamp-1', labels: { site: 'a', room: 'hall' }, schema: 'lamp' });
  await defineGroup(core, ctx, 'site-a', { selector: 'site=a', priority: 5, values: { mode: 'heat', brightness: 70 } });
  await defineGroup(core, ctx, 'everyone', { selector: '*', priority: 1, values: { color: 'blue' } });
  await defineGroup(core, ctx, 'temp', { selector: 'room=hall', values: { brightness: 10 } });
  await removeGroup(core, ctx, 'temp');
  await setValues(core, ctx, { group: 'site-a' }, { brightness: 80 }, false);
  await updateDevice(core, ctx, 'd2', { name: 'Device two', labels: { site: 'a', room: 'hall' } });
  await setValues(core, ctx, { device: 'd2' }, { n: null, z: true }, false);
  await createToken(core, ctx, 'ci');
  const old = await createToken(core, ctx, 'old');
  await revokeToken(core, ctx, old.id);
  if (opts.removeOne) {
    await addDevice(core, ctx, { id: 'gone', values: { a: 1 } });
    await removeDevice(core, ctx, 'gone');
  }
}

const byKey = <T>(entries: Iterable<[string, T]>): Array<[string, T]> => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** Everything a restart must keep, in comparable form. */
function capture(core: HubCore): unknown {
  const s = core.state;
  const ids = [...s.devices.keys()].sort();
  return {
    seq: s.seq,
    meta: s.meta,
    devices: ids.map((id) => s.devices.get(id)),
    schemas: byKey(s.schemas.entries()),
    groups: listGroups(core).map((g) => ({ ...g, members: getGroup(core, g.name).members })),
    tokens: byKey(s.tokens.entries()),
    versions: byKey(s.versions.entries()),
    snapshots: ids.map((id) => {
      const snap = s.snapshots.get(id)?.snapshot;
      return { id, version: snap?.version, hash: snap ? Buffer.from(snap.hash).toString('hex') : null, values: snap?.values };
    }),
    configs: ids.map((id) => effectiveConfig(core, id)),
  };
}

async function diskViews(core: HubCore): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const e of core.store.views()) out.push(e);
  return out;
}

async function logLength(core: HubCore): Promise<number> {
  let n = 0;
  for await (const [seq] of core.store.log({ from: 1, to: core.state.seq + 100 })) {
    assert.equal(seq, n + 1, 'the log has no gaps');
    n++;
  }
  return n;
}

async function refused(p: Promise<unknown>): Promise<HengeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HengeError, `expected a HengeError, got ${String(err)}`);
    return err;
  }
  assert.fail('the command was expected to be refused');
}

test('store - a command that fails validation leaves no trace', async () => {
  const path = await tempStorePath();
  const core = await openCore(path);
  await populate(core);
  const before = capture(core);
  const viewsBefore = await diskViews(core);
  const seqBefore = core.state.seq;
  assert.equal(await logLength(core), seqBefore);
  let commits = 0;
  core.onCommit(() => commits++);

  // One good key and one out-of-range key: nothing of it is kept.
  const patch = await refused(setValues(core, ctx, { device: 'd1' }, { mode: 'off', setpoint: 99 }, false));
  assert.ok(patch instanceof SchemaViolationError);
  assert.deepEqual(
    patch.details.violations?.map((v) => [v.field, v.rule, v.device]),
    [['values.setpoint', 'maximum', 'd1']],
  );
  // Other refused commands, each of which would have touched several views.
  assert.ok((await refused(addDevice(core, ctx, { id: 'd9', labels: { site: 'a' }, schema: 'thermo', values: { setpoint: 1 } }))) instanceof SchemaViolationError);
  assert.ok((await refused(defineGroup(core, ctx, 'hot', { selector: 'site=a', priority: 50, values: { mode: 'boost' } }))) instanceof SchemaViolationError);
  assert.ok((await refused(setValues(core, ctx, { group: 'site-a' }, { brightness: 70, mode: 'cool' }, false))) instanceof SchemaViolationError);
  assert.ok((await refused(publishSchema(core, ctx, 'thermo', { type: 'object', properties: { setpoint: { type: 'number', maximum: 10 } } }))) instanceof SchemaConflictError);
  assert.ok((await refused(updateDevice(core, ctx, 'd2', { schema: 'lamp', labels: { site: 'b' } }))) instanceof SchemaViolationError);

  assert.equal(core.state.seq, seqBefore, 'same log length in memory');
  assert.equal(await logLength(core), seqBefore, 'same log length on disk');
  assert.equal(commits, 0, 'no event was committed');
  assert.deepEqual(capture(core), before, 'the views in memory are unchanged');
  assert.deepEqual(await diskViews(core), viewsBefore, 'the views on disk are unchanged');
  assert.equal(core.state.devices.get('d1')?.values['setpoint'], 22);
  assert.equal(core.state.devices.has('d9'), false);
  assert.equal(core.state.group('hot'), undefined);
  assert.equal(core.state.latestSchema('thermo')?.version, 2);

  await closeCore(core);
  const again = await openCore(path);
  assert.deepEqual(capture(again), before, 'nothing of the refused commands shows up after a restart');
  await closeCore(again);
});

test('store - a restart keeps devices, schemas, groups, values, tokens, snapshot versions and hashes', async () => {
  const path = await tempStorePath();
  const core = await openCore(path);
  await populate(core, { removeOne: true });
  const before = capture(core);
  const hubId = core.state.meta?.hubId;
  await closeCore(core);

  const again = await openCore(path);
  assert.deepEqual(capture(again), before);
  const s = again.state;
  assert.equal(s.meta?.hubId, hubId, 'the hub keeps its id and incarnation');
  assert.deepEqual(
    s.schemas.get('thermo')?.map((x) => x.version),
    [1, 2],
    'every schema version is kept',
  );
  assert.deepEqual(s.devices.get('d2')?.values, { x: 'y', z: true });
  assert.deepEqual(s.devices.get('d2')?.labels, { site: 'a', room: 'hall' });
  assert.equal(s.devices.has('gone'), false, 'a removed device stays removed');
  assert.deepEqual(getGroup(again, 'site-a').members, ['d1', 'd2', 'lamp-1']);
  assert.equal(s.group('temp'), undefined);
  assert.deepEqual(
    [...s.tokens.values()].map((t) => [t.name, t.revokedAt === null]).sort(),
    [
      ['ci', true],
      ['old', false],
    ],
  );
  const lamp = effectiveConfig(again, 'lamp-1');
  assert.deepEqual(lamp.values, { brightness: 80 });
  assert.deepEqual(lamp.provenance['brightness'], { value: 80, layer: 'group', group: 'site-a' });

  // The reopened hub goes on where it stopped.
  const r = await setValues(again, ctx, { device: 'd2' }, { after: 'restart' }, false);
  assert.equal(r.seq, (before as { seq: number }).seq + 1);
  assert.equal(again.state.versions.get('d2'), r.seq);
  await closeCore(again);
});

test('store - a restart keeps the snapshot hash of a value of -0', async () => {
  // JSON.parse('-0') is -0, so the API hands this value to the core as it is.
  const path = await tempStorePath();
  const core = await openCore(path);
  await addDevice(core, ctx, { id: 'zero' });
  await setValues(core, ctx, { device: 'zero' }, { z: -0, n: 1 }, false);
  const before = effectiveConfig(core, 'zero');
  await closeCore(core);
  const again = await openCore(path);
  const after = effectiveConfig(again, 'zero');
  await closeCore(again);
  assert.equal(after.version, before.version);
  assert.equal(after.hash, before.hash, `same version ${after.version}, same values, but the hash went from ${before.hash} to ${after.hash}`);
});

test('store - start-up loads the views and never replays the log', async () => {
  const path = await tempStorePath();
  const core = await openCore(path);
  await populate(core);
  const before = capture(core);
  const seq = core.state.seq;
  await closeCore(core);

  // Make every log entry unreadable: a start-up that replayed the log could not get the state back.
  await withLevel(path, async (db) => {
    const keys = await db.keys({ gte: 'l!', lt: 'l"' }).all();
    assert.equal(keys.length, seq);
    await db.batch(keys.map((key) => ({ type: 'put' as const, key, value: '{this is not an event' })));
  });
  const again = await openCore(path);
  assert.deepEqual(capture(again), before);
  await closeCore(again);
});

test('store - a deleted log entry: start-up still loads the views, verify reports the missing entry', async () => {
  const path = await tempStorePath();
  const core = await openCore(path);
  await populate(core);
  const gone = await setValues(core, ctx, { device: 'd2' }, { a: 1 }, false);
  await setValues(core, ctx, { device: 'd2' }, { b: 2 }, false);
  const seq = core.state.seq;
  const before = capture(core);
  await closeCore(core);
  assert.ok(gone.seq !== null);
  const missing = gone.seq;

  await withLevel(path, async (db) => {
    assert.equal(await db.get(logKey(missing)) !== undefined, true);
    await db.del(logKey(missing));
  });

  const again = await openCore(path);
  assert.deepEqual(capture(again), before, 'the state still loads, with the effect of the deleted event');
  assert.deepEqual(again.state.devices.get('d2')?.values, { x: 'y', z: true, a: 1, b: 2 });
  await closeCore(again);

  const report = await verify(path);
  assert.equal(report.events, seq - 1);
  assert.ok(
    report.differences.some(
      (d) => d.kind === 'missing' && (d.key === logKey(missing) || d.key === `l!${missing}` || (d.expected ?? '').includes(`event ${missing}`)),
    ),
    `verify names the missing log entry ${missing}: ${JSON.stringify(report.differences)}`,
  );
  assert.ok(
    report.differences.some((d) => d.key === 'd!d2' && d.kind === 'different'),
    'the device view no longer matches its log either',
  );
});

test('store - verify reports no differences on a healthy store', async () => {
  const path = await tempStorePath();
  const core = await openCore(path);
  await populate(core);
  const seq = core.state.seq;
  const views = (await diskViews(core)).length;
  await closeCore(core);

  const report = await verify(path);
  assert.deepEqual(report.differences, []);
  assert.equal(report.events, seq, 'every log event was replayed, and nothing else');
  assert.equal(report.views, views);
});

test('store - removing a device removes its views from the store', async () => {
  const path = await tempStorePath();
  const core = await openCore(path);
  await addDevice(core, ctx, { id: 'keep', values: { a: 1 } });
  await addDevice(core, ctx, { id: 'gone', values: { a: 1 } });
  await setValues(core, ctx, { device: 'gone' }, { b: 2 }, false);
  await removeDevice(core, ctx, 'gone');
  const keys = (await diskViews(core)).map(([k]) => k);
  await closeCore(core);

  assert.ok(keys.includes('d!keep') && keys.includes('v!keep'));
  assert.equal(keys.includes('d!gone'), false, 'the device record is deleted');
  assert.equal(keys.includes('v!gone'), false, 'the snapshot version of a removed device is deleted');
  const report = await verify(path);
  assert.deepEqual(report.differences, [], 'verify agrees with a store where a device was removed');
});

/** Builds a store, closes it, checks verify is clean, then corrupts it with `fn` and verifies again. */
async function corruptAndVerify(fn: (db: Level<string, string>) => Promise<void>): Promise<VerifyReport> {
  const path = await tempStorePath();
  const core = await openCore(path);
  await populate(core);
  await closeCore(core);
  await withLevel(path, fn);
  return verify(path);
}

test('store - verify reports a changed device view as different, and ignores key order', async () => {
  let original = '';
  let reordered = '';
  const unchanged = await corruptAndVerify(async (db) => {
    original = (await db.get('d!d1')) ?? '';
    const rec = JSON.parse(original) as Record<string, unknown>;
    reordered = JSON.stringify(Object.fromEntries(Object.entries(rec).reverse()));
    assert.notEqual(reordered, original);
    await db.put('d!d1', reordered);
  });
  assert.deepEqual(unchanged.differences, [], 'the same record with its keys in another order is no difference');

  let corrupted = '';
  const report = await corruptAndVerify(async (db) => {
    const rec = JSON.parse((await db.get('d!d1')) ?? '{}') as Record<string, unknown>;
    corrupted = JSON.stringify({ ...rec, name: 'tampered' });
    await db.put('d!d1', corrupted);
  });
  assert.equal(report.differences.length, 1, JSON.stringify(report.differences));
  const [d] = report.differences;
  assert.equal(d?.key, 'd!d1');
  assert.equal(d?.kind, 'different');
  assert.equal(d?.actual, corrupted);
  assert.equal((JSON.parse(d?.expected ?? '{}') as { name?: string }).name, 'Thermostat');
});

test('store - verify reports a deleted version view as missing', async () => {
  let version = '';
  const report = await corruptAndVerify(async (db) => {
    version = (await db.get('v!d1')) ?? '';
    assert.match(version, /^\d+$/);
    await db.del('v!d1');
  });
  assert.deepEqual(report.differences, [{ key: 'v!d1', kind: 'missing', expected: version }]);
});

test('store - verify reports a stray group view as extra', async () => {
  const stray = JSON.stringify({ name: 'x', selector: '*', priority: 0, values: {}, createdAt: 1, updatedAt: 1 });
  const report = await corruptAndVerify(async (db) => {
    await db.put('g!x', stray);
  });
  assert.deepEqual(report.differences, [{ key: 'g!x', kind: 'extra', actual: stray }]);
});
