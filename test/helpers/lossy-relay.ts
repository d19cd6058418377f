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
}

interface Flow {
  readonly upstream: Socket;
  /** Per direction: sequence of arrival, and the highest sequence delivered so far. */
  up: { next: number; delivered: number };
  down: { next: number; delivered: number };
}

function runRelay(target: { host: string; port: number }, loss: number, jitterMs: number, seed: number): void {
  const random = rng(seed);
  const counters = { forwarded: 0, dropped: 0, reordered: 0, endpoints: 0 };
  const flows = new Map<string, Flow>();
  const front = createSocket('udp4');
  const pass = (dir: Flow['up'], send: () => void): void => {
    if (random() < loss) {
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
      const f: Flow = { upstream, up: { next: 0, delivered: 0 }, down: { next: 0, delivered: 0 } };
      upstream.on('message', (reply: Buffer) => pass(f.down, () => front.send(reply, from.port, from.address)));
      upstream.bind(0, '127.0.0.1');
      flows.set(key, f);
      counters.endpoints++;
      flow = f;
    }
    const up = flow.upstream;
    pass(flow.up, () => up.send(msg, target.port, target.host));
  });
  front.bind(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: front.address().port })}\n`));
  process.stdin.resume();
  process.stdin.once('end', () => process.exit(0));
  process.once('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify(counters)}\n`);
    process.exit(0);
  });
}

export interface LossyRelay {
  readonly port: number;
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
