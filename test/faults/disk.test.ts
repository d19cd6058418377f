/**
 * Fault scenario 6 (test/faults/scenarios/disk.ts): a full disk, space returning, and a read-only data
 * folder, on a real tmpfs in a private mount namespace. Writes fail with 503 and the reason; reads go on;
 * the hub recovers without a restart once space returns; nothing acknowledged is lost, nothing refused is
 * kept, and `--verify` is clean; a read-only data folder stops the start with exit 6 and the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mountnsMissing } from '../helpers/mountns.ts';
import { skipOrFail } from '../helpers/netns.ts';
import { fullDisk } from './scenarios/disk.ts';
import { faultSeed, verdictLine } from './verdict.ts';

test('faults disk - a full disk answers 503 with the reason, reads go on, writes resume when space returns; a read-only folder stops the start; nothing lost or corrupt', { timeout: 300_000 }, async (t) => {
  const missing = await mountnsMissing();
  if (missing) return skipOrFail(t, missing);
  const r = await fullDisk({ clients: 8, smallSize: '3m', bigSize: '64m', seed: faultSeed(), progress: (l) => t.diagnostic(l) });
  const { live, afterKill, afterReadOnly } = r.checks;
  const clean = (c: typeof live): boolean => c.lost === 0 && c.altered === 0 && c.torn === 0 && c.refusedKept === 0;
  const pass =
    r.refusedWrites > 0 && r.wrongRefusals === 0 && r.readsOk === r.readsWhileFull && r.readyzWhileFull === 503 && Number.isFinite(r.recoveryMs) &&
    r.readyzAfter === 200 && clean(live) && clean(afterKill) && clean(afterReadOnly) && r.verifyExit === 0 && r.readOnlyExit === 6;
  t.diagnostic(
    verdictLine('disk', pass, {
      seed: r.seed,
      ackedWrites: r.ackedWrites,
      refused503: r.refusedWrites,
      wrongRefusals: r.wrongRefusals,
      readsWhileFull: `${r.readsOk}/${r.readsWhileFull}`,
      readyzFullThenBack: `${r.readyzWhileFull}/${r.readyzAfter}`,
      recoveryMs: r.recoveryMs,
      lost: live.lost + afterKill.lost + afterReadOnly.lost,
      refusedKept: live.refusedKept + afterKill.refusedKept + afterReadOnly.refusedKept,
      verifyExit: String(r.verifyExit),
      readOnlyStartExit: String(r.readOnlyExit),
    }),
  );
  assert.deepEqual([...live.problems, ...afterKill.problems, ...afterReadOnly.problems], []);
  assert.ok(r.ackedWrites > 10 && r.refusedWrites > 0, `the disk never filled: ${r.ackedWrites} acked, ${r.refusedWrites} refused`);
  assert.equal(r.wrongRefusals, 0, 'every refusal is 503 HENGE_E_STORE_UNAVAILABLE naming "No space left on device"');
  assert.equal(r.readsOk, r.readsWhileFull, 'reads go on while the disk is full');
  assert.equal(r.readyzWhileFull, 503);
  assert.ok(Number.isFinite(r.recoveryMs), 'writes resume once space returns, without a restart');
  assert.equal(r.readyzAfter, 200);
  assert.equal(r.verifyExit, 0, 'henge hub --verify after kill -9');
  assert.equal(r.readOnlyExit, 6, r.readOnlyMessage);
  assert.match(r.readOnlyMessage, /Read-only file system/);
  assert.ok(pass);
});
