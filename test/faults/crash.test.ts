/**
 * Fault scenario 1 (test/faults/scenarios/crash.ts): kill -9 the hub while 64 clients write, 20 times at
 * random moments; every 2xx write survives byte for byte, no write is torn, `--verify` is clean.
 * HENGE_FAULTS_SEED=<n> replays the kill points and values of a run (the seed is in the verdict).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crashDurability } from './scenarios/crash.ts';
import { faultSeed, verdictLine } from './verdict.ts';
import { summarize } from '../../bench/lib/stats.ts';

test('faults crash - kill -9 during 64 concurrent writers, 20 times: 0 acknowledged writes lost, none torn, --verify clean', { timeout: 600_000 }, async (t) => {
  const r = await crashDurability({ rounds: 20, clients: 64, writesPerClient: 120, killAfterMs: [50, 1200], seed: faultSeed(), progress: (l) => t.diagnostic(l) });
  const pass = r.lost === 0 && r.altered === 0 && r.torn === 0 && r.verifyClean === r.rounds && r.unexpectedStatus === 0;
  t.diagnostic(
    verdictLine('crash', pass, {
      seed: r.seed,
      rounds: r.rounds,
      clients: r.clients,
      ackedWrites: r.ackedWrites,
      ackedPatches: r.ackedPatches,
      killedMidPatch: `${r.roundsKilledMidPatch}/${r.rounds}`,
      lost: r.lost,
      altered: r.altered,
      torn: r.torn,
      unanswered: r.unansweredWrites,
      unansweredKept: r.unansweredPresent,
      verifyClean: `${r.verifyClean}/${r.rounds}`,
      restartMsP50: summarize(r.restartMs, 0).p50,
      restartMsMax: summarize(r.restartMs, 0).max,
      writesPerSecondP50: summarize(r.writesPerSecond, 0).p50,
    }),
  );
  assert.deepEqual(r.problems, [], `seed ${r.seed}`);
  assert.ok(pass, `seed ${r.seed}`);
  // The kills must land mid-write, or the test proves nothing: PATCHes acked, and PATCHes in flight at most kills.
  assert.ok(r.ackedPatches > r.rounds * r.clients, `only ${r.ackedPatches} PATCHes acked in ${r.rounds} rounds`);
  assert.ok(r.roundsKilledMidPatch >= r.rounds / 2, `a PATCH was in flight at only ${r.roundsKilledMidPatch} of ${r.rounds} kills`);
});
