/**
 * A lossy, reordering UDP relay between devices and a hub, run as its own process (this machine's kernel
 * has no netem). Devices send to the relay's port; for each device endpoint the relay opens its own
 * upstream socket, so the hub still sees one endpoint per device. In each direction a datagram is
 * dropped with probability LOSS, else delivered after a uniform random delay in [0, JITTER] ms, so
 * datagrams overtake each other (reordering). Deterministic for a seed.
 *
 *   node --import tsx test/helpers/lossy-relay.ts --target 127.0.0.1:5683 --loss 0.2 --jitter 40 --seed 7
 *
 * Prints `{"port":N}` once listening; on SIGTERM prints its counters as one JSON line and exits 0.
 * `startLossyRelay()` runs it from a test.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { rng } from './rng.ts';

export interface RelayCounters {
  readonly forwarded: number;
  readonly dropped: number;
  /** Datagrams delivered before one that arrived earlier in the same flow and direction. */
  readonly reordered: number;
  readonly endpoints: number;
  /**
   * Per device endpoint, by the port the hub sees it on (the relay's upstream socket): the most
   * transmissions of one confirmable exchange dropped in a row (since the start, or the last resetRuns()), device to hub (one request: same message
   * id) and hub to device (its confirmable notifications). 4 means the exchange needed its fifth and last
   * transmission (RFC 7252: 30-45 s after the first), 5 that the network cut it entirely.
   */
  readonly lostInARow: Readonly<Record<string, { readonly up: number; readonly down: number }>>;
}

/** Consecutive drops of one exchange's transmissions, and the most seen. */
export interface Run {
  key: number;
  lost: number;
  max: number;
}

interface Flow {
  readonly upstream: Socket;
  /** Per direction: sequence of arrival, and the highest sequence delivered so far. */
  up: { next: number; delivered: number; run: Run };
  down: { next: number; delivered: number; run: Run };
}

const NOTIFICATION = -1;

/**
 * Which exchange a datagram is a transmission of, or null: a confirmable request up (its message id), a
 * confirmable notification down (one chain per device: a newer snapshot replaces the one in flight under
 * a new message id, RFC 7641 §4.5.2, and keeps its retransmission counter).
 */
export function exchangeOf(b: Buffer, up: boolean): number | null {
  if (b.length < 4 || b[0] === undefined || b[1] === undefined || b[2] === undefined || b[3] === undefined) return null;
  const confirmable = ((b[0] >> 4) & 0x03) === 0;
  if (!confirmable || b[1] === 0) return null;
  return up ? (b[2] << 8) | b[3] : NOTIFICATION;
}

export function track(run: Run, key: number | null, dropped: boolean): void {
  if (key === null) return;
  if (!dropped) {
    if (run.key === key) run.lost = 0;
    return;
  }
  if (run.key === key) run.lost++;
  else {
    run.key = key;
    run.lost = 1;
  }
  run.max = Math.max(run.max, run.lost);
}

function runRelay(target: { host: string; port: number }, loss: number, jitterMs: number, seed: number): void {
  const random = rng(seed);
  const counters = { forwarded: 0, dropped: 0, reordered: 0, endpoints: 0 };
  const flows = new Map<string, Flow>();
  const front = createSocket('udp4');
  const pass = (dir: Flow['up'], bytes: Buffer, up: boolean, send: () => void): void => {
    const dropped = random() < loss;
    track(dir.run, exchangeOf(bytes, up), dropped);
    if (dropped) {
      counters.dropped++;
      return;
    }
    const seq = dir.next++;
    setTimeout(() => {
      if (seq < dir.delivered) counters.reordered++;
      dir.delivered = Math.max(dir.delivered, seq);
      counters.forwarded++;
      send();
    }, random() * jitterMs);
  };
  front.on('message', (msg: Buffer, from: RemoteInfo) => {
    const key = `${from.address}:${from.port}`;
    let flow = flows.get(key);
    if (!flow) {
      const upstream = createSocket('udp4');
      const run = (): Run => ({ key: NaN, lost: 0, max: 0 });
      const f: Flow = { upstream, up: { next: 0, delivered: 0, run: run() }, down: { next: 0, delivered: 0, run: run() } };
      upstream.on('message', (reply: Buffer) => pass(f.down, reply, false, () => front.send(reply, from.port, from.address)));
      upstream.bind(0, '127.0.0.1');
      flows.set(key, f);
      counters.endpoints++;
      flow = f;
    }
    const up = flow.upstream;
    pass(flow.up, msg, true, () => up.send(msg, target.port, target.host));
  });
  front.bind(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: front.address().port })}\n`));
  // `reset-runs`: count drops in a row afresh from now (exchanges that start after a test's last change).
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() !== 'reset-runs') return;
    for (const f of flows.values()) for (const run of [f.up.run, f.down.run]) Object.assign(run, { key: NaN, lost: 0, max: 0 });
    process.stdout.write(`${JSON.stringify({ reset: true })}\n`);
  });
  process.stdin.once('end', () => process.exit(0));
  process.once('SIGTERM', () => {
    const lostInARow: Record<string, { up: number; down: number }> = {};
    for (const f of flows.values()) lostInARow[String(f.upstream.address().port)] = { up: f.up.run.max, down: f.down.run.max };
    process.stdout.write(`${JSON.stringify({ ...counters, lostInARow })}\n`);
    process.exit(0);
  });
}

export interface LossyRelay {
  readonly port: number;
  /** From now on `lostInARow` counts only what happens from here (resolves once the relay has done it). */
  resetRuns(): Promise<void>;
  /** Ends the relay (SIGTERM, by its pid) and returns its counters. */
  stop(): Promise<RelayCounters>;
}

export async function startLossyRelay(target: { host: string; port: number }, loss: number, jitterMs: number, seed: number): Promise<LossyRelay> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--target', `${target.host}:${target.port}`, '--loss', String(loss), '--jitter', String(jitterMs), '--seed', String(seed)];
  // stdin is a pipe the relay watches: if this process dies without stopping it, the relay ends too.
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = `${stderr}${b.toString()}`.slice(-4000)));
  const lines = createInterface({ input: child.stdout ?? process.stdin });
  const next = (): Promise<string> =>
    new Promise((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the relay exited with ${String(code)}: ${stderr}`)));
    });
  const ready = JSON.parse(await next()) as { port: number };
  let stopped: Promise<RelayCounters> | undefined;
  return {
    port: ready.port,
    resetRuns: async () => {
      const done = next();
      child.stdin?.write('reset-runs\n');
      await done;
    },
    stop: () =>
      (stopped ??= (async () => {
        const last = next();
        if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
        return JSON.parse(await last) as RelayCounters;
      })()),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    const v = i >= 0 ? process.argv[i + 1] : undefined;
    if (v === undefined) throw new Error(`--${name} is required`);
    return v;
  };
  const [host, port] = arg('target').split(':');
  runRelay({ host: host ?? '127.0.0.1', port: Number(port) }, Number(arg('loss')), Number(arg('jitter')), Number(arg('seed')));
}
