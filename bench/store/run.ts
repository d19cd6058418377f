/**
 * `npm run bench:store`: the hub's store and command path against DESIGN.md's performance budget.
 *
 *   writes     durable writes/s through the HTTP API, 64 clients, load in a separate process (figure 1)
 *              and commit latency at that load, client side and hub side (figure 2)
 *   startup    hub start-up with a 1,000,000-event log, and proof that it does not replay it (figure 3)
 *   recompute  snapshots of 5,000 devices after one group value change (figure 4)
 *
 * Flags: --quick (smaller and shorter: smoke test), --only <part>, --rebuild (rebuild the cached log).
 * Prints the machine and the method first, progress on stderr, a summary, and last one JSON line with
 * every result, also written to bench/results/store.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../lib/child.ts';
import { fsyncProbe } from '../lib/disk.ts';
import { machineInfo } from '../lib/machine.ts';
import { progress } from '../lib/progress.ts';
import { round } from '../lib/stats.ts';
import { DATA_ROOT } from './fixtures.ts';
import { recomputeMethod, recomputeOptions, runRecompute } from './recompute.ts';
import { runStartup, startupMethod, startupOptions } from './startup.ts';
import { runWrites, writesMethod, writesOptions } from './writes.ts';

const PARTS = ['writes', 'recompute', 'startup'] as const;
type Part = (typeof PARTS)[number];
const isPart = (s: string): s is Part => (PARTS as readonly string[]).includes(s);

const USAGE = `usage: npm run bench:store -- [--quick] [--only ${PARTS.join('|')}] [--rebuild]
  --quick    smaller, shorter run (smoke test): 3 s write window, 100,000-event log, 20 recomputes
  --only     run one part
  --rebuild  rebuild the cached data folder of the start-up part (bench/.data/)`;

function parse(): { quick: boolean; only: Part | undefined; rebuild: boolean } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      rebuild: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
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
  return { quick: values.quick ?? false, only: values.only as Part | undefined, rebuild: values.rebuild ?? false };
}

const line = (s = ''): void => void process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  const flags = parse();
  const parts = PARTS.filter((p) => flags.only === undefined || flags.only === p);
  await mkdir(DATA_ROOT, { recursive: true });
  const machine = machineInfo(DATA_ROOT);
  const fsyncBefore = fsyncProbe(DATA_ROOT);
  const wo = writesOptions(flags.quick);
  const so = startupOptions(flags.quick, flags.rebuild);
  const ro = recomputeOptions(flags.quick);

  line(`henge bench:store${flags.quick ? ' --quick' : ''}${flags.only ? ` --only ${flags.only}` : ''}  (${new Date().toISOString()})`);
  line(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.totalMemoryGiB} GiB, node ${machine.node}, ${machine.os}`);
  line(`data:    ${DATA_ROOT} on ${machine.dataFs}; fdatasync of 4 KiB now: p50 ${fsyncBefore.p50} ms, p90 ${fsyncBefore.p90} ms`);
  line(`load:    ${machine.loadAvgAtStart.join(' ')} (1/5/15 min) before starting; other work on the machine makes figures noisy`);
  line('method:');
  if (parts.includes('writes')) for (const l of writesMethod(wo)) line(`  ${l}`);
  if (parts.includes('recompute')) for (const l of recomputeMethod(ro)) line(`  ${l}`);
  if (parts.includes('startup')) for (const l of startupMethod(so)) line(`  ${l}`);
  line();

  const t0 = performance.now();
  const results: Record<string, unknown> = {};
  for (const part of parts) {
    progress(part, 'start');
    const p0 = performance.now();
    if (part === 'writes') Object.assign(results, await runWrites(wo));
    else if (part === 'recompute') results['recompute'] = await runRecompute(ro);
    else results['startup'] = await runStartup(so);
    progress(part, `done in ${((performance.now() - p0) / 1000).toFixed(1)} s`);
  }
  const fsyncAfter = fsyncProbe(DATA_ROOT);
  const out = {
    bench: 'store',
    time: new Date().toISOString(),
    quick: flags.quick,
    parts,
    machine: { ...machine, loadAvgAtEnd: loadavg().map((v) => round(v, 2)), fsyncBefore, fsyncAfter },
    durationS: round((performance.now() - t0) / 1000, 1),
    results,
  };

  line('summary:');
  for (const l of summary(results)) line(`  ${l}`);
  const json = JSON.stringify(out);
  const file = resolve(REPO_ROOT, 'bench/results/store.json');
  await mkdir(resolve(REPO_ROOT, 'bench/results'), { recursive: true });
  await writeFile(file, `${json}\n`);
  line(`(also written to ${file})`);
  line(json);
}

/** One line per figure, for people; the JSON line carries everything. */
function summary(r: Record<string, unknown>): string[] {
  const out: string[] = [];
  const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((x, k) => (x !== null && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), o);
  const mark = (met: unknown): string => (met === true ? 'meets target' : met === null ? 'not decided by a --quick run' : 'MISSES target');
  if (r['writes']) {
    out.push(
      `1. durable writes/s over HTTP, ${String(get(r['writes'], 'params', 'concurrency'))} clients: ${String(get(r['writes'], 'perSecond'))}/s, ` +
        `${String(get(r['writes'], 'errors'))} errors (target >= 10,000/s: ${mark(get(r['writes'], 'met'))})`,
    );
    out.push(
      `2. latency at that load: client request p50 ${String(get(r['commitLatency'], 'clientRequestMs', 'p50'))} / p99 ${String(get(r['commitLatency'], 'clientRequestMs', 'p99'))} ms; ` +
        `hub commit (queued → fsync, /metrics) p50 ~${String(get(r['commitLatency'], 'hubCommitMs', 'p50'))} / p99 ~${String(get(r['commitLatency'], 'hubCommitMs', 'p99'))} ms`,
    );
  }
  if (r['startup']) {
    out.push(
      `3. start-up with a ${String(get(r['startup'], 'logEvents'))}-event log: startHub → /healthz ${String(get(r['startup'], 'startHubToHealthzMs', 'median'))} ms median ` +
        `(HubCore.open ${String(get(r['startup'], 'coreOpenMs', 'median'))} ms, log scans ${String(get(r['startup'], 'logScans'))}; ` +
        `${String(get(r['startup'], 'smallLog', 'logEvents'))}-event log: ${String(get(r['startup'], 'smallLog', 'startHubToHealthzMs', 'median'))} ms) (target <= 1 s: ${mark(get(r['startup'], 'met'))})`,
    );
  }
  if (r['recompute']) {
    out.push(
      `4. recompute ${String(get(r['recompute'], 'params', 'devices'))} snapshots after a group change: p50 ${String(get(r['recompute'], 'applyPlusRefreshMs', 'p50'))} / ` +
        `p99 ${String(get(r['recompute'], 'applyPlusRefreshMs', 'p99'))} ms in memory; whole command p50 ${String(get(r['recompute'], 'setValuesCommandMs', 'p50'))} ms ` +
        `(target <= 20 ms: ${mark(get(r['recompute'], 'met'))})`,
    );
  }
  return out;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:store failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
