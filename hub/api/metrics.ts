/** Prometheus metrics for `/metrics`; one registry per hub so tests can run several hubs in a process. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HubCore, HubObserver } from '../domain/index.ts';

export interface HubMetrics {
  readonly registry: Registry;
  readonly observer: HubObserver;
  /** Binds the gauges that read the hub's state (once the hub is open). */
  bind(core: HubCore): void;
}

export function createMetrics(): HubMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'henge_' });
  const commands = new Counter({ name: 'henge_writes_total', help: 'Commands that reached the store, by result', labelNames: ['result'] as const, registers: [registry] });
  const latency = new Histogram({
    name: 'henge_commit_latency_seconds',
    help: 'Time from a command being queued to its batch being on disk (fsync)',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const batch = new Histogram({
    name: 'henge_commit_batch_commands',
    help: 'Commands written together in one synced batch (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const reloads = new Counter({ name: 'henge_view_reloads_total', help: 'Reloads of the views from the store after a failed write', registers: [registry] });
  let core: HubCore | undefined;
  new Gauge({ name: 'henge_devices', help: 'Devices known to the hub', registers: [registry], collect() { this.set(core?.state.devices.size ?? 0); } });
  new Gauge({ name: 'henge_log_length', help: 'Events in the log (last sequence number)', registers: [registry], collect() { this.set(core?.state.seq ?? 0); } });
  new Gauge({ name: 'henge_store_healthy', help: '1 when the last write reached the disk', registers: [registry], collect() { this.set(core && core.problem === null ? 1 : 0); } });
  return {
    registry,
    bind(c) {
      core = c;
    },
    observer: {
      commandCommitted(ms) {
        commands.inc({ result: 'ok' });
        latency.observe(ms / 1000);
      },
      commandFailed() {
        commands.inc({ result: 'failed' });
      },
      batchWritten(n) {
        batch.observe(n);
      },
      reloaded() {
        reloads.inc();
      },
    },
  };
}
