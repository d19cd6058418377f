import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSnapshot } from '../protocol/snapshot.ts';
import type { ConfigValues, Snapshot } from '../protocol/snapshot.ts';
import { applySnapshotFile, prepareFile, restoreFile, verifySnapshotHash } from './apply.ts';
import { ApplyError, ExecError, SnapshotIntegrityError, StateError, StateLockedError } from './errors.ts';
import { runHook } from './exec.ts';
import { StateStore } from './state.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'henge-agent-apply-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const INC = new Uint8Array(8).fill(7);
function snap(version: number, values: ConfigValues): { snapshot: Snapshot; bytes: Uint8Array } {
  return buildSnapshot(version, values, INC);
}

test('apply writes the file atomically, leaves no temp file, and returns the file it replaced', async () => {
  const dir = await tempDir();
  const out = join(dir, 'config.json');
  const first = await applySnapshotFile(out, 'json', snap(1, { a: 1 }).snapshot);
  assert.equal(first.previous, null);
  assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), { a: 1 });
  await chmod(out, 0o640);
  const second = await applySnapshotFile(out, 'json', snap(2, { a: 2, b: 'x' }).snapshot);
  assert.deepEqual(JSON.parse(second.previous?.toString() ?? ''), { a: 1 });
  assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), { a: 2, b: 'x' });
  assert.equal((await stat(out)).mode & 0o777, 0o640, 'the file keeps its mode');
  assert.deepEqual(await readdir(dir), ['config.json'], 'no temp file left');
  await restoreFile(out, second.previous);
  assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), { a: 1 });
  await restoreFile(out, null);
  assert.deepEqual(await readdir(dir), [], 'restoring "no previous file" removes it');
});

test('a write that cannot happen is an ApplyError and leaves what was there', async () => {
  const dir = await tempDir();
  const out = join(dir, 'missing-folder', 'config.json');
  await assert.rejects(applySnapshotFile(out, 'json', snap(1, { a: 1 }).snapshot), (e: unknown) => e instanceof ApplyError && e.code === 'HENGE_E_APPLY');
  // --out names a folder: the rename fails, the folder stays, the temp file is removed.
  const taken = join(dir, 'taken');
  await mkdir(taken);
  await assert.rejects(applySnapshotFile(taken, 'json', snap(1, { a: 1 }).snapshot), ApplyError);
  assert.deepEqual((await readdir(dir)).sort(), ['taken']);
});

test('read-back verification: the snapshot hash for JSON/YAML, the bytes for every format', () => {
  const { snapshot } = snap(3, { mode: 'heat', setpoint: 21.5, n: 7, on: false });
  for (const format of ['json', 'yaml', 'env'] as const) {
    const f = prepareFile(format, snapshot);
    f.verify(f.bytes);
    const torn = f.bytes.subarray(0, f.bytes.length - 2);
    assert.throws(() => f.verify(torn), ApplyError, `${format}: a torn file is caught`);
  }
  // A snapshot whose values do not hash to its hash.
  const lying: Snapshot = { ...snapshot, values: { ...snapshot.values, mode: 'cool' } };
  assert.throws(() => verifySnapshotHash(lying), (e: unknown) => e instanceof SnapshotIntegrityError && e.code === 'HENGE_E_SNAPSHOT_INTEGRITY');
  verifySnapshotHash(snapshot);
  // A file that renders like the snapshot but reads back to other values fails the hash check.
  const f = prepareFile('json', lying);
  assert.throws(() => f.verify(f.bytes), /hashes to/);
});

test('--exec: env, success, exit code and stderr tail, timeout', async () => {
  const env = { file: '/tmp/x.json', version: 42, device: 'dev-1' };
  const ok = await runHook('echo "$HENGE_DEVICE $HENGE_CONFIG_VERSION $HENGE_CONFIG_FILE"', env, 5000);
  assert.equal(ok.stdoutTail.trim(), 'dev-1 42 /tmp/x.json');
  await assert.rejects(runHook('echo one >&2; echo two >&2; exit 3', env, 5000), (e: unknown) => {
    assert.ok(e instanceof ExecError);
    assert.equal(e.code, 'HENGE_E_EXEC_FAILED');
    assert.equal(e.exitCode, 3);
    assert.equal(e.stderrTail, 'one\ntwo\n');
    assert.match(e.message, /exited with 3/);
    return true;
  });
  const started = Date.now();
  await assert.rejects(runHook('sleep 30', env, 300), (e: unknown) => e instanceof ExecError && e.exitCode === null && /timed out/.test(e.message));
  assert.ok(Date.now() - started < 5000, 'the timed-out command was killed');
});

test('state store: round trip, damage detection, one agent per folder', async () => {
  const dir = join(await tempDir(), 'state');
  const store = new StateStore(dir, 'dev-1');
  await store.open();
  assert.deepEqual(await store.load(), { applied: null, hubId: null });
  const { snapshot, bytes } = snap(9, { k: 'v' });
  await store.save({ hubId: 'hub-a', applied: { bytes, snapshot, acked: true, appliedAt: 123 } });
  const loaded = await store.load();
  assert.equal(loaded.hubId, 'hub-a');
  assert.equal(loaded.applied?.snapshot.version, 9);
  assert.deepEqual(loaded.applied?.snapshot.values, { k: 'v' });
  assert.ok(loaded.applied && Buffer.from(loaded.applied.bytes).equals(Buffer.from(bytes)), 'the snapshot bytes as received');
  assert.equal(loaded.applied?.acked, true);

  const other = new StateStore(dir, 'dev-1');
  await assert.rejects(other.open(), (e: unknown) => e instanceof StateLockedError && e.code === 'HENGE_E_STATE_LOCKED');
  await store.close();
  await other.open();
  await other.close();

  await assert.rejects(new StateStore(dir, 'dev-2').load(), /belongs to device dev-1/);
  const doc = JSON.parse(await readFile(store.file, 'utf8')) as { applied: { version: number } };
  doc.applied.version = 10;
  await writeFile(store.file, JSON.stringify(doc));
  await assert.rejects(store.load(), (e: unknown) => e instanceof StateError && e.code === 'HENGE_E_STATE');
  await writeFile(store.file, '{"format": 1, "device": "dev-1", "applied": {"snapshot": "AAAA"');
  await assert.rejects(store.load(), StateError);
});

test('a stale lock of a dead process is taken over', async () => {
  const dir = join(await tempDir(), 'state');
  const store = new StateStore(dir, 'dev-1');
  await store.open();
  await store.close();
  // pid 2^22 + 1 is above Linux's pid_max limit: no such process.
  await writeFile(join(dir, 'agent.lock'), `${2 ** 22 + 1}\n`);
  await store.open();
  await store.close();
});

test('exec - a hook that leaves a background process running succeeds as soon as its shell exits', async () => {
  const env = { file: '/tmp/x.json', version: 1, device: 'dev-1' };
  const t0 = performance.now();
  const r = await runHook('sleep 3 & echo started', env, 10_000);
  assert.equal(r.stdoutTail.trim(), 'started');
  assert.ok(performance.now() - t0 < 2000, `took ${Math.round(performance.now() - t0)} ms`);
});

test('exec - a hook whose shell exits before the timeout is not failed by the timeout firing while its output is read', async () => {
  const env = { file: '/tmp/x.json', version: 1, device: 'dev-1' };
  // The background sleep holds the pipes, so the result waits for the drain (2 s here), past the 1 s timeout.
  const r = await runHook('sleep 5 & echo done', env, 1000, 2000);
  assert.equal(r.stdoutTail.trim(), 'done');
});
