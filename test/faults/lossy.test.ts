/**
 * Fault scenario 2 (test/faults/scenarios/lossy.ts): 200 devices behind a relay process that drops 20 %
 * of the datagrams each way and reorders the rest; 20 changes in quick succession. The hub holds 90 % of
 * the devices' acks of their latest version within RFC 7252's MAX_TRANSMIT_SPAN of the last change, and
 * all within MAX_TRANSMIT_WAIT plus two keepalives (why not all within the span: scenarios/lossy.ts), and
 * no device ever applies an older snapshot after a newer one. HENGE_FAULTS_SEED replays the relay's and the devices' random choices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize } from '../../bench/lib/stats.ts';
import { MAX_TRANSMIT_SPAN_MS, convergeBoundMs, lossyNetwork } from './scenarios/lossy.ts';
import { faultSeed, verdictLine } from './verdict.ts';

test('faults lossy - 200 devices, 20 % loss each way and reordering: 90 % converge within MAX_TRANSMIT_SPAN and all within MAX_TRANSMIT_WAIT + 2 keepalives; none applies an older snapshot', { timeout: 300_000 }, async (t) => {
  const keepaliveS = 15;
  const r = await lossyNetwork({ devices: 200, loss: 0.2, jitterMs: 40, changes: 20, changeGapMs: 100, keepaliveS, seed: faultSeed(), progress: (l) => t.diagnostic(l) });
  const bound = convergeBoundMs(keepaliveS);
  const s = summarize(r.convergeMs, 0);
  const withinSpan = r.convergeMs.filter((ms) => ms <= MAX_TRANSMIT_SPAN_MS).length;
  const pass = withinSpan >= r.devices * 0.9 && r.converged === r.devices && r.fleetConverged === r.devices && s.max <= bound && r.olderAfterNewer === 0;
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
  assert.ok(s.max <= bound, `the slowest device took ${s.max} ms after the last change (bound ${bound} ms)`);
  assert.ok(withinSpan >= r.devices * 0.9, `only ${withinSpan} of ${r.devices} within MAX_TRANSMIT_SPAN`);
});
