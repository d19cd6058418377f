/**
 * Fault scenario 3 (test/faults/scenarios/storm.ts): 10,000 simulated devices, the hub killed with
 * SIGKILL and restarted; every device re-registers and acks the change made after the restart. The
 * verdict gives the time to 100 % and the hub's peak memory. HENGE_STORM_DEVICES sets the count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconnectStorm, stormMissing } from './scenarios/storm.ts';
import { verdictLine } from './verdict.ts';

const DEVICES = Number(process.env['HENGE_STORM_DEVICES'] ?? 10_000);
const KEEPALIVE_S = 10;

test(`faults storm - ${DEVICES} devices: after kill -9 and a restart every device re-registers and converges`, { timeout: 600_000 }, async (t) => {
  const missing = stormMissing(DEVICES);
  if (missing) {
    if (process.env['CI'] === 'true') assert.fail(`${missing} (CI=true: this test must run)`);
    return t.skip(missing);
  }
  const r = await reconnectStorm({ devices: DEVICES, keepaliveS: KEEPALIVE_S, progress: (l) => t.diagnostic(l) });
  const mib = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
  const pass = r.converged === r.devices && r.fleetConverged === r.devices && r.fleetOnline === r.devices;
  t.diagnostic(
    verdictLine('storm', pass, {
      devices: r.devices,
      keepaliveS: r.keepaliveS,
      restartMs: r.restartMs,
      timeTo100PercentMs: r.convergedMs,
      converged: r.converged,
      hubPeakRssMiB: mib(r.hubPeakRssBytes),
      hubRssIdleMiB: mib(r.hubRssIdleBytes),
      hubRssEndMiB: mib(r.hubRssEndBytes),
      registrations: r.registrations,
      retransmissions: r.retransmissions,
    }),
  );
  assert.equal(r.converged, r.devices, 'every device acked the change');
  assert.equal(r.fleetConverged, r.devices, 'the hub shows every device converged');
  assert.equal(r.fleetOnline, r.devices, 'the hub shows every device online');
  // Devices re-register when Max-Age runs out: all within about one keepalive of the restart.
  assert.ok(r.convergedMs < (r.keepaliveS + 20) * 1000, `${r.convergedMs} ms to converge`);
});
