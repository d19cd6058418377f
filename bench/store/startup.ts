/**
 * Figure 3: hub start-up with a long event log. Builds (once, then cached) a data folder whose log holds
 * N events, then starts a hub on it in fresh processes and times startHub → /healthz, and HubCore.open
 * alone through a CountingStore that proves the log is never read. A small log with the same devices
 * is measured the same way: start-up must not grow with the log.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HubCore, addDevice, createToken, publishSchema, setValues } from '../../hub/domain/index.ts';
import { LevelStore } from '../../hub/store/level-store.ts';
import { exited, isMessage, nextMessage, spawnTs } from '../lib/child.ts';
import { CountingStore } from '../lib/counting-store.ts';
import { fmt, progress, throttled } from '../lib/progress.ts';
import { median, round } from '../lib/stats.ts';
import { COUNTER_SCHEMA, DATA_ROOT, deviceId } from './fixtures.ts';

export interface StartupOptions {
  readonly events: number;
  readonly smallEvents: number;
  readonly devices: number;
  readonly runs: number;
  readonly rebuild: boolean;
}

export const startupOptions = (quick: boolean, rebuild: boolean): StartupOptions => ({
  events: quick ? 100_000 : 1_000_000,
  smallEvents: 2_000,
  devices: 1000,
  runs: quick ? 3 : 5,
  rebuild,
});

export function startupMethod(o: StartupOptions): string[] {
  return [
    `start-up (figure 3): a data folder whose log holds ${fmt(o.events)} events (${fmt(o.devices)} devices, then setValues`,
    `  commands through HubCore in concurrent chunks of ${fmt(o.devices)}, so group commit batches them), built once and cached`,
    `  under bench/.data/ (--rebuild to force). Each measurement is a fresh process: ${o.runs} runs after one untimed`,
    `  warm-up start (page cache warm). "hub": performance.now() from calling startHub to GET /healthz answering 200`,
    `  (module loading timed apart). "core": HubCore.open alone, through a store wrapper that counts view entries`,
    `  read and log scans (must be 0). The same is measured on a ${fmt(o.smallEvents)}-event log with the same devices.`,
  ];
}

interface CacheMarker {
  readonly events: number;
  readonly devices: number;
  readonly buildMs: number;
  readonly builtAt: string;
  readonly node: string;
  readonly batches: number;
  readonly ops: number;
  readonly repeatedKeyOps: number;
  readonly bytes: number;
}

const MARKER = 'bench-cache.json';
const CHILD_FILE = new URL('./startup-child.ts', import.meta.url).pathname;

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = resolve(dir, entry.name);
    total += entry.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return total;
}

/** Builds a data folder whose log ends at exactly `events`, as fast as the hub's own command path allows. */
async function buildLog(dir: string, events: number, devices: number): Promise<CacheMarker> {
  const t0 = performance.now();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const store = new CountingStore(new LevelStore(resolve(dir, 'store')));
  const core = await HubCore.open(store);
  const ctx = { actor: 'bench', reason: 'build' };
  // A token, so that startHub on this folder has nothing to write.
  await createToken(core, ctx, 'admin');
  await publishSchema(core, ctx, 'bench-counter', COUNTER_SCHEMA);
  await Promise.all(Array.from({ length: devices }, (_, i) => addDevice(core, ctx, { id: deviceId(i), labels: { fleet: 'bench' }, schema: 'bench-counter' })));
  if (core.state.seq > events) throw new Error(`${events} events is fewer than the set-up takes (${core.state.seq})`);
  const report = throttled('startup');
  let counter = 0;
  let inFlight: Promise<unknown> = Promise.resolve();
  const tLoop = performance.now();
  const startSeq = core.state.seq;
  let issued = core.state.seq;
  while (issued < events) {
    const n = Math.min(devices, events - issued);
    const chunk: Array<Promise<unknown>> = [];
    for (let i = 0; i < n; i++) {
      counter++;
      chunk.push(setValues(core, ctx, { device: deviceId(i) }, { counter }, false));
    }
    issued += n;
    // Two chunks in flight: one being written while the next is validated and applied.
    await inFlight;
    inFlight = Promise.all(chunk);
    report(() => {
      const done = core.state.seq - startSeq;
      const rate = done / ((performance.now() - tLoop) / 1000);
      return `building the ${fmt(events)}-event log: ${fmt(core.state.seq)} events (${fmt(rate)}/s, about ${fmt((events - core.state.seq) / Math.max(1, rate))} s left)`;
    });
  }
  await inFlight;
  if (core.state.seq !== events) throw new Error(`built ${core.state.seq} events, wanted ${events}`);
  await core.close();
  const marker: CacheMarker = {
    events,
    devices,
    buildMs: Math.round(performance.now() - t0),
    builtAt: new Date().toISOString(),
    node: process.version,
    batches: store.batches,
    ops: store.ops,
    repeatedKeyOps: store.repeatedKeyOps,
    bytes: store.bytes,
  };
  await writeFile(resolve(dir, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  return marker;
}

/** The cached folder for this size, built when missing, incomplete or `rebuild` is set. */
async function cachedLog(events: number, devices: number, rebuild: boolean): Promise<{ dir: string; marker: CacheMarker; cached: boolean }> {
  const dir = resolve(DATA_ROOT, `log-${events}ev-${devices}dev`);
  const markerPath = resolve(dir, MARKER);
  if (!rebuild && existsSync(markerPath)) {
    const marker = JSON.parse(await readFile(markerPath, 'utf8')) as CacheMarker;
    if (marker.events === events && marker.devices === devices) {
      progress('startup', `using the cached ${fmt(events)}-event data folder ${dir} (built ${marker.builtAt} in ${round(marker.buildMs / 1000, 1)} s)`);
      return { dir, marker, cached: true };
    }
  }
  progress('startup', `building ${dir} (${fmt(events)} events); only the first run does this`);
  const marker = await buildLog(dir, events, devices);
  progress('startup', `built ${fmt(events)} events in ${round(marker.buildMs / 1000, 1)} s`);
  return { dir, marker, cached: false };
}

type StartupMessage = Record<string, unknown> & { type: 'startup' };

async function startOnce(mode: 'hub' | 'core', dir: string): Promise<StartupMessage & { processMs: number }> {
  const t0 = performance.now();
  const child = spawnTs(CHILD_FILE, [mode, dir]);
  try {
    const m = await nextMessage(child, (x) => (isMessage(x, 'startup') ? (x as StartupMessage) : undefined), 120_000);
    // processMs: spawn → result, i.e. node + tsx boot, module loading, start-up and the first reply.
    return { ...m, processMs: performance.now() - t0 };
  } finally {
    await exited(child);
  }
}

const num = (m: Record<string, unknown>, k: string): number => Number(m[k]);

async function measure(dir: string, events: number, runs: number, label: string): Promise<Record<string, unknown>> {
  progress('startup', `${label}: one untimed warm-up start`);
  const warm = await startOnce('hub', dir);
  if (num(warm, 'seq') !== events) {
    throw new Error(`${dir} holds ${num(warm, 'seq')} events, not ${events}: rerun with --rebuild`);
  }
  const hub: Array<StartupMessage & { processMs: number }> = [];
  const core: Array<StartupMessage & { processMs: number }> = [];
  for (let i = 0; i < runs; i++) {
    hub.push(await startOnce('hub', dir));
    core.push(await startOnce('core', dir));
    const last = hub[hub.length - 1];
    progress('startup', `${label}: run ${i + 1}/${runs}: startHub → /healthz ${last ? num(last, 'healthzMs').toFixed(1) : '?'} ms`);
  }
  const med = (list: Array<Record<string, unknown>>, k: string, digits = 1): number => round(median(list.map((m) => num(m, k))), digits);
  const all = (list: Array<Record<string, unknown>>, k: string): number[] => list.map((m) => round(num(m, k), 1));
  const first = core[0] ?? {};
  return {
    logEvents: num(first, 'seq'),
    devices: num(first, 'devices'),
    startHubToHealthzMs: { median: med(hub, 'healthzMs'), min: Math.min(...all(hub, 'healthzMs')), max: Math.max(...all(hub, 'healthzMs')), runs: all(hub, 'healthzMs') },
    startHubOwnStartupMs: med(hub, 'hubStartupMs'),
    coreOpenMs: { median: med(core, 'coreOpenMs'), min: Math.min(...all(core, 'coreOpenMs')), max: Math.max(...all(core, 'coreOpenMs')), runs: all(core, 'coreOpenMs') },
    apiBuildMs: med(core, 'apiBuildMs'),
    levelDbOpenMs: med(core, 'levelOpenMs'),
    viewScanMs: med(core, 'viewScanMs'),
    viewEntriesRead: num(first, 'viewEntries'),
    logScans: Math.max(...core.map((m) => num(m, 'logScans'))),
    writesAtStart: Math.max(...core.map((m) => num(m, 'writes')), ...hub.map((m) => (m['madeFirstToken'] ? 1 : 0))),
    moduleImportMs: med(hub, 'importMs'),
    processSpawnToHealthzMs: med(hub, 'processMs'),
    hubRssMiB: med(hub, 'rssMiB', 0),
  };
}

export async function runStartup(o: StartupOptions): Promise<Record<string, unknown>> {
  const big = await cachedLog(o.events, o.devices, o.rebuild);
  const small = await cachedLog(o.smallEvents, o.devices, o.rebuild);
  const bigResult = await measure(big.dir, o.events, o.runs, `${fmt(o.events)}-event log`);
  const smallResult = await measure(small.dir, o.smallEvents, o.runs, `${fmt(o.smallEvents)}-event log`);
  const healthz = (bigResult['startHubToHealthzMs'] as { median: number }).median;
  const m = big.marker;
  return {
    target: '<= 1000 ms startHub → /healthz with a 1,000,000-event log, no log replay',
    // The target is stated for 1,000,000 events; a --quick run (100,000) does not decide it.
    met: o.events >= 1_000_000 ? healthz <= 1000 && bigResult['logScans'] === 0 : null,
    ...bigResult,
    smallLog: smallResult,
    build: {
      cached: big.cached,
      folder: big.dir,
      buildS: round(m.buildMs / 1000, 1),
      eventsPerSecond: Math.round(m.events / (m.buildMs / 1000)),
      syncedBatches: m.batches,
      opsWritten: m.ops,
      opsOverwritingAKeyInTheSameBatch: m.repeatedKeyOps,
      bytesWritten: m.bytes,
      folderMiB: round((await folderBytes(big.dir)) / 2 ** 20, 1),
    },
    params: { events: o.events, smallEvents: o.smallEvents, devices: o.devices, runs: o.runs },
  };
}
