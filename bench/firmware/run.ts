/**
 * `npm run bench:firmware`: the C firmware's figures (issue "C firmware on libcoap").
 *
 * Method (printed too): a hub in this process (startHub, plain CoAP and coaps on 127.0.0.1), one device,
 * and `henge-fw` (firmware-libcoap/build/henge-fw, built first with make) as a child process observing it.
 *   a) change → applied: PATCH /devices/<id>/values through the API, timed from just before the request
 *      to henge-fw's `applied` log line (the --out file is written, fsynced and renamed before it logs);
 *      WARMUP changes, then CHANGES timed, over CoAP and over DTLS; p50/p99/max.
 *   b) peak heap: henge-fw under valgrind massif (DTLS), through MASSIF_CHANGES changes and a clean stop;
 *      the largest heap (useful + extra bytes) of massif's snapshots.
 * The core's flash and RAM come from `npm run size:firmware` (firmware-libcoap/size/).
 * Prints one JSON line at the end, also written to bench/results/firmware.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startHub } from '../../hub/hub.ts';
import type { RunningHub } from '../../hub/hub.ts';
import { addDevice } from '../../hub/domain/index.ts';
import { round, summarize } from '../lib/stats.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const FW = join(ROOT, 'firmware-libcoap', 'build', 'henge-fw');
const WARMUP = 10;
const CHANGES = 100;
const MASSIF_CHANGES = 100;
const DEVICE = 'bench-fw';

const line = (s: string): void => void process.stdout.write(`${s}\n`);
const progress = (s: string): void => void process.stderr.write(`[firmware] ${s}\n`);

interface Fw {
  readonly child: ChildProcess;
  /** Resolves at the next log line with this msg (counted from now). */
  next(msg: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<number | null>;
}

function startFw(cmd: string, args: readonly string[]): Fw {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const waiters: Array<{ msg: string; resolve: () => void }> = [];
  let tail = '';
  createInterface({ input: child.stderr! }).on('line', (l) => {
    tail = `${tail}${l}\n`.slice(-4000);
    let msg: unknown;
    try {
      msg = (JSON.parse(l) as { msg?: unknown }).msg;
    } catch {
      return; // valgrind's own lines
    }
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i];
      if (w && w.msg === msg) {
        waiters.splice(i, 1);
        w.resolve();
        return;
      }
    }
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    next: (msg, timeoutMs = 30_000) =>
      new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`henge-fw logged no "${msg}" in ${timeoutMs} ms:\n${tail}`)), timeoutMs);
        waiters.push({ msg, resolve: () => (clearTimeout(timer), res()) });
      }),
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      return exited;
    },
  };
}

async function patch(hub: RunningHub, token: string, values: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${hub.url}/devices/${DEVICE}/values`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ values }),
  });
  if (res.status !== 200) throw new Error(`PATCH answered ${res.status}: ${await res.text()}`);
}

/** Times `count` changes: PATCH sent → `applied` logged. */
async function timeChanges(hub: RunningHub, token: string, fw: Fw, count: number, start: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const applied = fw.next('applied');
    const t0 = performance.now();
    await patch(hub, token, { n: start + i });
    await applied;
    out.push(performance.now() - t0);
  }
  return out;
}

function fwArgs(dir: string, port: number, key: string | null): string[] {
  return ['--id', DEVICE, '--hub', `127.0.0.1:${port}`, '--out', join(dir, 'config.json'), '--state', join(dir, 'state'), '--backoff-max', '1', ...(key ? ['--key-file', join(dir, 'key')] : [])];
}

async function main(): Promise<void> {
  line(`henge bench:firmware  (${new Date().toISOString()})`);
  line('method:');
  line(`  a) a hub in this process, one device, henge-fw as a child; PATCH through the API → henge-fw's "applied" log line`);
  line(`     (after the --out file is fsynced and renamed); ${WARMUP} warm-up changes, then ${CHANGES} timed, over CoAP and DTLS.`);
  line(`  b) henge-fw under valgrind massif over DTLS through ${MASSIF_CHANGES} changes and SIGTERM: the largest heap of its snapshots.`);
  line('  The core\'s flash and RAM: npm run size:firmware.');
  progress('building henge-fw (make)');
  const made = spawnSync('make', ['-C', join(ROOT, 'firmware-libcoap'), '--no-print-directory', 'build/henge-fw'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`make failed (packages: scripts/system-deps.txt):\n${made.stdout}${made.stderr}`);
  const base = join(ROOT, 'bench', '.data');
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, 'firmware-'));
  const hub = await startHub({ data: join(dir, 'hub'), port: 0, host: '127.0.0.1', coap: { port: 0, host: '127.0.0.1' }, coaps: { port: 0, host: '127.0.0.1' } });
  const results: Record<string, unknown> = {};
  try {
    const token = hub.firstToken ?? '';
    await addDevice(hub.core, { actor: 'bench' }, { id: DEVICE, values: { n: 0 } });
    if (!hub.keystore) throw new Error('the hub has no keystore');
    const key = (await hub.keystore.issue(DEVICE)).key;
    for (const d of ['coap', 'dtls']) await mkdir(join(dir, d), { recursive: true });
    await writeFile(join(dir, 'dtls', 'key'), `${key}\n`, { mode: 0o600 });
    let n = 1;
    for (const [mode, port, k] of [['coap', hub.coapPort, null], ['coaps', hub.coapsPort, key]] as const) {
      progress(`a) ${mode}: starting henge-fw`);
      const fw = startFw(FW, fwArgs(join(dir, mode === 'coap' ? 'coap' : 'dtls'), port ?? 0, k));
      await fw.next('ack delivered', 30_000);
      await timeChanges(hub, token, fw, WARMUP, n);
      n += WARMUP;
      const ms = await timeChanges(hub, token, fw, CHANGES, n);
      n += CHANGES;
      const s = summarize(ms);
      results[mode] = { changes: CHANGES, p50Ms: round(s.p50, 2), p99Ms: round(s.p99, 2), maxMs: round(s.max, 2) };
      line(`  a) ${mode}: change → applied p50 ${round(s.p50, 2)} ms, p99 ${round(s.p99, 2)} ms, max ${round(s.max, 2)} ms (${CHANGES} changes)`);
      await fw.stop();
    }
    progress('b) henge-fw under valgrind massif (DTLS)');
    const massifOut = join(dir, 'massif.out');
    const fw = startFw('valgrind', ['--tool=massif', `--massif-out-file=${massifOut}`, FW, ...fwArgs(join(dir, 'dtls'), hub.coapsPort ?? 0, key)]);
    // Its state folder holds the current version already: it connects and has nothing new to apply.
    await fw.next('connected', 60_000);
    await timeChanges(hub, token, fw, MASSIF_CHANGES, n);
    const code = await fw.stop();
    const text = await readFile(massifOut, 'utf8');
    let peak = 0;
    for (const m of text.matchAll(/mem_heap_B=(\d+)\nmem_heap_extra_B=(\d+)/g)) peak = Math.max(peak, Number(m[1]) + Number(m[2]));
    results['massif'] = { changes: MASSIF_CHANGES, peakHeapBytes: peak, exitCode: code };
    line(`  b) peak heap ${peak.toLocaleString('en-US')} B (${round(peak / 1024 / 1024, 2)} MiB) through ${MASSIF_CHANGES} changes over DTLS; exit ${String(code)}`);
  } finally {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  }
  const out = { bench: 'firmware', time: new Date().toISOString(), loadAvgAtEnd: loadavg().map((x) => round(x, 2)), results };
  const file = join(ROOT, 'bench', 'results', 'firmware.json');
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(file, `${JSON.stringify(out)}\n`);
  line(`(also written to ${file})`);
  line(JSON.stringify(out));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:firmware failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
