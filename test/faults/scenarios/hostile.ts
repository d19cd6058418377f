/**
 * Fault scenario 4, hostile datagrams: a hub process gets DATAGRAMS random and mutated CoAP datagrams
 * (hostile-gen.ts: short, bad versions, reserved token lengths and option nibbles, truncated options,
 * huge option deltas, bad CBOR, Block2 far past the end or SZX 7, unknown devices, strays, mutations,
 * random bytes) on its plain CoAP port and random and mutated DTLS records, real and mutated ClientHellos
 * among them, on its coaps port, while real
 * devices (a `henge agent` process, and `henge-fw` when it is built) observe it on the same CoAP port and
 * get a change every second. Then:
 *  - the hub is up, answered no request with an internal error, and the devices got every change;
 *  - its RSS at the end is within ±10 % of its RSS once the flood was under way (its dedup cache full);
 *  - /metrics counts at least as many datagrams under each counter as were sent of the kinds it must
 *    count (random and mutated ones land anywhere, so a sum can hide a kind that lands elsewhere: the
 *    fixtures test in hostile.test.ts checks each kind alone, exactly), and every datagram sent at the
 *    CoAP port as received.
 * If the hub dies, the last datagrams sent are written to test/faults/fixtures/hostile/ as a crasher.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgentProcess } from '../../helpers/agent-process.ts';
import type { LoggingProcess } from '../../helpers/agent-process.ts';
import { rng } from '../../helpers/rng.ts';
import { makeSandbox, startHubProcess } from '../../helpers/processes.ts';
import type { HubProcess } from '../../helpers/processes.ts';
import { DtlsClient } from '../../../dtls/client.ts';
import { COUNTED_BY, HostileGenerator, hostileDtls } from './hostile-gen.ts';
import type { HostileKind } from './hostile-gen.ts';

export const CRASHER_DIR = fileURLToPath(new URL('../fixtures/hostile/', import.meta.url));

export interface HostileOptions {
  readonly datagrams: number;
  /** Share of them sent at the coaps port. */
  readonly dtlsShare: number;
  /** Datagrams per second, about. */
  readonly rate: number;
  readonly seed: number;
  /** Starts henge-fw as a real device too (its path and how), or null. */
  readonly firmware: ((args: readonly string[]) => LoggingProcess) | null;
  readonly progress?: (line: string) => void;
}

export interface HostileResult {
  readonly seed: number;
  readonly sentCoap: number;
  readonly sentDtls: number;
  readonly byKind: Readonly<Record<string, number>>;
  /** Deltas of the hub's /metrics over the flood. */
  readonly metrics: Readonly<Record<string, number>>;
  /** Per kind with a counter: sent, and the counter's delta. */
  readonly uncounted: readonly string[];
  readonly hubAlive: boolean;
  readonly devices: readonly string[];
  readonly changes: number;
  /** Change → the hub shows the device converged, ms, during the flood. */
  readonly convergeMs: readonly number[];
  readonly missedChanges: number;
  readonly rssBaselineBytes: number;
  readonly rssPeakBytes: number;
  readonly rssEndBytes: number;
  readonly crasherFile: string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The first datagram a DTLS client sends: its ClientHello (the handshake is then dropped). */
async function firstClientHello(): Promise<Buffer> {
  const sent: Buffer[] = [];
  const client = new DtlsClient((d) => void sent.push(Buffer.from(d)), { identity: 'hostile-target', key: 'not-a-key' }, 'nowhere', 1_000);
  const done = client.connect().catch(() => undefined);
  for (let i = 0; i < 100 && sent.length === 0; i++) await sleep(10);
  client.close();
  await done;
  const hello = sent[0];
  assert.ok(hello && hello[0] === 22 && hello[13] === 1, 'the DTLS client sent a ClientHello first');
  return hello;
}

async function rss(pid: number): Promise<number> {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function metrics(url: string, token: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, 'GET /metrics');
  const text = await res.text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(henge_(?:coap|dtls)_[a-z_]+) (\d+(?:\.\d+)?)$/gm)) out.set(m[1] ?? '', Number(m[2]));
  return out;
}

export async function hostileDatagrams(opts: HostileOptions): Promise<HostileResult> {
  const log = opts.progress ?? ((): void => undefined);
  const random = rng(opts.seed);
  const sandbox = await makeSandbox('henge-fault-hostile-');
  let hub: HubProcess | undefined;
  const devices: LoggingProcess[] = [];
  const sockets: Socket[] = [];
  try {
    hub = await startHubProcess(sandbox, ['--log-level', 'error', '--keepalive', '30']);
    const { coapPort, coapsPort, url } = hub;
    assert.ok(coapPort && coapsPort);
    const auth = { authorization: `Bearer ${hub.token ?? ''}`, 'content-type': 'application/json' };
    const post = async (path: string, method: string, body: unknown): Promise<void> => {
      const r = await fetch(`${url}${path}`, { method, headers: auth, body: JSON.stringify(body) });
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${await r.text()}`);
    };
    await post('/devices', 'POST', { id: 'hostile-target', values: { x: 1 } });
    const ids = ['real-node', ...(opts.firmware ? ['real-fw'] : [])];
    for (const id of ids) {
      await post('/devices', 'POST', { id, values: { n: 0 } });
      const dir = join(sandbox.dir, id);
      await mkdir(dir, { recursive: true });
      const args = ['--id', id, '--hub', `127.0.0.1:${coapPort}`, '--out', join(dir, 'config.json'), '--state', join(dir, 'state'), '--backoff-max', '2'];
      const p = id === 'real-node' ? startAgentProcess(sandbox, args) : opts.firmware?.(args);
      if (!p) continue;
      devices.push(p);
      await p.waitForLog((l) => l.msg === 'ack delivered', 30_000);
    }
    log(`real devices up: ${ids.join(', ')}; flooding ${opts.datagrams} datagrams at ~${opts.rate}/s`);
    const before = await metrics(url, hub.token ?? '');
    const hubPid = hub.child.pid ?? 0;

    // The changer: a change to every real device each second; each must converge while the flood goes on.
    const convergeMs: number[] = [];
    let changes = 0;
    let missed = 0;
    let flooding = true;
    let changerError: unknown = null;
    const changer = (async (): Promise<void> => {
      while (flooding) {
        changes++;
        const t0 = performance.now();
        for (const id of ids) await post(`/devices/${id}/values`, 'PATCH', { values: { n: changes } });
        for (const id of ids) {
          let ok = false;
          while (performance.now() - t0 < 10_000) {
            const s = (await (await fetch(`${url}/devices/${id}/state`, { headers: auth })).json()) as { appliedVersion: number | null; desiredVersion: number };
            if (s.appliedVersion === s.desiredVersion) {
              ok = true;
              break;
            }
            await sleep(10);
          }
          if (ok) convergeMs.push(Math.round(performance.now() - t0));
          else missed++;
        }
        await sleep(Math.max(0, 1000 - (performance.now() - t0)));
      }
    })().catch((err: unknown) => {
      changerError = err; // rethrown after the flood, so it is never an unhandled rejection
      flooding = false;
    });

    // A real ClientHello, from the DTLS client the simulator uses, for the cookie path.
    const clientHello = await firstClientHello();
    // The flood.
    const gen = new HostileGenerator(random, 'hostile-target');
    // Message ids are 16 bits: one socket would reuse them within the flood, and the hub rightly answers a
    // reused id from its duplicate cache instead of handling (and counting) the request again.
    const coapSocks = Array.from({ length: 4 }, () => createSocket('udp4'));
    const dtlsSocks = Array.from({ length: 8 }, () => createSocket('udp4'));
    sockets.push(...coapSocks, ...dtlsSocks);
    const pick = (list: readonly Socket[], n: number): Socket => {
      const s = list[n % list.length];
      assert.ok(s);
      return s;
    };
    const byKind: Record<string, number> = {};
    const recent: Array<{ port: number; hex: string; kind: string }> = [];
    let sentCoap = 0;
    let sentDtls = 0;
    let baseline = Number.NaN;
    let peak = 0;
    let hubAlive = true;
    const batch = Math.max(1, Math.round(opts.rate / 50));
    for (let i = 0; i < opts.datagrams && hubAlive; ) {
      for (let j = 0; j < batch && i < opts.datagrams; j++, i++) {
        if (random() < opts.dtlsShare) {
          const d = hostileDtls(random, clientHello);
          pick(dtlsSocks, i).send(d, coapsPort, '127.0.0.1');
          sentDtls++;
          byKind['dtls'] = (byKind['dtls'] ?? 0) + 1;
          recent.push({ port: coapsPort, hex: d.toString('hex'), kind: 'dtls' });
        } else {
          const { kind, bytes } = gen.next();
          pick(coapSocks, sentCoap).send(bytes, coapPort, '127.0.0.1');
          sentCoap++;
          byKind[kind] = (byKind[kind] ?? 0) + 1;
          recent.push({ port: coapPort, hex: bytes.toString('hex'), kind });
        }
        if (recent.length > 2000) recent.splice(0, 1000);
      }
      await sleep(20);
      if (i % (batch * 50) < batch) {
        const r = await rss(hubPid);
        peak = Math.max(peak, r);
        if (Number.isNaN(baseline) && i >= opts.datagrams * 0.3) baseline = r;
        hubAlive = hub.child.exitCode === null && hub.child.signalCode === null;
        log(`${i} sent, hub RSS ${(r / 1048576).toFixed(1)} MiB, ${changes} changes, ${missed} missed`);
      }
    }
    flooding = false;
    await changer;
    if (changerError !== null) throw changerError;
    await sleep(1000);
    hubAlive &&= hub.child.exitCode === null && (await fetch(`${url}/healthz`).then((r) => r.status === 200, () => false));
    let crasherFile: string | null = null;
    if (!hubAlive) {
      await mkdir(CRASHER_DIR, { recursive: true });
      crasherFile = join(CRASHER_DIR, `crasher-${opts.seed}-${Date.now()}.json`);
      await writeFile(crasherFile, `${JSON.stringify({ seed: opts.seed, note: 'the last datagrams sent before the hub died, oldest first', datagrams: recent }, null, 1)}\n`);
    }
    const rssEnd = hubAlive ? await rss(hubPid) : Number.NaN;
    const after = hubAlive ? await metrics(url, hub.token ?? '') : new Map<string, number>();
    const delta: Record<string, number> = {};
    for (const [k, v] of after) delta[k] = v - (before.get(k) ?? 0);
    const d = (name: string): number => delta[`henge_coap_${name}`] ?? 0;
    const uncounted: string[] = [];
    const need = { malformed: 0, bad_requests: 0, not_found: 0, ignored: 0 };
    for (const [kind, n] of Object.entries(byKind)) {
      const c = COUNTED_BY[kind as HostileKind];
      if (c) need[c] += n;
    }
    if (d('malformed') < need.malformed) uncounted.push(`malformed ${d('malformed')} < ${need.malformed} sent of its kinds`);
    // A request whose message id the same socket used before (a random or mutated datagram can take any)
    // is answered from the duplicate cache, rightly, and counted there instead.
    const dup = d('duplicates_answered');
    if (d('bad_requests') + dup < need.bad_requests) uncounted.push(`bad_requests ${d('bad_requests')} + duplicates ${dup} < ${need.bad_requests}`);
    if (d('not_found') + dup < need.not_found) uncounted.push(`not_found ${d('not_found')} + duplicates ${dup} < ${need.not_found}`);
    if (d('ignored') < need.ignored) uncounted.push(`ignored ${d('ignored')} < ${need.ignored}`);
    // Every datagram at the CoAP port arrived (the real devices' traffic comes on top).
    if (d('datagrams_received') < sentCoap) uncounted.push(`datagrams_received ${d('datagrams_received')} < ${sentCoap} sent`);
    const dtlsCounted = ['datagrams_invalid', 'datagrams_dropped', 'hello_verify_requests', 'handshakes_refused_failures', 'handshakes_refused_address'].reduce((a, k) => a + (delta[`henge_dtls_${k}`] ?? 0), 0);
    if (dtlsCounted < sentDtls) uncounted.push(`DTLS: ${dtlsCounted} counted < ${sentDtls} sent`);
    return {
      seed: opts.seed,
      sentCoap,
      sentDtls,
      byKind,
      metrics: delta,
      uncounted,
      hubAlive,
      devices: ids,
      changes,
      convergeMs,
      missedChanges: missed,
      rssBaselineBytes: baseline,
      rssPeakBytes: peak,
      rssEndBytes: rssEnd,
      crasherFile,
    };
  } finally {
    for (const s of sockets) s.close();
    await Promise.all(devices.map(async (p) => (p.child.kill('SIGTERM'), await p.exited)));
    await hub?.stop('SIGKILL');
    await sandbox.cleanup();
  }
}
