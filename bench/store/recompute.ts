/**
 * Figure 4: recomputing the snapshots of every member device after one group value changes.
 * In-process (no HTTP): the reducer and snapshot builder are measured on their own, then the whole
 * `setValues` command (validation, apply, recompute, commit with fsync) is measured around them.
 */
import { performance } from 'node:perf_hooks';
import { buildSnapshot, prepareValues } from '../../protocol/snapshot.ts';
import { HubCore, EventType, addDevice, defineGroup, loadState, publishSchema, setValues } from '../../hub/domain/index.ts';
import type { HengeEvent } from '../../hub/domain/index.ts';
import { effectiveValues } from '../../hub/domain/config.ts';
import { Touched } from '../../hub/domain/state.ts';
import { LevelStore } from '../../hub/store/level-store.ts';
import { CountingStore } from '../lib/counting-store.ts';
import { fmt, progress } from '../lib/progress.ts';
import { round, summarize } from '../lib/stats.ts';
import { SENSOR_SCHEMA, deviceId, scratchDir } from './fixtures.ts';

export interface RecomputeOptions {
  readonly devices: number;
  readonly reps: number;
  readonly warmup: number;
}

export const recomputeOptions = (quick: boolean): RecomputeOptions => ({ devices: 5000, reps: quick ? 20 : 50, warmup: 5 });

export function recomputeMethod(o: RecomputeOptions): string[] {
  return [
    `recompute (figure 4): ${fmt(o.devices)} devices bound to a 10-field schema, each with one device-layer value, all`,
    `  matched by one group (selector fleet=bench). The group's "interval" is set to a new value ${o.reps} times (after ${o.warmup}`,
    `  untimed), so every device's effective config, hash and version change each time. In-process:`,
    `  (a) HubState.apply + refreshSnapshots on a copy of the hub's state (the in-memory part, no I/O), and the`,
    `      building of the view writes it causes; (b) the whole setValues command on a HubCore over LevelDB:`,
    `      validation of every member, apply + recompute, then group commit with fsync (commit time from HubObserver).`,
  ];
}

export async function runRecompute(o: RecomputeOptions): Promise<Record<string, unknown>> {
  const dir = await scratchDir('recompute');
  const commits: number[] = [];
  const fsyncs: number[] = [];
  const store = new CountingStore(new LevelStore(`${dir.path}/store`));
  const core = await HubCore.open(store, {
    commandCommitted: (ms) => commits.push(ms),
    batchWritten: (_n, ms) => fsyncs.push(ms),
  });
  try {
    const ctx = { actor: 'bench', reason: 'recompute benchmark' };
    progress('recompute', `adding ${fmt(o.devices)} devices, a 10-field schema and a group`);
    await publishSchema(core, ctx, 'sensor', SENSOR_SCHEMA);
    await defineGroup(core, ctx, 'fleet', { selector: 'fleet=bench', priority: 10, values: { mode: 'eco', threshold: 19.5 } });
    const chunk = 500;
    for (let i = 0; i < o.devices; i += chunk) {
      const adds: Array<Promise<unknown>> = [];
      for (let j = i; j < Math.min(o.devices, i + chunk); j++) {
        adds.push(addDevice(core, ctx, { id: deviceId(j), labels: { fleet: 'bench', site: `s${j % 10}` }, schema: 'sensor', values: { name: `sensor-${j}` } }));
      }
      await Promise.all(adds);
    }
    const members = core.state.groupMembers('fleet').size;
    if (members !== o.devices) throw new Error(`the group matches ${members} devices, not ${o.devices}`);
    let interval = 1000;

    // (a) The in-memory part alone, on an independent copy of the state (same views, loaded from the store).
    progress('recompute', `(a) apply + refreshSnapshots, ${o.reps} times`);
    const state = await loadState(store);
    const apply: number[] = [];
    const refresh: number[] = [];
    const both: number[] = [];
    const opsBuild: number[] = [];
    for (let r = 0; r < o.warmup + o.reps; r++) {
      const from = interval;
      const to = ++interval;
      const e = {
        seq: state.seq + 1,
        time: Date.now(),
        actor: 'bench',
        type: EventType.ValuesChanged,
        data: { group: 'fleet', changes: [{ key: 'interval', from, to }] },
      } as HengeEvent;
      const t = new Touched();
      const t0 = performance.now();
      state.apply(e, t);
      const t1 = performance.now();
      state.refreshSnapshots(t, e.seq);
      const t2 = performance.now();
      let n = 0;
      for (const k of t.keys) if (state.viewValue(k) !== undefined) n++;
      const t3 = performance.now();
      if (t.changedSnapshots.size !== o.devices || n < o.devices) throw new Error(`only ${t.changedSnapshots.size} snapshots changed`);
      if (r < o.warmup) continue;
      apply.push(t1 - t0);
      refresh.push(t2 - t1);
      both.push(t2 - t0);
      opsBuild.push(t3 - t2);
    }

    // Where one device's recompute goes (same code refreshSnapshots runs, split by step).
    const devices = [...state.devices.values()];
    let eff = 0;
    let prep = 0;
    let build = 0;
    for (const d of devices) {
      const a = performance.now();
      const values = effectiveValues(d, state.groupsOf(d.id), state.schemaOf(d));
      const b = performance.now();
      const prepared = prepareValues(values);
      const c = performance.now();
      buildSnapshot(1, values, new Uint8Array(8), prepared);
      build += performance.now() - c;
      prep += c - b;
      eff += b - a;
    }
    const perDeviceUs = (ms: number): number => round((ms * 1000) / devices.length, 2);

    // (b) The whole command through the hub's core, fsync included.
    progress('recompute', `(b) setValues on the group through HubCore, ${o.reps} times`);
    let changed = 0;
    core.onCommit((c) => (changed = c.changedSnapshots.size));
    const opsBefore = store.ops;
    const batchesBefore = store.batches;
    const total: number[] = [];
    const commit: number[] = [];
    const fsync: number[] = [];
    for (let r = 0; r < o.warmup + o.reps; r++) {
      commits.length = 0;
      fsyncs.length = 0;
      changed = 0;
      const t0 = performance.now();
      await setValues(core, ctx, { group: 'fleet' }, { interval: ++interval }, false);
      const ms = performance.now() - t0;
      if (changed !== o.devices) throw new Error(`the command changed ${changed} snapshots, not ${o.devices}`);
      if (r < o.warmup) continue;
      total.push(ms);
      commit.push(commits[0] ?? Number.NaN);
      fsync.push(fsyncs[0] ?? Number.NaN);
    }
    const before = total.map((ms, i) => ms - (commit[i] ?? 0));
    const s = summarize(both, 2);
    return {
      applyPlusRefreshMs: { what: 'HubState.apply + refreshSnapshots for one group value change (in memory, no I/O)', ...s },
      target: '<= 20 ms (p50 of apply + refreshSnapshots)',
      met: s.p50 <= 20,
      metAtP99: s.p99 <= 20,
      applyMs: summarize(apply, 2),
      refreshSnapshotsMs: summarize(refresh, 2),
      viewWritesBuildMs: { what: `viewValue for every touched key (the ${fmt(o.devices + 2)} ops commit() builds)`, ...summarize(opsBuild, 2) },
      perDeviceUs: {
        effectiveValues: perDeviceUs(eff),
        prepareValues_cborAndSha256: perDeviceUs(prep),
        buildSnapshot_envelope: perDeviceUs(build),
      },
      setValuesCommandMs: { what: 'the whole setValues command on the group, awaited (validation + apply + recompute + commit + fsync)', ...summarize(total, 2) },
      beforeCommitMs: { what: 'command time minus commit: validation of every member + apply + recompute + building the writes', ...summarize(before, 2) },
      commitMs: { what: 'HubObserver.commandCommitted: queued → batch fsynced', ...summarize(commit, 2) },
      batchWriteMs: { what: 'HubObserver.batchWritten: the synced LevelDB batch alone', ...summarize(fsync, 2) },
      opsPerCommit: Math.round((store.ops - opsBefore) / Math.max(1, store.batches - batchesBefore)),
      params: { devices: o.devices, schemaFields: Object.keys(SENSOR_SCHEMA.properties).length, reps: o.reps, warmup: o.warmup },
    };
  } finally {
    await core.close();
    await dir.remove();
  }
}
