/**
 * The hub under load, in its own process: `startHub` exactly as `henge hub` runs it, seeded with the
 * benchmark's schema and devices. Talks to bench/store/run.ts over IPC:
 *   parent → { type: 'start', data, devices }    child → { type: 'ready', url, token, startupMs, seq }
 *   parent → { type: 'stats' }                   child → { type: 'stats', ...HubStats }
 *   parent → { type: 'core-load', ms, concurrency, devices }
 *                                                child → { type: 'core-load', ...CoreLoadResult }
 *   parent → { type: 'profile-start' }, later { type: 'profile-stop', file }
 *                                                child writes a .cpuprofile of the span to `file`
 *   parent → { type: 'close' }                   child → { type: 'closed' } and exits
 */
import { performance } from 'node:perf_hooks';
import { startHub } from '../../hub/hub.ts';
import type { RunningHub } from '../../hub/hub.ts';
import { addDevice, publishSchema, setValues } from '../../hub/domain/index.ts';
import { isMessage, sendToParent } from '../lib/child.ts';
import { COUNTER_SCHEMA, deviceId } from './fixtures.ts';
import { WindowProfiler } from '../lib/profiler.ts';

export interface HubStats {
  /** Last log sequence number. */
  readonly seq: number;
  /** process.cpuUsage() in µs since the process started. */
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  /** Event loop: cumulative idle and active ms (performance.eventLoopUtilization). */
  readonly eluIdleMs: number;
  readonly eluActiveMs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly wallMs: number;
}

let hub: RunningHub | undefined;
let closing: Promise<void> | undefined;

function closeHub(): Promise<void> {
  closing ??= hub ? hub.close() : Promise.resolve();
  return closing;
}

function stats(): HubStats {
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const mem = process.memoryUsage();
  return {
    seq: hub?.core.state.seq ?? 0,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    eluIdleMs: elu.idle,
    eluActiveMs: elu.active,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    wallMs: performance.now(),
  };
}

async function start(data: string, devices: number): Promise<void> {
  hub = await startHub({ data, port: 0, host: '127.0.0.1' });
  const token = hub.firstToken;
  if (!token) throw new Error(`the data folder ${data} is not fresh: no first token was made`);
  const ctx = { actor: 'bench', reason: 'seed' };
  await publishSchema(hub.core, ctx, 'bench-counter', COUNTER_SCHEMA);
  const chunk = 250;
  for (let i = 0; i < devices; i += chunk) {
    const adds: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(devices, i + chunk); j++) {
      adds.push(addDevice(hub.core, ctx, { id: deviceId(j), labels: { fleet: 'bench' }, schema: 'bench-counter' }));
    }
    await Promise.all(adds);
  }
  sendToParent({ type: 'ready', url: hub.url, token, startupMs: hub.startupMs, seq: hub.core.state.seq });
}

export interface CoreLoadResult {
  readonly perSecond: number;
  readonly commands: number;
  readonly cpuCores: number;
}

/**
 * The same writes as the HTTP load, issued in this process straight to the domain (no HTTP, no
 * load generator): `concurrency` loops of setValues for `ms`. The ceiling of the core + store alone.
 */
async function coreLoad(ms: number, concurrency: number, devices: number): Promise<CoreLoadResult> {
  const core = hub?.core;
  if (!core) throw new Error('the hub is not started');
  const ctx = { actor: 'bench' };
  let counter = 1_000_000_000;
  let done = 0;
  let stop = false;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async (): Promise<void> => {
    while (!stop) {
      const k = ++counter;
      await setValues(core, ctx, { device: deviceId(k % devices) }, { counter: k }, false);
      done++;
    }
  };
  const loops = Array.from({ length: concurrency }, () => loop());
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  const elapsed = performance.now() - t0;
  const count = done;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(loops);
  return { perSecond: Math.round((count / elapsed) * 1000), commands: count, cpuCores: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 100) / 100 };
}

const profiler = new WindowProfiler();

const profileStart = (): Promise<void> => profiler.start();

async function profileStop(file: string): Promise<void> {
  if (await profiler.stop(file)) sendToParent({ type: 'profiled', file });
}

process.on('message', (m: unknown) => {
  if (isMessage(m, 'profile-start')) {
    void profileStart();
    return;
  }
  if (isMessage(m, 'profile-stop')) {
    void profileStop(String(m['file']));
    return;
  }
  if (isMessage(m, 'core-load')) {
    coreLoad(Number(m['ms']), Number(m['concurrency']), Number(m['devices'])).then(
      (r) => sendToParent({ type: 'core-load', ...r }),
      (err: unknown) => {
        process.stderr.write(`hub process: ${(err as Error).stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
    return;
  }
  if (isMessage(m, 'start')) {
    start(String(m['data']), Number(m['devices'])).catch((err: unknown) => {
      process.stderr.write(`hub process: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
  } else if (isMessage(m, 'stats')) {
    sendToParent({ type: 'stats', ...stats() });
  } else if (isMessage(m, 'close')) {
    void closeHub().then(() => {
      sendToParent({ type: 'closed' });
      process.exit(0);
    });
  }
});
process.on('disconnect', () => {
  // The parent is gone: do not linger holding the store lock.
  void closeHub().finally(() => process.exit(0));
});
