/**
 * Fault scenario 6, a full disk and a read-only data folder, on a real file system: the hub's data folder
 * is a small tmpfs in a private mount namespace (test/helpers/mountns.ts), so LevelDB gets ENOSPC and
 * EROFS from the kernel.
 *
 *  1. CLIENTS clients write 2 KB texts until the tmpfs is full. A refused write must be 503
 *     HENGE_E_STORE_UNAVAILABLE naming the cause ("No space left on device"); reads (the device list,
 *     values, events, config) go on; /readyz says 503.
 *  2. Space returns (the tmpfs grows) while the hub runs: writes succeed again without a restart,
 *     /readyz says 200; every 2xx write is there byte for byte and no refused write is.
 *  3. kill -9, `henge hub --verify` is clean, the hub restarts and holds the same.
 *  4. The data folder turns read-only (remount ro while the hub is down; Linux refuses it while LevelDB
 *     holds files open for writing): the hub refuses to start, exit 6, naming "Read-only file system".
 *     Writable again: it starts and holds the same.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { rng } from '../../helpers/rng.ts';
import { createTmpfsNs } from '../../helpers/mountns.ts';
import type { MountNs } from '../../helpers/mountns.ts';
import { HENGE_BIN, makeSandbox, startHubProcess } from '../../helpers/processes.ts';
import type { HubProcess, Sandbox } from '../../helpers/processes.ts';
import { randomText } from './values.ts';
import { checkWrites } from './writes.ts';
import type { Check, Write } from './writes.ts';

export interface DiskOptions {
  readonly clients: number;
  /** tmpfs size while full, and after space returns (mount's syntax). */
  readonly smallSize: string;
  readonly bigSize: string;
  readonly seed: number;
  readonly progress?: (line: string) => void;
}

export interface DiskResult {
  readonly seed: number;
  readonly ackedWrites: number;
  readonly refusedWrites: number;
  /** Refusals that were not 503 HENGE_E_STORE_UNAVAILABLE naming ENOSPC. */
  readonly wrongRefusals: number;
  /** Reads tried while the disk was full, and those answered 200. */
  readonly readsWhileFull: number;
  readonly readsOk: number;
  readonly readyzWhileFull: number;
  /** Space back → the first write answered 2xx, ms (no restart). */
  readonly recoveryMs: number;
  readonly readyzAfter: number;
  readonly checks: { readonly live: Check; readonly afterKill: Check; readonly afterReadOnly: Check };
  readonly verifyExit: number | null;
  readonly readOnlyExit: number | null;
  readonly readOnlyMessage: string;
}

interface Ran {
  readonly code: number | null;
  readonly output: string;
}

function runIn(prefix: readonly string[], args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const [cmd, ...pre] = [...prefix, process.execPath];
    const child = spawn(cmd ?? process.execPath, [...pre, HENGE_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`henge ${args.join(' ')} timed out:\n${output}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export async function fullDisk(opts: DiskOptions): Promise<DiskResult> {
  const random = rng(opts.seed);
  const log = opts.progress ?? ((): void => undefined);
  const sandbox: Sandbox = await makeSandbox('henge-fault-disk-');
  let ns: MountNs | undefined;
  let hub: HubProcess | undefined;
  const writes: Write[] = [];
  try {
    ns = await createTmpfsNs(opts.smallSize);
    const dataDir = join(ns.dir, 'hub');
    const prefix = ns.prefix;
    const start = (): Promise<HubProcess> => startHubProcess(sandbox, ['--log-level', 'error'], 20_000, { dataDir, prefix });
    hub = await start();
    const token = hub.token ?? '';
    const auth = { authorization: `Bearer ${token}` };
    const devices = Array.from({ length: opts.clients }, (_, i) => `disk-${i}`);
    for (const id of devices) {
      const r = await fetch(`${hub.url}/devices`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id }) });
      assert.equal(r.status, 201, await r.text());
    }
    const patch = async (device: string, key: string): Promise<{ status: number; code: string; message: string; values: Record<string, string> }> => {
      const values = { [key]: `${randomText(random, 8)}${'x'.repeat(2000)}` };
      const r = await fetch(`${hub?.url ?? ''}/devices/${device}/values`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ values }) });
      const b = (await r.json()) as { code?: string; message?: string };
      return { status: r.status, code: b.code ?? '', message: b.message ?? '', values };
    };

    // 1. Fill the disk: each client writes fresh keys until it has been refused 5 times running.
    let wrongRefusals = 0;
    let firstRefusal = '';
    await Promise.all(
      devices.map(async (device) => {
        let refusedInARow = 0;
        for (let j = 0; j < 5000 && refusedInARow < 5; j++) {
          const r = await patch(device, `k${j}`);
          if (r.status === 200) {
            refusedInARow = 0;
            writes.push({ device, values: r.values, outcome: 'acked' });
          } else {
            refusedInARow++;
            writes.push({ device, values: r.values, outcome: 'refused' });
            if (r.status !== 503 || r.code !== 'HENGE_E_STORE_UNAVAILABLE' || !/No space left on device/.test(r.message)) wrongRefusals++;
            firstRefusal ||= `${r.status} ${r.code}: ${r.message}`;
          }
        }
      }),
    );
    const acked = writes.filter((w) => w.outcome === 'acked').length;
    log(`disk full after ${acked} writes; first refusal: ${firstRefusal}`);

    // Reads go on while the disk is full.
    const reads = ['/devices', `/devices/${devices[0] ?? ''}/values`, `/devices/${devices[0] ?? ''}/config`, '/events?limit=50', '/fleet', '/status'];
    let readsOk = 0;
    for (const path of reads) if ((await fetch(`${hub.url}${path}`, { headers: auth })).status === 200) readsOk++;
    const readyzWhileFull = (await fetch(`${hub.url}/readyz`)).status;

    // 2. Space returns while the hub runs.
    await ns.remount(`size=${opts.bigSize}`);
    const back = performance.now();
    let recoveryMs = Number.NaN;
    for (let i = 0; i < 200; i++) {
      const device = devices[i % devices.length] ?? '';
      const r = await patch(device, `after${i}`);
      writes.push({ device, values: r.values, outcome: r.status === 200 ? 'acked' : 'refused' });
      if (r.status === 200) {
        recoveryMs = performance.now() - back;
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    const readyzAfter = (await fetch(`${hub.url}/readyz`)).status;
    const live = await checkWrites(hub.url, token, writes);
    log(`space back: first write after ${recoveryMs.toFixed(0)} ms; ${live.lost} lost, ${live.refusedKept} refused but kept`);

    // 3. kill -9, verify, restart.
    await hub.stop('SIGKILL');
    const verify = await runIn(ns.prefix, ['hub', '--verify', '--data', dataDir], sandbox.env);
    hub = await start();
    const afterKill = await checkWrites(hub.url, token, writes);

    // 4. Read-only data folder.
    await hub.stop('SIGTERM');
    await ns.remount('ro');
    const ro = await runIn(ns.prefix, ['hub', '--data', dataDir, '--port', '0', '--coaps-port', '0', '--no-mdns', '--log-level', 'error'], sandbox.env);
    await ns.remount('rw');
    hub = await start();
    const afterReadOnly = await checkWrites(hub.url, token, writes);
    log(`read-only data folder: exit ${String(ro.code)}: ${ro.output.trim()}`);

    return {
      seed: opts.seed,
      ackedWrites: writes.filter((w) => w.outcome === 'acked').length,
      refusedWrites: writes.filter((w) => w.outcome === 'refused').length,
      wrongRefusals,
      readsWhileFull: reads.length,
      readsOk,
      readyzWhileFull,
      recoveryMs: Math.round(recoveryMs),
      readyzAfter,
      checks: { live, afterKill, afterReadOnly },
      verifyExit: verify.code,
      readOnlyExit: ro.code,
      readOnlyMessage: ro.output.trim(),
    };
  } finally {
    await hub?.stop('SIGKILL');
    await ns?.cleanup();
    await sandbox.cleanup();
  }
}
