/**
 * A lossy, reordering UDP relay between devices and a hub, run as its own process (this machine's kernel
 * has no netem). Devices send to the relay's port; for each device endpoint the relay opens its own
 * upstream socket, so the hub still sees one endpoint per device. In each direction a datagram is
 * dropped with probability LOSS, else delivered after a uniform random delay in [0, JITTER] ms, so
 * datagrams overtake each other (reordering). Its random choices follow a seed; which datagram meets
 * which choice depends on the order they arrive in, so a seed replays a run closely, not exactly. It
 * records every datagram per device endpoint (relay-trace.ts reads what the losses explain).
 *
 *   node --import tsx test/helpers/lossy-relay.ts --target 127.0.0.1:5683 --loss 0.2 --jitter 40 --seed 7
 *
 * Prints `{"port":N}` once listening; on SIGTERM prints its counters and traces as one JSON line and exits 0.
 * `startLossyRelay()` runs it from a test.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { traceEvent } from './relay-trace.ts';
import type { TraceEvent } from './relay-trace.ts';
import { rng } from './rng.ts';

export interface RelayCounters {
  readonly forwarded: number;
  readonly dropped: number;
  /** Datagrams delivered before one that arrived earlier in the same flow and direction. */
  readonly reordered: number;
  readonly endpoints: number;
  /**
   * Per device endpoint, by the port the hub sees it on (the relay's upstream socket): every datagram,
   * timed by the wall clock (relay-trace.ts reads them).
   */
  readonly traces: Readonly<Record<string, readonly TraceEvent[]>>;
}

interface Flow {
  readonly upstream: Socket;
  /** Per direction: sequence of arrival, and the highest sequence delivered so far. */
  up: { next: number; delivered: number };
  down: { next: number; delivered: number };
  readonly trace: TraceEvent[];
}

/** Datagrams kept per device endpoint (a guard: a test's run records a few hundred). */
const TRACE_CAP = 20_000;

function runRelay(target: { host: string; port: number }, loss: number, jitterMs: number, seed: number): void {
  const random = rng(seed);
  const counters = { forwarded: 0, dropped: 0, reordered: 0, endpoints: 0 };
  const flows = new Map<string, Flow>();
  const front = createSocket('udp4');
  const pass = (flow: Flow, bytes: Buffer, up: boolean, send: () => void): void => {
    const dir = up ? flow.up : flow.down;
    const dropped = random() < loss;
    const event = traceEvent(bytes, up, dropped, Date.now());
    if (event && flow.trace.length < TRACE_CAP) flow.trace.push(event);
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
      const f: Flow = { upstream, up: { next: 0, delivered: 0 }, down: { next: 0, delivered: 0 }, trace: [] };
      upstream.on('message', (reply: Buffer) => pass(f, reply, false, () => front.send(reply, from.port, from.address)));
      upstream.bind(0, '127.0.0.1');
      flows.set(key, f);
      counters.endpoints++;
      flow = f;
    }
    const up = flow.upstream;
    pass(flow, msg, true, () => up.send(msg, target.port, target.host));
  });
  front.bind(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: front.address().port })}\n`));
  process.stdin.resume();
  process.stdin.once('end', () => process.exit(0));
  process.once('SIGTERM', () => {
    const traces: Record<string, TraceEvent[]> = {};
    for (const f of flows.values()) traces[String(f.upstream.address().port)] = f.trace;
    // A pipe takes a long line in pieces: exit once all of it is written.
    process.stdout.write(`${JSON.stringify({ ...counters, traces })}\n`, () => process.exit(0));
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
