/**
 * `npm run bench:push`: the push path (CoAP Observe) against DESIGN.md's performance budget.
 *
 *   latency    a) change committed → applied and acked, 1 device, sequential changes
 *   fanout     b) one group change to N registered devices: all notified / all acked, hub CPU per
 *                 notification, hub memory per device, UDP drops, retransmissions
 *   mosquitto  c) the same fan-out through Mosquitto, and henge / Mosquitto
 *
 * The hub runs in one child process, the simulated devices (sim/) in another; this process drives the API.
 * Flags: --quick (smoke test), --only <part>. BENCH_HUB_PROFILE=<file.cpuprofile> profiles the hub over
 * the fan-outs of the largest N, BENCH_SIM_PROFILE=<file.cpuprofile> the simulator process. Prints the machine and the method first, progress on stderr, a summary,
 * and last one JSON line with every result, also written to bench/results/push.json.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../lib/child.ts';
import { fsyncProbe } from '../lib/disk.ts';
import { machineInfo } from '../lib/machine.ts';
import { fmt, progress } from '../lib/progress.ts';
import { openFileLimit } from '../lib/spawn.ts';
import { get, num } from '../lib/json.ts';
import type { Json } from '../lib/json.ts';
import { round } from '../lib/stats.ts';
import { DATA_ROOT } from '../store/fixtures.ts';
import { fanoutMethod, fanoutOptions, runFanout } from './fanout.ts';
import { latencyMethod, latencyOptions, runLatency } from './latency.ts';
import { dtlsFigures, dtlsMethod, dtlsSummary } from './dtls.ts';
import { findMosquitto, mqttMethod, mqttOptions, runMosquitto } from './mosquitto.ts';

const PARTS = ['latency', 'fanout', 'mosquitto'] as const;
type Part = (typeof PARTS)[number];
const isPart = (s: string): s is Part => (PARTS as readonly string[]).includes(s);

/** Devices re-register every keepalive; this one keeps re-registrations out of the timed windows. */
const KEEPALIVE_S = 600;

const USAGE = `usage: npm run bench:push -- [--quick] [--only ${PARTS.join('|')}] [--dtls]
  --quick    smoke test: 100 changes, fan-outs to 200 and 1,000 devices, 3 repeats
  --only     run one part
  --dtls     run latency and fan-out a second time over coaps (DTLS 1.2 PSK) and compare
  env BENCH_HUB_PROFILE=<file.cpuprofile>: CPU profile of the hub over the fan-outs of the largest N
  env BENCH_SIM_PROFILE=<file.cpuprofile>: the same for the simulated devices' process`;

function parse(): { quick: boolean; only: Part | undefined; dtls: boolean } {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, dtls: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (values.only !== undefined && !isPart(values.only)) {
    console.error(`unknown part ${values.only}\n${USAGE}`);
    process.exit(2);
  }
  return { quick: values.quick ?? false, only: values.only as Part | undefined, dtls: values.dtls ?? false };
}

const line = (s = ''): void => void process.stdout.write(`${s}\n`);

function sysctl(name: string): number | null {
  try {
    return Number(readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim());
  } catch {
    return null;
  }
}


/** Targets of DESIGN.md, checked at 5,000 devices (a --quick run decides none of them: met null). */
function verdicts(results: Json, quick: boolean): Json {
  const out: Json = {};
  const judge = (met: boolean): boolean | null => (quick ? null : met);
  if (results['latency']) {
    const p99 = num(results['latency'], 'commitToAckMs', 'p99');
    out['changeToAckP99'] = { target: '<= 5 ms', measured: p99, met: judge(p99 <= 5) };
  }
  const f = results['fanout'] as Json | undefined;
  const sizes = f ? Object.keys(f).map(Number).sort((a, b) => a - b) : [];
  const n = sizes[sizes.length - 1];
  const at = n !== undefined && f ? (f[String(n)] as Json) : undefined;
  if (at && n !== undefined) {
    const notified = num(at, 'fromCommit', 'allNotifiedMs', 'median');
    const acked = num(at, 'fromCommit', 'allAckedMs', 'median');
    const cpu = num(at, 'notifyOnly', 'hubCpuUsPerNotificationInclAck', 'median');
    const mem = num(at, 'hubMemory', 'rssPerDeviceBytes');
    const drops = num(at, 'udpRcvbufErrors', 'max');
    const retrans = num(at, 'hubRetransmissions', 'max') + num(at, 'simRetransmissions', 'max');
    out['devices'] = n;
    out['allNotified'] = { target: '<= 60 ms from the commit (median)', measured: notified, met: judge(n === 5000 && notified <= 60) };
    out['allAcked'] = { target: '<= 150 ms from the commit (median)', measured: acked, met: judge(n === 5000 && acked <= 150) };
    out['hubCpuPerNotification'] = {
      target: '<= 25 µs incl. its ACK (median of the notify-only fan-outs)',
      measured: cpu,
      allIncludedUs: num(at, 'hubCpuUsPerNotification', 'median'),
      met: judge(cpu <= 25),
    };
    out['hubMemoryPerDevice'] = { target: '<= 2048 bytes RSS', measured: mem, met: judge(mem <= 2048) };
    out['udpDrops'] = { target: '0 RcvbufErrors (max over fan-outs)', measured: drops, met: judge(drops === 0) };
    out['retransmissions'] = { target: '0 (hub + sim, max over fan-outs)', measured: retrans, met: judge(retrans === 0) };
  }
  const m = results['mosquitto'] as Json | undefined;
  const ratios: Json = {};
  for (const size of sizes) {
    const h = f?.[String(size)];
    const q = m?.[String(size)];
    if (!h || !q) continue;
    const mq = num(q, 'allReceivedMs', 'median');
    ratios[String(size)] = {
      commitToAllNotified: round(num(h, 'fromCommit', 'allNotifiedMs', 'median') / mq, 3),
      apiCallToAllNotified: round(num(h, 'fromApiCall', 'allNotifiedMs', 'median') / mq, 3),
      commitToAllAcked: round(num(h, 'fromCommit', 'allAckedMs', 'median') / mq, 3),
    };
  }
  if (Object.keys(ratios).length > 0) out['henge/mosquitto by N (medians)'] = ratios;
  const mAt = m && n !== undefined ? (m[String(n)] as Json | undefined) : undefined;
  if (at && mAt) {
    const mq = num(mAt, 'allReceivedMs', 'median');
    const ratio = num(at, 'fromCommit', 'allNotifiedMs', 'median') / mq;
    out['vsMosquitto'] = {
      target: '<= 0.35 (henge commit → all notified / Mosquitto publish → all received, medians)',
      measured: round(ratio, 3),
      fromApiCall: round(num(at, 'fromApiCall', 'allNotifiedMs', 'median') / mq, 3),
      allAckedOverAllReceived: round(num(at, 'fromCommit', 'allAckedMs', 'median') / mq, 3),
      met: judge(ratio <= 0.35),
    };
  }
  return out;
}

function summary(results: Json, v: Json): string[] {
  const out: string[] = [];
  const mark = (x: unknown): string => {
    const met = get(x, 'met');
    return met === true ? 'meets' : met === null ? 'not judged (--quick)' : 'MISSES';
  };
  const l = results['latency'];
  if (l) {
    out.push(
      `a) commit → applied and acked, 1 device: p50 ${num(l, 'commitToAckMs', 'p50')} / p99 ${num(l, 'commitToAckMs', 'p99')} ms ` +
        `(PATCH sent → acked p50 ${num(l, 'requestToAckMs', 'p50')} / p99 ${num(l, 'requestToAckMs', 'p99')} ms) [target p99 <= 5 ms: ${mark(v['changeToAckP99'])}]`,
    );
  }
  const f = results['fanout'] as Json | undefined;
  for (const [n, r] of Object.entries(f ?? {})) {
    out.push(
      `b) N=${fmt(Number(n))}: commit → all notified ${num(r, 'fromCommit', 'allNotifiedMs', 'median')} ms (max ${num(r, 'fromCommit', 'allNotifiedMs', 'max')}), ` +
        `all acked ${num(r, 'fromCommit', 'allAckedMs', 'median')} ms (max ${num(r, 'fromCommit', 'allAckedMs', 'max')}); from the API call ` +
        `${num(r, 'fromApiCall', 'allNotifiedMs', 'median')} / ${num(r, 'fromApiCall', 'allAckedMs', 'median')} ms; hub CPU per notification ` +
        `${num(r, 'notifyOnly', 'hubCpuUsPerNotificationInclAck', 'median')} µs incl. its ACK, ${num(r, 'hubCpuUsPerNotification', 'median')} µs with everything (HTTP, recompute, ack POSTs), ` +
        `${fmt(num(r, 'hubMemory', 'rssPerDeviceBytes'))} B RSS/device; RcvbufErrors max ${num(r, 'udpRcvbufErrors', 'max')}; retransmissions hub ${num(r, 'hubRetransmissions', 'max')} / sim ${num(r, 'simRetransmissions', 'max')} (max)`,
    );
  }
  for (const k of ['allNotified', 'allAcked', 'hubCpuPerNotification', 'hubMemoryPerDevice', 'udpDrops', 'retransmissions'] as const) {
    if (v[k]) out.push(`   ${k} at N=${fmt(num(v, 'devices'))}: ${String(get(v[k], 'measured'))} [target ${String(get(v[k], 'target'))}: ${mark(v[k])}]`);
  }
  const m = results['mosquitto'] as Json | undefined;
  if (m && typeof m['skipped'] === 'string') out.push(`c) Mosquitto: skipped (${m['skipped']})`);
  else if (m) {
    for (const [n, r] of Object.entries(m)) {
      if (n === 'broker') continue;
      out.push(`c) Mosquitto N=${fmt(Number(n))}: publish → all received ${num(r, 'allReceivedMs', 'median')} ms (max ${num(r, 'allReceivedMs', 'max')})`);
    }
    if (v['vsMosquitto']) {
      out.push(
        `   henge / Mosquitto at N=${fmt(num(v, 'devices'))}: ${num(v, 'vsMosquitto', 'measured')} (from henge's API call: ${num(v, 'vsMosquitto', 'fromApiCall')}; ` +
          `henge all acked / Mosquitto all received: ${num(v, 'vsMosquitto', 'allAckedOverAllReceived')}) [target <= 0.35: ${mark(v['vsMosquitto'])}]`,
      );
    }
  }
  return out;
}

async function main(): Promise<void> {
  const flags = parse();
  const parts = PARTS.filter((p) => flags.only === undefined || flags.only === p);
  await mkdir(DATA_ROOT, { recursive: true });
  const machine = machineInfo(DATA_ROOT);
  const broker = findMosquitto();
  const lo = latencyOptions(flags.quick, KEEPALIVE_S);
  const fo = fanoutOptions(flags.quick, KEEPALIVE_S, process.env['BENCH_HUB_PROFILE'], process.env['BENCH_SIM_PROFILE']);
  const mo = mqttOptions(flags.quick);
  const fsyncBefore = fsyncProbe(DATA_ROOT);
  const kernel = { rmemMax: sysctl('net.core.rmem_max'), rmemDefault: sysctl('net.core.rmem_default'), openFilesHere: openFileLimit() };

  line(`henge bench:push${flags.quick ? ' --quick' : ''}${flags.only ? ` --only ${flags.only}` : ''}${flags.dtls ? ' --dtls' : ''}  (${new Date().toISOString()})`);
  line(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.totalMemoryGiB} GiB, node ${machine.node}, ${machine.os}`);
  line(`kernel:  net.core.rmem_max ${String(kernel.rmemMax)}, rmem_default ${String(kernel.rmemDefault)}; open-file limit here ${String(kernel.openFilesHere)} (raised in the children)`);
  line(`data:    ${DATA_ROOT} on ${machine.dataFs}; fdatasync of 4 KiB now: p50 ${fsyncBefore.p50} ms, p90 ${fsyncBefore.p90} ms, max ${fsyncBefore.max} ms`);
  line(`load:    ${machine.loadAvgAtStart.join(' ')} (1/5/15 min) before starting; three processes share ${machine.cores} cores, and other work on the machine makes figures noisy`);
  line('method:');
  if (parts.includes('latency')) for (const l of latencyMethod(lo)) line(`  ${l}`);
  if (parts.includes('fanout')) for (const l of fanoutMethod(fo)) line(`  ${l}`);
  if (parts.includes('mosquitto')) for (const l of mqttMethod(mo, broker)) line(`  ${l}`);
  if (flags.dtls) for (const l of dtlsMethod()) line(`  ${l}`);
  line();

  const t0 = performance.now();
  const results: Json = {};
  for (const part of parts) {
    const p0 = performance.now();
    progress(part, 'start');
    if (part === 'latency') results['latency'] = await runLatency(lo);
    else if (part === 'fanout') results['fanout'] = await runFanout(fo);
    else if (broker) results['mosquitto'] = await runMosquitto(mo, broker);
    else {
      progress(part, 'skipped: mosquitto is not installed (Debian package `mosquitto`)');
      results['mosquitto'] = { skipped: 'mosquitto is not installed: apt-get install mosquitto (Debian package `mosquitto`)' };
    }
    progress(part, `done in ${((performance.now() - p0) / 1000).toFixed(1)} s`);
  }
  if (flags.dtls) {
    if (parts.includes('latency')) {
      progress('latency', 'again over DTLS');
      results['latencyDtls'] = await runLatency({ ...lo, secure: true });
    }
    if (parts.includes('fanout')) {
      progress('fanout', 'again over DTLS');
      results['fanoutDtls'] = await runFanout({ ...fo, secure: true });
    }
  }
  const fsyncAfter = fsyncProbe(DATA_ROOT);
  const v = verdicts(results, flags.quick);
  if (flags.dtls) v['dtls'] = dtlsFigures(results);
  const out = {
    bench: 'push',
    time: new Date().toISOString(),
    quick: flags.quick,
    parts,
    machine: { ...machine, loadAvgAtEnd: loadavg().map((x) => round(x, 2)), kernel, fsyncBefore, fsyncAfter },
    params: { keepaliveS: KEEPALIVE_S, latency: lo, fanout: fo, mosquitto: mo },
    durationS: round((performance.now() - t0) / 1000, 1),
    targets: v,
    results,
  };
  line('summary:');
  for (const l of summary(results, v)) line(`  ${l}`);
  if (flags.dtls) for (const l of dtlsSummary(v['dtls'] as Json)) line(`  ${l}`);
  const json = JSON.stringify(out);
  const file = resolve(REPO_ROOT, 'bench/results/push.json');
  await mkdir(resolve(REPO_ROOT, 'bench/results'), { recursive: true });
  await writeFile(file, `${json}\n`);
  line(`(also written to ${file})`);
  line(json);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:push failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
