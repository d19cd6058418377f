/**
 * Figures 1 and 2: durable writes/s through the HTTP API, and commit latency at that load.
 * The hub runs in one child process (hub-process.ts), the load in another (load-client.ts); this
 * process only coordinates and scrapes the hub's /metrics at the edges of the timed window.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { exited, isMessage, nextMessage, spawnTs } from '../lib/child.ts';
import { httpGet } from '../lib/http.ts';
import { fmt, progress } from '../lib/progress.ts';
import { diffHistogram, histogramQuantile, parsePromHistogram, parsePromValue, round } from '../lib/stats.ts';
import type { PromHistogram } from '../lib/stats.ts';
import { scratchDir } from './fixtures.ts';
import type { CoreLoadResult, HubStats } from './hub-process.ts';
import type { LoadConfig, LoadResult } from './load-client.ts';

export interface WritesOptions {
  readonly devices: number;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The in-process comparison run (no HTTP). */
  readonly coreMs: number;
}

export const writesOptions = (quick: boolean): WritesOptions => ({
  devices: 1000,
  concurrency: 64,
  warmupMs: quick ? 1000 : 3000,
  durationMs: quick ? 3000 : 10_000,
  coreMs: quick ? 2000 : 4000,
});

export function writesMethod(o: WritesOptions): string[] {
  return [
    `writes + commit latency (figures 1, 2): a hub (startHub, fastify, LevelDB group commit, fsync per batch) in one`,
    `  child process, seeded with ${fmt(o.devices)} devices bound to a 4-field schema; a load generator in another child process`,
    `  runs ${o.concurrency} concurrent clients over keep-alive node:http (maxSockets ${o.concurrency}), each sending`,
    `  PATCH /devices/{id}/values {"values":{"counter":k}} back to back with k always new (every request appends an event).`,
    `  ${o.warmupMs / 1000} s warm-up, then a ${o.durationMs / 1000} s window: writes/s = 2xx replies completed in the window / window.`,
    `  Client latency = send → full reply, exact percentiles. Hub commit latency = the hub's /metrics histogram`,
    `  henge_commit_latency_seconds (command queued → its batch fsynced), diffed over the window, percentiles`,
    `  interpolated inside its buckets (bounds reported). For context, the hub process then runs the same writes for`,
    `  ${o.coreMs / 1000} s as ${o.concurrency} setValues loops on its own core, no HTTP (inProcessCeiling).`,
  ];
}

const HUB_FILE = new URL('./hub-process.ts', import.meta.url).pathname;
const LOAD_FILE = new URL('./load-client.ts', import.meta.url).pathname;

interface Scrape {
  readonly stats: HubStats;
  readonly latency: PromHistogram;
  readonly batches: PromHistogram;
  readonly writesOk: number;
  readonly writesFailed: number;
}

function hubStats(hub: ChildProcess): Promise<HubStats> {
  const p = nextMessage(hub, (m) => (isMessage(m, 'stats') ? (m as unknown as HubStats) : undefined), 10_000);
  hub.send({ type: 'stats' });
  return p;
}

async function scrape(hub: ChildProcess, url: string, token: string): Promise<Scrape> {
  const [stats, metrics] = await Promise.all([hubStats(hub), httpGet(`${url}/metrics`, { authorization: `Bearer ${token}` })]);
  if (metrics.status !== 200) throw new Error(`GET /metrics answered ${metrics.status}: ${metrics.text.slice(0, 200)}`);
  const latency = parsePromHistogram(metrics.text, 'henge_commit_latency_seconds');
  const batches = parsePromHistogram(metrics.text, 'henge_commit_batch_commands');
  if (!latency || !batches) throw new Error('the hub /metrics has no henge_commit_latency_seconds or henge_commit_batch_commands');
  return {
    stats,
    latency,
    batches,
    writesOk: parsePromValue(metrics.text, 'henge_writes_total{result="ok"}'),
    writesFailed: parsePromValue(metrics.text, 'henge_writes_total{result="failed"}'),
  };
}

export async function runWrites(o: WritesOptions): Promise<{ writes: Record<string, unknown>; commitLatency: Record<string, unknown> }> {
  const dir = await scratchDir('writes');
  // BENCH_HUB_PROFILE=<file.cpuprofile> profiles the hub process during the timed window only.
  const profileFile = process.env['BENCH_HUB_PROFILE'];
  const hub = spawnTs(HUB_FILE);
  let load: ChildProcess | undefined;
  try {
    progress('writes', `starting the hub process and adding ${fmt(o.devices)} devices`);
    const readyP = nextMessage(hub, (m) => (isMessage(m, 'ready') ? m : undefined), 60_000);
    hub.send({ type: 'start', data: dir.path, devices: o.devices });
    const ready = await readyP;
    const url = String(ready['url']);
    const token = String(ready['token']);
    progress('writes', `hub at ${url} (startHub ${Number(ready['startupMs']).toFixed(0)} ms, log at seq ${String(ready['seq'])})`);

    load = spawnTs(LOAD_FILE);
    const cfg: LoadConfig = { url, token, devices: o.devices, concurrency: o.concurrency, warmupMs: o.warmupMs, durationMs: o.durationMs };
    let before: Promise<Scrape> | undefined;
    let after: Promise<Scrape> | undefined;
    const child = load;
    child.on('message', (m: unknown) => {
      if (!isMessage(m, 'window')) return;
      if (m['at'] === 'start') {
        progress('writes', `warm-up done; timed window of ${o.durationMs / 1000} s`);
        before = scrape(hub, url, token);
        if (profileFile) hub.send({ type: 'profile-start' });
      } else {
        after = scrape(hub, url, token);
        if (profileFile) {
          hub.send({ type: 'profile-stop', file: resolve(profileFile) });
          progress('writes', `hub CPU profile of the window: ${resolve(profileFile)}`);
        }
      }
    });
    const resultP = nextMessage(child, (m) => (isMessage(m, 'result') ? (m as unknown as LoadResult) : undefined), o.warmupMs + o.durationMs + 120_000);
    progress('writes', `load generator: ${o.concurrency} clients, ${o.warmupMs / 1000} s warm-up`);
    child.send({ type: 'start', ...cfg });
    const r = await resultP;
    if (!before || !after) throw new Error('the load generator did not report its window');
    const [a, b] = await Promise.all([before, after]);
    progress('writes', `${fmt(r.perSecond)} writes/s, ${r.errors} errors`);

    // For context: the same writes without HTTP, from inside the hub process.
    progress('writes', `in-process ceiling: ${o.concurrency} setValues loops in the hub process for ${o.coreMs / 1000} s, no HTTP`);
    const coreP = nextMessage(hub, (m) => (isMessage(m, 'core-load') ? (m as unknown as CoreLoadResult) : undefined), o.coreMs + 60_000);
    hub.send({ type: 'core-load', ms: o.coreMs, concurrency: o.concurrency, devices: o.devices });
    const ceiling = await coreP;
    progress('writes', `in-process: ${fmt(ceiling.perSecond)} writes/s; closing the hub`);

    const lat = diffHistogram(a.latency, b.latency);
    const bat = diffHistogram(a.batches, b.batches);
    const hubWallMs = b.stats.wallMs - a.stats.wallMs;
    const hubCpuMs = (b.stats.cpuUserUs - a.stats.cpuUserUs + b.stats.cpuSystemUs - a.stats.cpuSystemUs) / 1000;
    const eluActive = b.stats.eluActiveMs - a.stats.eluActiveMs;
    const eluIdle = b.stats.eluIdleMs - a.stats.eluIdleMs;
    const q = (p: number): { ms: number; bucketMs: [number, number] } => {
      const h = histogramQuantile(lat, p);
      return { ms: round(h.value * 1000, 2), bucketMs: [round(h.bucket[0] * 1000, 2), round(h.bucket[1] * 1000, 2)] };
    };
    const p50 = q(0.5);
    const p90 = q(0.9);
    const p99 = q(0.99);
    const writes = {
      perSecond: r.perSecond,
      target: '>= 10000/s',
      met: r.perSecond >= 10_000 && r.errors === 0,
      okInWindow: r.ok,
      errors: r.errors,
      errorsWholeRun: r.errorsTotal,
      ...(r.firstErrors.length > 0 ? { firstErrors: r.firstErrors } : {}),
      windowS: round(r.windowMs / 1000, 2),
      eventsAppendedInWindow: b.stats.seq - a.stats.seq,
      fsyncedBatches: bat.count,
      commandsPerBatch: round(bat.sum / Math.max(1, bat.count), 1),
      hubCpuCores: round(hubCpuMs / hubWallMs, 2),
      hubCpuUsPerWrite: round((hubCpuMs * 1000) / Math.max(1, b.stats.seq - a.stats.seq), 1),
      hubEventLoopUtilization: round(eluActive / Math.max(1, eluActive + eluIdle), 2),
      loadClientCpuCores: r.clientCpuCores,
      hubRssMiB: round(b.stats.rssBytes / 2 ** 20, 0),
      sockets: r.sockets,
      inProcessCeiling: {
        what: `same writes, ${o.concurrency} concurrent setValues loops inside the hub process, no HTTP (after the HTTP window)`,
        perSecond: ceiling.perSecond,
        hubCpuCores: ceiling.cpuCores,
        cpuUsPerWrite: round((ceiling.cpuCores * 1e6) / Math.max(1, ceiling.perSecond), 1),
      },
      params: { devices: o.devices, concurrency: o.concurrency, warmupS: o.warmupMs / 1000, durationS: o.durationMs / 1000 },
    };
    const commitLatency = {
      clientRequestMs: { what: 'load generator: request sent → full 2xx reply (HTTP + validation + commit + fsync), exact', ...r.latencyMs },
      hubCommitMs: {
        what: 'hub /metrics henge_commit_latency_seconds: command queued → its batch fsynced; interpolated within buckets',
        count: lat.count,
        mean: round((lat.sum / Math.max(1, lat.count)) * 1000, 3),
        p50: p50.ms,
        p90: p90.ms,
        p99: p99.ms,
        p50BucketMs: p50.bucketMs,
        p90BucketMs: p90.bucketMs,
        p99BucketMs: p99.bucketMs,
        /** [upper bound ms, commands at or under it], as scraped; null = +Inf. */
        cumulativeBucketsMs: lat.buckets.map((x) => [Number.isFinite(x.le) ? round(x.le * 1000, 2) : null, x.count]),
      },
      hubWritesFailed: b.writesFailed - a.writesFailed,
    };
    return { writes, commitLatency };
  } finally {
    if (load) {
      // It exits by itself once it has sent its result; only a stuck one is ended.
      const done = await Promise.race([exited(load).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!done) {
        load.kill();
        await exited(load);
      }
    }
    if (hub.exitCode === null && hub.connected) {
      const closed = nextMessage(hub, (m) => (isMessage(m, 'closed') ? true : undefined), 30_000).catch(() => false);
      hub.send({ type: 'close' });
      await closed;
    }
    await exited(hub);
    await dir.remove();
  }
}
