/**
 * Fault scenario 2 (test/faults/scenarios/lossy.ts): 200 devices behind a relay process that drops 20 %
 * of the datagrams each way and reorders the rest; 20 changes in quick succession. The hub holds every
 * device's ack of its latest version within RFC 7252's MAX_TRANSMIT_WAIT of the last change (95 % within
 * MAX_TRANSMIT_SPAN; why not all: scenarios/lossy.ts), and no device ever applies an older snapshot
 * after a newer one. HENGE_FAULTS_SEED replays the relay's and the devices' random choices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize } from '../../bench/lib/stats.ts';
import { MAX_TRANSMIT_SPAN_MS, MAX_TRANSMIT_WAIT_MS, lossyNetwork } from './scenarios/lossy.ts';
import { faultSeed, verdictLine } from './verdict.ts';

test('faults lossy - 200 devices, 20 % loss each way and reordering: the hub holds every latest ack within MAX_TRANSMIT_WAIT, none applies an older snapshot', { timeout: 300_000 }, async (t) => {
  const r = await lossyNetwork({ devices: 200, loss: 0.2, jitterMs: 40, changes: 20, changeGapMs: 100, keepaliveS: 15, seed: faultSeed(), progress: (l) => t.diagnostic(l) });
  const s = summarize(r.convergeMs, 0);
  const withinSpan = r.convergeMs.filter((ms) => ms <= MAX_TRANSMIT_SPAN_MS).length;
  const pass = r.converged === r.devices && r.fleetConverged === r.devices && s.max <= MAX_TRANSMIT_WAIT_MS && r.olderAfterNewer === 0;
  t.diagnostic(
    verdictLine('lossy', pass, {
      seed: r.seed,
      devices: r.devices,
      converged: r.converged,
      convergeMsP50: s.p50,
      convergeMsP99: s.p99,
      convergeMsMax: s.max,
      withinSpan45s: `${withinSpan}/${r.devices}`,
      deviceSawAck: r.deviceSawAck,
      olderAfterNewer: r.olderAfterNewer,
      reapplied: r.reapplied,
      staleRefused: r.staleRefused,
      dropped: r.relay.dropped,
      reordered: r.relay.reordered,
      forwarded: r.relay.forwarded,
      deviceRetransmissions: r.deviceRetransmissions,
    }),
  );
  assert.ok(r.relay.dropped > 0 && r.relay.reordered > 0, 'the relay dropped and reordered datagrams');
  assert.equal(r.olderAfterNewer, 0, 'no device applied an older snapshot after a newer one');
  assert.equal(r.converged, r.devices, 'every device acked its latest version');
  assert.equal(r.fleetConverged, r.devices, 'the hub shows every device converged');
  assert.ok(s.max <= MAX_TRANSMIT_WAIT_MS, `the slowest device took ${s.max} ms after the last change`);
  assert.ok(withinSpan >= r.devices * 0.95, `only ${withinSpan} of ${r.devices} within MAX_TRANSMIT_SPAN`);
});
