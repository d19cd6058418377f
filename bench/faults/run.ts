/**
 * `npm run bench:faults [-- --only crash,lossy,storm,hostile,disk] [--seed N]`: the figures of the fault
 * scenarios (issue "Faults and hostile input"), from the same code the test/faults suite asserts on
 * (test/faults/scenarios/). Prints the method, a verdict line per scenario and one JSON line at the end,
 * also written to bench/results/faults.json. The admin-input scenario (property tests) reports its
 * figures in its test's verdict (`npm run test:faults`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round, summarize } from '../lib/stats.ts';
import { crashDurability } from '../../test/faults/scenarios/crash.ts';
import { fullDisk } from '../../test/faults/scenarios/disk.ts';
import { MAX_TRANSMIT_SPAN_MS, MAX_TRANSMIT_WAIT_MS, lossyNetwork, lossyVerdict } from '../../test/faults/scenarios/lossy.ts';
import { reconnectStorm, stormMissing } from '../../test/faults/scenarios/storm.ts';
import { hostileDatagrams } from '../../test/faults/scenarios/hostile.ts';
import { mountnsMissing } from '../../test/helpers/mountns.ts';
import { faultSeed, verdictLine } from '../../test/faults/verdict.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const ALL = ['crash', 'lossy', 'storm', 'hostile', 'disk'] as const;
type Scenario = (typeof ALL)[number];

const line = (s: string): void => void process.stdout.write(`${s}\n`);
const progress = (name: string) => (s: string): void => void process.stderr.write(`[${name}] ${s}\n`);
const mib = (b: number): number => round(b / 1024 / 1024, 1);

function parseArgs(): { only: readonly Scenario[]; seed: number } {
  const argv = process.argv.slice(2);
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (argv.includes('--help')) {
    line('usage: npm run bench:faults -- [--only crash,lossy,storm,hostile,disk] [--seed N]');
    process.exit(0);
  }
  const only = (value('--only') ?? ALL.join(',')).split(',').filter((s) => s !== '');
  for (const s of only) if (!(ALL as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}: one of ${ALL.join(', ')}`);
  const seed = value('--seed');
  if (seed !== undefined && !/^\d+$/.test(seed)) throw new Error('--seed takes a whole number');
  return { only: only as Scenario[], seed: seed !== undefined ? Number(seed) : faultSeed() };
}

async function main(): Promise<void> {
  const { only, seed } = parseArgs();
  line(`henge bench:faults  (${new Date().toISOString()}, seed ${seed})`);
  line('method (test/faults/scenarios/*.ts; the same code test/faults asserts on):');
  line('  crash: a hub process, 64 API clients writing (device adds, two-key PATCHes), SIGKILL after 50-1200 ms, 20 rounds;');
  line('         henge hub --verify, restart, every 2xx write read back and compared byte for byte.');
  line(`  lossy: 200 simulated devices through a relay process dropping 20 % each way and delaying 0-40 ms (reordering);`);
  line(`         20 group changes 100 ms apart; last change → the hub records each device's ack of its latest version`);
  line(`         (RFC 7252: MAX_TRANSMIT_SPAN ${MAX_TRANSMIT_SPAN_MS} ms, MAX_TRANSMIT_WAIT ${MAX_TRANSMIT_WAIT_MS} ms); every device within the span,`);
  line(`         not counting the time a device's exchanges waited out transmissions the network failed (it, or its answer, dropped):`);
  line('         a device later than the span only by those waits is late, excused.');
  line('  storm: 10,000 simulated devices (plain CoAP, keepalive 10 s) observing a hub process; SIGKILL, restart on the same port,');
  line('         a group change; restarted API → the last device acked it. Peak RSS = the restarted hub\'s VmHWM.');
  line('  hostile: 100,000 datagrams at ~5,000/s (80 % CoAP of 12 hostile kinds, 20 % DTLS records) at a hub process while a');
  line('         henge agent gets a change a second on the same port; change → converged; hub RSS at 30 % sent vs at the end.');
  line('  disk:  the data folder on a 3 MiB tmpfs in a private mount namespace; 8 writers until ENOSPC; reads; grow to 64 MiB;');
  line('         time to the first accepted write; kill -9, --verify, restart; read-only remount → the start refused.');
  const results: Record<string, unknown> = {};
  for (const name of only) {
    const t0 = performance.now();
    if (name === 'crash') {
      const r = await crashDurability({ rounds: 20, clients: 64, writesPerClient: 120, killAfterMs: [50, 1200], seed, progress: progress(name) });
      const f = { rounds: r.rounds, clients: r.clients, ackedWrites: r.ackedWrites, ackedPatches: r.ackedPatches, killedMidPatch: r.roundsKilledMidPatch, lost: r.lost, altered: r.altered, torn: r.torn, unanswered: r.unansweredWrites, unansweredKept: r.unansweredPresent, verifyClean: r.verifyClean, restartMsP50: summarize(r.restartMs, 0).p50, restartMsMax: summarize(r.restartMs, 0).max, writesPerSecondP50: summarize(r.writesPerSecond, 0).p50 };
      results[name] = f;
      line(verdictLine(name, r.lost === 0 && r.altered === 0 && r.torn === 0 && r.verifyClean === r.rounds, f));
    } else if (name === 'lossy') {
      const r = await lossyNetwork({ devices: 200, loss: 0.2, jitterMs: 40, changes: 20, changeGapMs: 100, keepaliveS: 15, seed, progress: progress(name) });
      const v = lossyVerdict(r, 15);
      results[name] = v.figures;
      line(verdictLine(name, v.pass, v.figures));
    } else if (name === 'storm') {
      const missing = stormMissing(10_000);
      if (missing) throw new Error(missing);
      const r = await reconnectStorm({ devices: 10_000, keepaliveS: 10, progress: progress(name) });
      const f = { devices: r.devices, keepaliveS: r.keepaliveS, restartMs: r.restartMs, timeTo100PercentMs: r.convergedMs, converged: r.converged, hubPeakRssMiB: mib(r.hubPeakRssBytes), hubRssIdleMiB: mib(r.hubRssIdleBytes), hubRssEndMiB: mib(r.hubRssEndBytes), registrations: r.registrations, retransmissions: r.retransmissions };
      results[name] = f;
      line(verdictLine(name, r.converged === r.devices, f));
    } else if (name === 'hostile') {
      const r = await hostileDatagrams({ datagrams: 100_000, dtlsShare: 0.2, rate: 5_000, seed, firmware: null, progress: progress(name) });
      const s = summarize(r.convergeMs, 0);
      const m = (k: string): number => r.metrics[`henge_${k}`] ?? 0;
      const rssChangePct = round(((r.rssEndBytes - r.rssBaselineBytes) / r.rssBaselineBytes) * 100, 1);
      const f = { sentCoap: r.sentCoap, sentDtls: r.sentDtls, hubAlive: r.hubAlive, changes: r.changes, missed: r.missedChanges, convergeMsP50: s.p50, convergeMsMax: s.max, rssBaselineMiB: mib(r.rssBaselineBytes), rssEndMiB: mib(r.rssEndBytes), rssPeakMiB: mib(r.rssPeakBytes), rssChangePct, malformed: m('coap_malformed'), badRequests: m('coap_bad_requests'), notFound: m('coap_not_found'), ignored: m('coap_ignored'), requestErrors: m('coap_request_errors'), dtlsInvalid: m('dtls_datagrams_invalid'), dtlsDropped: m('dtls_datagrams_dropped'), dtlsHelloVerify: m('dtls_hello_verify_requests'), uncounted: r.uncounted.length };
      results[name] = f;
      line(verdictLine(name, r.hubAlive && r.uncounted.length === 0 && r.missedChanges === 0 && rssChangePct <= 10, f));
    } else {
      const missing = await mountnsMissing();
      if (missing) throw new Error(missing);
      const r = await fullDisk({ clients: 8, smallSize: '3m', bigSize: '64m', seed, progress: progress(name) });
      const c = [r.checks.live, r.checks.afterKill, r.checks.afterReadOnly];
      const f = { ackedWrites: r.ackedWrites, refused503: r.refusedWrites, wrongRefusals: r.wrongRefusals, readsWhileFull: `${r.readsOk}/${r.readsWhileFull}`, recoveryMs: r.recoveryMs, lost: c.reduce((a, x) => a + x.lost, 0), refusedKept: c.reduce((a, x) => a + x.refusedKept, 0), verifyExit: String(r.verifyExit), readOnlyStartExit: String(r.readOnlyExit) };
      results[name] = f;
      line(verdictLine(name, f.lost === 0 && f.refusedKept === 0 && r.wrongRefusals === 0 && r.verifyExit === 0 && r.readOnlyExit === 6, f));
    }
    progress(name)(`done in ${round((performance.now() - t0) / 1000, 1)} s`);
  }
  const out = { bench: 'faults', time: new Date().toISOString(), seed, loadAvgAtEnd: loadavg().map((x) => round(x, 2)), results };
  const file = join(ROOT, 'bench', 'results', 'faults.json');
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(file, `${JSON.stringify(out)}\n`);
  line(`(also written to ${file})`);
  line(JSON.stringify(out));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:faults failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
