/**
 * Fault scenario 2 (test/faults/scenarios/lossy.ts): 200 devices behind a relay process that drops 20 %
 * of the datagrams each way and reorders the rest; 20 changes in quick succession. The hub holds every
 * device's ack of its latest version within RFC 7252's MAX_TRANSMIT_SPAN of the last change, not counting
 * the time a device's exchanges spent waiting out transmissions the network failed (scenarios/lossy.ts
 * says why); all within MAX_TRANSMIT_WAIT plus two keepalives; and no device ever applies an older
 * snapshot after a newer one. HENGE_FAULTS_SEED replays the relay's and the devices' random choices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TRANSMIT_SPAN_MS, convergeBoundMs, lossyNetwork, lossyVerdict } from './scenarios/lossy.ts';
import { faultSeed, verdictLine } from './verdict.ts';

test('faults lossy - 200 devices, 20 % loss each way and reordering: every device converges within MAX_TRANSMIT_SPAN, the waits for lost transmissions not counted, all within MAX_TRANSMIT_WAIT + 2 keepalives; none applies an older snapshot', { timeout: 300_000 }, async (t) => {
  const keepaliveS = 15;
  const r = await lossyNetwork({ devices: 200, loss: 0.2, jitterMs: 40, changes: 20, changeGapMs: 100, keepaliveS, seed: faultSeed(), progress: (l) => t.diagnostic(l) });
  const v = lossyVerdict(r, keepaliveS);
  t.diagnostic(verdictLine('lossy', v.pass, v.figures));
  assert.ok(r.relay.dropped > 0 && r.relay.reordered > 0, 'the relay dropped and reordered datagrams');
  assert.equal(r.olderAfterNewer, 0, 'no device applied an older snapshot after a newer one');
  assert.equal(r.converged, r.devices, 'every device acked its latest version');
  assert.equal(r.fleetConverged, r.devices, 'the hub shows every device converged');
  assert.deepEqual(
    v.unexcused.map(({ device, ms, lossWaitMs }) => ({ device, ms, lossWaitMs })),
    [],
    `devices past MAX_TRANSMIT_SPAN (${MAX_TRANSMIT_SPAN_MS} ms) even with the waits for lost transmissions taken off (their datagrams are in the diagnostics above)`,
  );
  const slowest = Math.max(0, ...r.convergeMs);
  assert.ok(slowest <= convergeBoundMs(keepaliveS), `the slowest device took ${slowest} ms after the last change (bound ${convergeBoundMs(keepaliveS)} ms)`);
});
