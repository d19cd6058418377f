/**
 * The load generator, in its own process (never on the hub's event loop): `concurrency` clients, each
 * with one keep-alive connection, send PATCH /devices/{id}/values { values: { counter: k } } back to
 * back; k grows with every request, so every request changes a value and appends one event. A reply
 * is counted only when it is a 2xx, which the hub sends after the fsync of the batch holding it.
 *
 * IPC with bench/store/run.ts:
 *   parent → { type: 'start', url, token, devices, concurrency, warmupMs, durationMs }
 *   child  → { type: 'window', at: 'start' | 'end' }   (so the parent can scrape the hub at both edges)
 *   child  → { type: 'result', ...LoadResult }
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isMessage, sendToParent } from '../lib/child.ts';
import { summarize } from '../lib/stats.ts';
import type { Summary } from '../lib/stats.ts';
import { deviceId } from './fixtures.ts';

export interface LoadConfig {
  readonly url: string;
  readonly token: string;
  readonly devices: number;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface LoadResult {
  /** 2xx replies received inside the timed window. */
  readonly ok: number;
  /** Non-2xx replies and transport errors inside the timed window. */
  readonly errors: number;
  /** Over the whole run, warm-up and drain included. */
  readonly errorsTotal: number;
  readonly firstErrors: readonly string[];
  readonly okTotal: number;
  /** Measured window, ms (the client's clock). */
  readonly windowMs: number;
  readonly perSecond: number;
  /** Request latency as the client sees it (send → last byte of the reply), ms. */
  readonly latencyMs: Summary;
  /** CPU the load generator itself used during the window, as a fraction of one core. */
  readonly clientCpuCores: number;
  readonly sockets: number;
}

type Phase = 'warmup' | 'measure' | 'drain';

function patch(agent: Agent, url: URL, path: string, token: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'PATCH',
        path,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let text = '';
        if (status >= 200 && status < 300) res.resume();
        else res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        res.on('end', () => resolve({ status, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function run(cfg: LoadConfig): Promise<LoadResult> {
  const url = new URL(cfg.url);
  const agent = new Agent({ keepAlive: true, maxSockets: cfg.concurrency, maxFreeSockets: cfg.concurrency });
  let phase: Phase = 'warmup';
  let counter = 0;
  let ok = 0;
  let okTotal = 0;
  let errors = 0;
  let errorsTotal = 0;
  const firstErrors: string[] = [];
  const latencies: number[] = [];
  const sockets = new Set<unknown>();
  agent.on('free', (s: unknown) => sockets.add(s));

  const noteError = (what: string): void => {
    errorsTotal++;
    if (phase === 'measure') errors++;
    if (firstErrors.length < 5) firstErrors.push(what);
  };

  const worker = async (): Promise<void> => {
    while (phase !== 'drain') {
      counter++;
      const k = counter;
      const body = `{"values":{"counter":${k}}}`;
      const t0 = performance.now();
      try {
        const r = await patch(agent, url, `/devices/${deviceId(k % cfg.devices)}/values`, cfg.token, body);
        const ms = performance.now() - t0;
        if (r.status >= 200 && r.status < 300) {
          okTotal++;
          if (phase === 'measure') {
            ok++;
            latencies.push(ms);
          }
        } else {
          noteError(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
        }
      } catch (err) {
        noteError((err as Error).message);
      }
    }
  };

  const workers = Array.from({ length: cfg.concurrency }, () => worker());
  await new Promise((r) => setTimeout(r, cfg.warmupMs));
  phase = 'measure';
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  sendToParent({ type: 'window', at: 'start' });
  await new Promise((r) => setTimeout(r, cfg.durationMs));
  phase = 'drain';
  const windowMs = performance.now() - w0;
  const cpu = process.cpuUsage(cpu0);
  sendToParent({ type: 'window', at: 'end' });
  await Promise.all(workers);
  agent.destroy();
  return {
    ok,
    errors,
    errorsTotal,
    firstErrors,
    okTotal,
    windowMs,
    perSecond: Math.round((ok / windowMs) * 1000),
    latencyMs: summarize(latencies),
    clientCpuCores: Math.round(((cpu.user + cpu.system) / 1000 / windowMs) * 100) / 100,
    sockets: sockets.size,
  };
}

process.on('message', (m: unknown) => {
  if (!isMessage(m, 'start')) return;
  const cfg = m as unknown as LoadConfig;
  run(cfg).then(
    (result) => {
      sendToParent({ type: 'result', ...result });
      process.disconnect?.();
    },
    (err: unknown) => {
      process.stderr.write(`load client: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
});
