/**
 * One hub start in a fresh process, for figure 3. Modes (argv[2]):
 *   hub   time from calling startHub to GET /healthz answering 200 (and startHub's own startupMs)
 *   core  time of HubCore.open alone, through a CountingStore that shows what it read; then, apart,
 *         the time to build the API (createMetrics + createApi + ready), the rest of startHub's work
 * argv[3] is the data folder. The result goes to the parent over IPC as { type: 'startup', ... }.
 * Module loading is timed apart (`importMs`): it is the same whatever the log length.
 */
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { httpGet } from '../lib/http.ts';
import { sendToParent } from '../lib/child.ts';

const mode = process.argv[2];
const data = resolve(process.argv[3] ?? '');

async function main(): Promise<void> {
  const bootMs = performance.now();
  if (mode === 'hub') {
    const i0 = performance.now();
    const { startHub } = await import('../../hub/hub.ts');
    const importMs = performance.now() - i0;
    const t0 = performance.now();
    const hub = await startHub({ data, port: 0, host: '127.0.0.1' });
    const startedMs = performance.now() - t0;
    const health = await httpGet(`${hub.url}/healthz`);
    const healthzMs = performance.now() - t0;
    if (health.status !== 200) throw new Error(`/healthz answered ${health.status}`);
    const result = {
      type: 'startup',
      mode,
      bootMs,
      importMs,
      startHubMs: startedMs,
      healthzMs,
      hubStartupMs: hub.startupMs,
      madeFirstToken: hub.firstToken !== null,
      seq: hub.core.state.seq,
      devices: hub.core.state.devices.size,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
    await hub.close();
    sendToParent(result);
  } else if (mode === 'core') {
    const i0 = performance.now();
    const { HubCore } = await import('../../hub/domain/index.ts');
    const { LevelStore } = await import('../../hub/store/level-store.ts');
    const { CountingStore } = await import('../lib/counting-store.ts');
    const importMs = performance.now() - i0;
    const store = new CountingStore(new LevelStore(resolve(data, 'store')));
    const t0 = performance.now();
    const core = await HubCore.open(store);
    const openMs = performance.now() - t0;
    // What startHub adds on top of HubCore.open: metrics and the fastify app with every route's schema.
    const { createMetrics } = await import('../../hub/api/metrics.ts');
    const { createApi } = await import('../../hub/api/server.ts');
    const a0 = performance.now();
    const app = await createApi(core, createMetrics());
    await app.ready();
    const apiBuildMs = performance.now() - a0;
    await app.close();
    const result = {
      type: 'startup',
      mode,
      bootMs,
      importMs,
      coreOpenMs: openMs,
      apiBuildMs,
      levelOpenMs: store.openMs,
      viewScanMs: store.viewScanMs,
      viewEntries: store.viewEntries,
      logScans: store.logScans,
      writes: store.batches,
      seq: core.state.seq,
      devices: core.state.devices.size,
    };
    await core.close();
    sendToParent(result);
  } else {
    throw new Error(`unknown mode ${String(mode)}; use hub or core`);
  }
  process.disconnect?.();
}

main().catch((err: unknown) => {
  process.stderr.write(`startup child: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
