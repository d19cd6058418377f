/**
 * Group commit through HubCore on a real LevelDB: concurrent commands share synced batches, a command
 * resolves only once its batch is on disk, and a failed batch fails everything in it and behind it, after
 * which the views are what the disk holds. Failures are injected around the real store, never mocked.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, StoreUnavailableError } from '../errors.ts';
import { HubCore, addDevice, getDevice, setValues } from '../domain/index.ts';
import type { CommandContext, HubObserver } from '../domain/index.ts';
import type { CommandResult } from '../domain/commands.ts';
import { logKey } from '../domain/views.ts';
import { LevelStore } from './level-store.ts';
import { FaultyStore } from '../../test/helpers/faulty-store.ts';
import type { Store } from './store.ts';

const ctx: CommandContext = { actor: 'test' };
const dirs: string[] = [];
const cores: HubCore[] = [];
const stores: FaultyStore[] = [];

after(async () => {
  // A failed assertion may leave a write held at its gate: let it go so that close() can drain.
  for (const s of stores) s.releaseAll();
  for (const c of cores) await c.close().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'henge-committer-'));
  dirs.push(d);
  return d;
}

interface Harness {
  readonly dir: string;
  readonly store: FaultyStore;
  readonly core: HubCore;
  /** Commands per synced batch, as HubObserver.batchWritten saw them (after setup). */
  readonly batches: number[];
  readonly reloads: Array<Error | null>;
}

async function openHarness(dir?: string): Promise<Harness> {
  const d = dir ?? (await tempDir());
  const store = new FaultyStore(new LevelStore(join(d, 'store')));
  stores.push(store);
  const batches: number[] = [];
  const reloads: Array<Error | null> = [];
  const observer: HubObserver = {
    batchWritten: (n) => batches.push(n),
    reloaded: (err) => reloads.push(err),
  };
  const core = await HubCore.open(store, observer);
  cores.push(core);
  return { dir: d, store, core, batches, reloads };
}

async function closeHarness(h: Harness): Promise<void> {
  await h.core.close();
  cores.splice(cores.indexOf(h.core), 1);
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await turn();
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function logEntries(store: Store, from: number, to: number): Promise<number[]> {
  const out: number[] = [];
  for await (const [seq] of store.log({ from, to })) out.push(seq);
  return out;
}

/** Settles a promise into a result or an error, so assertions can see which it was. */
async function settle(p: Promise<CommandResult>): Promise<{ ok: CommandResult } | { err: unknown }> {
  try {
    return { ok: await p };
  } catch (err) {
    return { err };
  }
}

function assertStoreUnavailable(err: unknown, injected: string): void {
  assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(err)}`);
  assert.equal(err.code, ErrorCode.StoreUnavailable);
  assert.equal(err.code, 'HENGE_E_STORE_UNAVAILABLE');
  assert.equal(err.status, 503);
  assert.match(err.message, new RegExp(injected));
}

test('committer - 64 concurrent commands go to disk in fewer synced batches than commands', async () => {
  const h = await openHarness();
  await addDevice(h.core, ctx, { id: 'd1' });
  h.batches.length = 0;
  const writesBefore = h.store.writes.length;
  const seqBefore = h.core.state.seq;

  const results = await Promise.all(Array.from({ length: 64 }, (_, i) => setValues(h.core, ctx, { device: 'd1' }, { [`k${i}`]: i }, false)));

  const total = h.batches.reduce((a, b) => a + b, 0);
  assert.equal(total, 64, 'every command is counted in exactly one batch');
  assert.ok(h.batches.length < 64, `64 commands took ${h.batches.length} batches`);
  assert.equal(h.store.writes.length - writesBefore, h.batches.length, 'one store write per batch');
  const seqs = results.map((r) => r.seq);
  assert.equal(new Set(seqs).size, 64, 'every command got its own sequence number');
  assert.deepEqual(
    [...seqs].sort((a, b) => (a ?? 0) - (b ?? 0)),
    Array.from({ length: 64 }, (_, i) => seqBefore + 1 + i),
  );
  const values = getDevice(h.core, 'd1').values;
  for (let i = 0; i < 64; i++) assert.equal(values[`k${i}`], i);
  assert.deepEqual(await logEntries(h.store, seqBefore + 1, seqBefore + 64), Array.from({ length: 64 }, (_, i) => seqBefore + 1 + i));

  // All of it is on disk: a fresh open sees every value.
  await closeHarness(h);
  const again = await openHarness(h.dir);
  const reloaded = getDevice(again.core, 'd1').values;
  for (let i = 0; i < 64; i++) assert.equal(reloaded[`k${i}`], i);
  assert.equal(again.core.state.seq, seqBefore + 64);
  await closeHarness(again);
});

test('committer - a command resolves only after its batch is written', async () => {
  const h = await openHarness();
  await addDevice(h.core, ctx, { id: 'd1' });
  h.batches.length = 0;
  const release = h.store.hold();

  const resolvedEarly: string[] = [];
  const track = (name: string, p: Promise<CommandResult>): Promise<CommandResult> =>
    p.then((r) => {
      const rec = h.store.writes.find((w) => r.seq !== null && w.keys.includes(logKey(r.seq)));
      if (!rec?.done) resolvedEarly.push(name);
      return r;
    });

  const first = track('first', setValues(h.core, ctx, { device: 'd1' }, { a: 1 }, false));
  await until(() => h.store.writes.some((w) => !w.done && !w.failed), 'the first write to start');
  // Ten more arrive while the first batch is being synced: they wait together.
  const queued = Array.from({ length: 10 }, (_, i) => track(`queued-${i}`, setValues(h.core, ctx, { device: 'd1' }, { [`q${i}`]: i }, false)));
  let settled = 0;
  for (const p of [first, ...queued]) void p.then(() => settled++);
  for (let i = 0; i < 20; i++) await turn();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, 0, 'no command resolves while its batch is not on disk');
  assert.deepEqual(h.batches, [], 'no batch was reported written');

  release();
  const results = await Promise.all([first, ...queued]);
  assert.deepEqual(resolvedEarly, [], 'every command resolved after its write completed');
  assert.deepEqual(h.batches, [1, 10], 'the commands queued during the sync went out as one batch');
  const last = results[results.length - 1]?.seq ?? 0;
  assert.equal((await logEntries(h.store, 1, last)).length, last, 'the log holds every resolved command');
  await closeHarness(h);
});

test('committer - a failed batch rejects every command in it and queued behind it, and the views are reloaded from disk', async () => {
  const h = await openHarness();
  await addDevice(h.core, ctx, { id: 'd1' });
  await setValues(h.core, ctx, { device: 'd1' }, { base: 1, keep: 'yes' }, false);
  const seqBefore = h.core.state.seq;
  const versionBefore = h.core.state.versions.get('d1');
  const committedAfter: number[] = [];
  h.core.onCommit((c) => committedAfter.push(c.events.length));

  const release = h.store.hold();
  h.store.failWrites = new Error('injected EIO');
  // Two commands in the batch that will fail...
  const inBatch = [
    settle(setValues(h.core, ctx, { device: 'd1' }, { base: 2 }, false)),
    settle(setValues(h.core, ctx, { device: 'd1' }, { added: true }, false)),
  ];
  await until(() => h.store.writes.some((w) => !w.done && !w.failed), 'the batch write to start');
  // ...and two queued behind it, validated against state that will not exist.
  const behind = [
    settle(setValues(h.core, ctx, { device: 'd1' }, { keep: null }, false)),
    settle(setValues(h.core, ctx, { device: 'd1' }, { later: 'x' }, false)),
  ];
  // In memory the four changes are applied (each validated against the previous) before the write fails.
  await until(() => getDevice(h.core, 'd1').values['later'] === 'x', 'the queued commands to be applied in memory');
  assert.deepEqual(getDevice(h.core, 'd1').values, { base: 2, added: true, later: 'x' });
  release();

  const outcomes = await Promise.all([...inBatch, ...behind]);
  for (const o of outcomes) {
    assert.ok('err' in o, 'every command in and behind the failed batch is rejected');
    assertStoreUnavailable(o.err, 'injected EIO');
  }
  const failed = h.store.writes.filter((w) => w.failed);
  assert.equal(failed.length, 1, 'one batch failed; the commands behind it were rejected without a write');
  assert.equal(failed[0]?.keys.filter((k) => k.startsWith('l!')).length, 2, 'the failed batch held the two first commands');
  assert.ok(h.core.problem, 'the core reports the write problem');
  assert.deepEqual(committedAfter, [], 'no commit listener ran for a failed command');

  // The views are reloaded to what is on disk.
  await h.core.ready();
  assert.ok(h.reloads.length >= 1, 'the observer saw a reload');
  assert.deepEqual(getDevice(h.core, 'd1').values, { base: 1, keep: 'yes' });
  assert.equal(h.core.state.seq, seqBefore);
  assert.equal(h.core.state.versions.get('d1'), versionBefore);
  assert.deepEqual(await logEntries(h.store, seqBefore + 1, seqBefore + 10), [], 'nothing of the failed batch is in the log');

  // Writes work again once the store takes them.
  h.store.failWrites = null;
  const ok = await setValues(h.core, ctx, { device: 'd1' }, { later: 'y' }, false);
  assert.equal(ok.seq, seqBefore + 1);
  assert.equal(h.core.problem, null, 'a durable batch clears the problem');
  assert.deepEqual(getDevice(h.core, 'd1').values, { base: 1, keep: 'yes', later: 'y' });

  await closeHarness(h);
  const again = await openHarness(h.dir);
  assert.deepEqual(getDevice(again.core, 'd1').values, { base: 1, keep: 'yes', later: 'y' });
  assert.equal(again.core.state.seq, seqBefore + 1);
  await closeHarness(again);
});

test('committer - once a command is rejected, reads no longer show its change', async () => {
  const h = await openHarness();
  await addDevice(h.core, ctx, { id: 'd1' });
  await setValues(h.core, ctx, { device: 'd1' }, { a: 1 }, false);
  const versionBefore = h.core.state.versions.get('d1');
  h.store.failWrites = new Error('injected EIO');
  const o = await settle(setValues(h.core, ctx, { device: 'd1' }, { a: 2, b: 3 }, false));
  assert.ok('err' in o);
  assertStoreUnavailable(o.err, 'nothing of this change was kept');
  // The caller was told nothing was kept: a query made now must not show the change.
  assert.deepEqual(getDevice(h.core, 'd1').values, { a: 1 }, 'a read right after the rejection shows the refused values');
  assert.equal(h.core.state.versions.get('d1'), versionBefore);
  h.store.failWrites = null;
  await h.core.ready();
  await closeHarness(h);
});

test('committer - a failure with a single command rejects it and later commands succeed', async () => {
  const h = await openHarness();
  await addDevice(h.core, ctx, { id: 'd1' });
  h.store.failWrites = new Error('injected ENOSPC');
  const o = await settle(setValues(h.core, ctx, { device: 'd1' }, { a: 1 }, false));
  assert.ok('err' in o);
  assertStoreUnavailable(o.err, 'injected ENOSPC');
  // A command issued while the reload may still run waits for it, then validates against disk state.
  h.store.failWrites = null;
  const r = await setValues(h.core, ctx, { device: 'd1' }, { a: 2 }, false);
  assert.deepEqual(r.events.flatMap((e) => (e.type === 'values.changed' ? e.data.changes : [])), [{ key: 'a', to: 2 }], 'the change is computed against the disk state (no a=1)');
  assert.deepEqual(getDevice(h.core, 'd1').values, { a: 2 });
  await closeHarness(h);
});

test('committer - commands are refused while the views cannot be read back, and accepted once they can', async () => {
  const h = await openHarness();
  await addDevice(h.core, ctx, { id: 'd1' });
  h.store.failWrites = new Error('injected write failure');
  h.store.failReads = new Error('injected read failure');
  const first = await settle(setValues(h.core, ctx, { device: 'd1' }, { a: 1 }, false));
  assert.ok('err' in first);
  assertStoreUnavailable(first.err, 'injected write failure');

  // The reload failed too: the next command is refused rather than validated against unknown state.
  h.store.failWrites = null;
  const writesBefore = h.store.writes.length;
  const second = await settle(setValues(h.core, ctx, { device: 'd1' }, { a: 2 }, false));
  assert.ok('err' in second);
  assertStoreUnavailable(second.err, 'injected read failure');
  assert.ok(h.core.problem);
  assert.equal(h.store.writes.length, writesBefore, 'the refused command never reached the store');

  h.store.failReads = null;
  const third = await setValues(h.core, ctx, { device: 'd1' }, { a: 3 }, false);
  assert.notEqual(third.seq, null);
  assert.deepEqual(getDevice(h.core, 'd1').values, { a: 3 });
  assert.equal(h.core.problem, null);
  await closeHarness(h);
});
