/**
 * Fault scenario 4 (test/faults/scenarios/hostile.ts): 100,000 random and mutated CoAP and DTLS datagrams
 * at a hub process while a `henge agent` and henge-fw (when the firmware toolchain is here) keep getting
 * changes over the same CoAP port. Plus the fixtures in test/faults/fixtures/hostile/, replayed one by one:
 * one of every kind the generator makes, and every crasher a run ever wrote there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { summarize } from '../../bench/lib/stats.ts';
import { HENGE_FW, firmwareToolchainMissing, makeFirmware, startFirmwareProcess } from '../helpers/firmware.ts';
import { makeSandbox, startHubProcess } from '../helpers/processes.ts';
import { CRASHER_DIR, hostileDatagrams } from './scenarios/hostile.ts';
import { COUNTED_BY } from './scenarios/hostile-gen.ts';
import type { HostileKind } from './scenarios/hostile-gen.ts';
import { faultSeed, verdictLine } from './verdict.ts';

test('faults hostile - 100,000 hostile CoAP and DTLS datagrams: the hub stays up, real devices get every change, RSS flat, every rejection counted', { timeout: 300_000 }, async (t) => {
  // henge-fw is a second, independent client on the flooded port: required under CI=true; elsewhere the
  // flood runs with the Node agent alone and says so.
  const fwMissing = firmwareToolchainMissing({ libcoap: true });
  if (fwMissing && process.env['CI'] === 'true') assert.fail(`${fwMissing} (CI=true: henge-fw must take part)`);
  if (fwMissing) t.diagnostic(`henge-fw left out: ${fwMissing}`);
  else {
    const made = makeFirmware(['build/henge-fw']);
    assert.ok(made.ok, `make build/henge-fw failed:\n${made.output}`);
  }
  const fw = fwMissing === undefined;
  const sandbox = await makeSandbox('henge-fault-hostile-fw-');
  try {
    const r = await hostileDatagrams({
      datagrams: 100_000,
      dtlsShare: 0.2,
      rate: 5_000,
      seed: faultSeed(),
      firmware: fw ? (args) => startFirmwareProcess(sandbox, args, {}, HENGE_FW) : null,
      progress: (l) => t.diagnostic(l),
    });
    const s = summarize(r.convergeMs, 0);
    const rssChange = (r.rssEndBytes - r.rssBaselineBytes) / r.rssBaselineBytes;
    const pass = r.hubAlive && r.uncounted.length === 0 && r.missedChanges === 0 && rssChange <= 0.1 && (r.metrics['henge_coap_request_errors'] ?? 0) === 0;
    const m = (k: string): number => r.metrics[`henge_${k}`] ?? 0;
    t.diagnostic(
      verdictLine('hostile', pass, {
        seed: r.seed,
        sentCoap: r.sentCoap,
        sentDtls: r.sentDtls,
        hubAlive: r.hubAlive,
        devices: r.devices.join('+'),
        changes: r.changes,
        missed: r.missedChanges,
        convergeMsP50: s.p50,
        convergeMsMax: s.max,
        rssBaselineMiB: Math.round(r.rssBaselineBytes / 104857.6) / 10,
        rssEndMiB: Math.round(r.rssEndBytes / 104857.6) / 10,
        rssPeakMiB: Math.round(r.rssPeakBytes / 104857.6) / 10,
        rssChangePct: Math.round(rssChange * 1000) / 10,
        malformed: m('coap_malformed'),
        badRequests: m('coap_bad_requests'),
        notFound: m('coap_not_found'),
        ignored: m('coap_ignored'),
        requestErrors: m('coap_request_errors'),
        dtlsInvalid: m('dtls_datagrams_invalid'),
        dtlsDropped: m('dtls_datagrams_dropped'),
        dtlsHelloVerify: m('dtls_hello_verify_requests'),
      }),
    );
    assert.equal(r.crasherFile, null, `the hub died; the last datagrams are in ${String(r.crasherFile)}`);
    assert.ok(r.hubAlive);
    assert.equal(m('coap_request_errors'), 0, 'no request failed inside the hub');
    assert.deepEqual(r.uncounted, []);
    assert.ok(m('dtls_hello_verify_requests') > 0, 'the ClientHellos reached the cookie exchange');
    assert.equal(m('dtls_handshakes_completed'), 0, 'no hostile datagram completed a handshake');
    assert.ok(r.changes >= 5 && r.missedChanges === 0, `${r.missedChanges} of ${r.changes} changes missed`);
    // Flat means no growth: a GC that gives memory back is no leak.
    assert.ok(rssChange <= 0.1, `RSS went from ${r.rssBaselineBytes} to ${r.rssEndBytes} bytes`);
  } finally {
    await sandbox.cleanup();
  }
});

/** The henge_coap_* outcome counters a rejected datagram lands in (exactly one of them). */
const OUTCOMES = ['malformed', 'bad_requests', 'not_found', 'ignored', 'request_errors'] as const;
const DTLS_OUTCOMES = ['datagrams_invalid', 'datagrams_dropped', 'hello_verify_requests', 'handshakes_refused_failures', 'handshakes_refused_address', 'handshakes_refused_busy'] as const;

test('faults hostile fixtures - each kind lands exactly under its /metrics counter; every kept crasher is survived', { timeout: 120_000 }, async () => {
  const files = (await readdir(CRASHER_DIR)).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.includes('kinds.json'), `no kinds.json in ${CRASHER_DIR}`);
  const sandbox = await makeSandbox('henge-fault-fixtures-');
  const hub = await startHubProcess(sandbox, ['--log-level', 'error']);
  const sock = createSocket('udp4');
  try {
    const auth = { authorization: `Bearer ${hub.token ?? ''}`, 'content-type': 'application/json' };
    assert.equal((await fetch(`${hub.url}/devices`, { method: 'POST', headers: auth, body: JSON.stringify({ id: 'hostile-target', values: { x: 1 } }) })).status, 201);
    const metrics = async (): Promise<Map<string, number>> => {
      const text = await (await fetch(`${hub.url}/metrics`, { headers: auth })).text();
      return new Map([...text.matchAll(/^(henge_(?:coap|dtls)_[a-z_]+) (\d+)$/gm)].map((m) => [m[1] ?? '', Number(m[2])]));
    };
    const sum = (m: Map<string, number>, prefix: string, names: readonly string[]): number => names.reduce((a, n) => a + (m.get(`${prefix}${n}`) ?? 0), 0);
    const send = async (datagrams: ReadonlyArray<{ port: string | number; hex: string; kind: string }>): Promise<void> => {
      for (const d of datagrams) {
        const dtls = d.port === 'coaps' || d.kind === 'dtls';
        sock.send(Buffer.from(d.hex, 'hex'), (dtls ? hub.coapsPort : hub.coapPort) ?? 0, '127.0.0.1');
      }
    };
    const settle = async (done: (m: Map<string, number>) => boolean): Promise<Map<string, number>> => {
      for (let i = 0; i < 200; i++) {
        const m = await metrics();
        if (done(m)) return m;
        await new Promise((r) => setTimeout(r, 10));
      }
      return metrics();
    };
    for (const f of files) {
      const fixture = JSON.parse(await readFile(join(CRASHER_DIR, f), 'utf8')) as { datagrams: Array<{ port: string | number; hex: string; kind: string }> };
      const kinds = f === 'kinds.json' ? [...new Set(fixture.datagrams.map((d) => d.kind))] : [null];
      for (const kind of kinds) {
        const batch = fixture.datagrams.filter((d) => kind === null || d.kind === kind);
        const before = await metrics();
        await send(batch);
        if (kind === 'dtls') {
          const after = await settle((m) => sum(m, 'henge_dtls_', DTLS_OUTCOMES) - sum(before, 'henge_dtls_', DTLS_OUTCOMES) >= batch.length);
          assert.equal(sum(after, 'henge_dtls_', DTLS_OUTCOMES) - sum(before, 'henge_dtls_', DTLS_OUTCOMES), batch.length, `${f}: DTLS records not all counted`);
        } else if (kind !== null) {
          const expected = COUNTED_BY[kind as HostileKind];
          const after = await settle((m) => (m.get('henge_coap_datagrams_received') ?? 0) - (before.get('henge_coap_datagrams_received') ?? 0) >= batch.length);
          const delta = (n: string): number => (after.get(`henge_coap_${n}`) ?? 0) - (before.get(`henge_coap_${n}`) ?? 0);
          assert.equal(delta('datagrams_received'), batch.length, `${kind}: received`);
          if (expected !== null) {
            const got = Object.fromEntries(OUTCOMES.map((o) => [o, delta(o)]));
            assert.deepEqual(got, { ...Object.fromEntries(OUTCOMES.map((o) => [o, 0])), [expected]: batch.length }, `${kind}: each datagram under ${expected}, and nowhere else`);
          }
        }
        assert.equal(hub.child.exitCode, null, `the hub died on ${f}${kind ? ` (${kind})` : ''}`);
        assert.equal((await fetch(`${hub.url}/healthz`)).status, 200, `the hub stopped answering after ${f}`);
      }
      assert.equal((await metrics()).get('henge_coap_request_errors'), 0, `${f}: a request failed inside the hub`);
    }
  } finally {
    sock.close();
    await hub.stop();
    await sandbox.cleanup();
  }
});
