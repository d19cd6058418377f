/**
 * Fault scenario 3, reconnect storm: DEVICES simulated devices (sim/, one UDP socket each, plain CoAP)
 * observe a real hub process; the hub is killed with SIGKILL and restarted on the same data and port.
 * The devices learn nothing of it: each re-registers when its keepalive (Max-Age) runs out, and they all
 * registered within seconds, so the re-registrations come as one storm. A group change made right after
 * the restart must reach every device: the time to 100 % is from the restarted hub's API answering to
 * the last device's ack of the new version, and the hub's peak memory is its VmHWM (peak RSS) then.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Simulator } from '../../../sim/index.ts';
import { SPARE_FILES, openFileLimit } from '../../../sim/limits.ts';
import { makeSandbox, startHubProcess } from '../../helpers/processes.ts';
import { seedFleet } from './fleet.ts';
import type { HubProcess } from '../../helpers/processes.ts';

export interface StormOptions {
  readonly devices: number;
  readonly keepaliveS: number;
  readonly progress?: (line: string) => void;
}

export interface StormResult {
  readonly devices: number;
  readonly keepaliveS: number;
  /** SIGKILL → the restarted hub's API answers. */
  readonly restartMs: number;
  /** API up → every device acked the change made then (so every device re-registered). */
  readonly convergedMs: number;
  readonly converged: number;
  /** The hub's own count afterwards (GET /fleet). */
  readonly fleetConverged: number;
  readonly fleetOnline: number;
  /** The restarted hub: peak RSS (VmHWM) through the storm, RSS before it and at the end. */
  readonly hubPeakRssBytes: number;
  readonly hubRssIdleBytes: number;
  readonly hubRssEndBytes: number;
  /** Device-side counters over the storm. */
  readonly registrations: number;
  readonly retransmissions: number;
}

const GROUP = 'storm';
const id = (i: number): string => `storm-${String(i).padStart(5, '0')}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function procKb(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Why this machine cannot run `devices` simulated devices, or undefined. */
export function stormMissing(devices: number): string | undefined {
  const limit = openFileLimit();
  return limit !== null && limit < devices + SPARE_FILES * 4 ? `needs ${devices + SPARE_FILES * 4} open files (ulimit -n is ${limit})` : undefined;
}

export async function reconnectStorm(opts: StormOptions): Promise<StormResult> {
  const log = opts.progress ?? ((): void => undefined);
  const sandbox = await makeSandbox('henge-fault-storm-');
  const dataDir = join(sandbox.dir, 'data');
  const ids = Array.from({ length: opts.devices }, (_, i) => id(i));
  let hub: HubProcess | undefined;
  let sim: Simulator | undefined;
  try {
    const token = await seedFleet(dataDir, ids, GROUP, { interval: 60 });
    log(`${opts.devices} devices seeded`);

    const args = ['--keepalive', String(opts.keepaliveS), '--log-level', 'warn', '--no-coaps'];
    hub = await startHubProcess(sandbox, args, 60_000, { dataDir });
    const port = hub.coapPort;
    assert.ok(port, 'the hub serves plain CoAP');
    sim = new Simulator({ hub: `127.0.0.1:${port}` });
    const acked = new Map<string, number>();
    sim.on('acked', (e) => {
      if (e.code === '2.04' && e.version > (acked.get(e.device) ?? 0)) acked.set(e.device, e.version);
    });
    await sim.start(ids);
    const first = await sim.registration();
    assert.equal(first.observing, opts.devices, `only ${first.observing} of ${opts.devices} devices registered`);
    log(`${first.observing} devices observing after ${Math.round(first.ms)} ms; killing the hub`);
    const before = { ...sim.counters };

    await hub.stop('SIGKILL');
    const killedAt = performance.now();
    hub = await startHubProcess(sandbox, [...args, '--coap-port', String(port)], 60_000, { dataDir });
    const upAt = performance.now();
    const pid = hub.child.pid ?? 0;
    const hubRssIdleBytes = await procKb(pid, 'VmRSS');
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const patch = await fetch(`${hub.url}/groups/${GROUP}/values`, { method: 'PATCH', headers: auth, body: JSON.stringify({ values: { interval: 61 } }) });
    assert.equal(patch.status, 200, await patch.text());
    const state = (await (await fetch(`${hub.url}/devices/${id(0)}/state`, { headers: auth })).json()) as { desiredVersion: number };
    const target = state.desiredVersion;
    log(`hub back after ${Math.round(upAt - killedAt)} ms; the change is version ${target}; waiting for every device`);

    const deadline = upAt + opts.keepaliveS * 3000 + 60_000;
    let done = 0;
    let lastReport = 0;
    while (performance.now() < deadline) {
      done = 0;
      for (const v of acked.values()) if (v >= target) done++;
      if (done === opts.devices) break;
      if (performance.now() - lastReport > 2000) {
        lastReport = performance.now();
        log(`${done}/${opts.devices} converged after ${Math.round(performance.now() - upAt)} ms`);
      }
      await sleep(25);
    }
    const convergedMs = performance.now() - upAt;
    const hubPeakRssBytes = await procKb(pid, 'VmHWM');
    const hubRssEndBytes = await procKb(pid, 'VmRSS');
    const fleet = (await (await fetch(`${hub.url}/fleet`, { headers: auth })).json()) as { summary: { converged: number; online: number } };
    return {
      devices: opts.devices,
      keepaliveS: opts.keepaliveS,
      restartMs: Math.round(upAt - killedAt),
      convergedMs: Math.round(convergedMs),
      converged: done,
      fleetConverged: fleet.summary.converged,
      fleetOnline: fleet.summary.online,
      hubPeakRssBytes,
      hubRssIdleBytes,
      hubRssEndBytes,
      registrations: sim.counters.registrationsSent - before.registrationsSent,
      retransmissions: sim.counters.retransmissions - before.retransmissions,
    };
  } finally {
    await sim?.stop({ deregister: false }).catch(() => undefined);
    await hub?.stop('SIGKILL');
    await sandbox.cleanup();
  }
}
