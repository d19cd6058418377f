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
import { HENGE_FW, makeFirmware, needFirmwareToolchain, startFirmwareProcess } from '../helpers/firmware.ts';
import { makeSandbox, startHubProcess } from '../helpers/processes.ts';
import { CRASHER_DIR, hostileDatagrams } from './scenarios/hostile.ts';
import { faultSeed, verdictLine } from './verdict.ts';

test('faults hostile - 100,000 hostile CoAP and DTLS datagrams: the hub stays up, real devices get every change, RSS flat, every rejection counted', { timeout: 300_000 }, async (t) => {
  // henge-fw is a second, independent client on the flooded port (a skip of the toolchain fails under CI=true).
  const fw = needFirmwareToolchain(t, { libcoap: true }) && makeFirmware(['build/henge-fw']).ok;
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
    const pass = r.hubAlive && r.uncounted.length === 0 && r.missedChanges === 0 && Math.abs(rssChange) <= 0.1 && (r.metrics['henge_coap_request_errors'] ?? 0) === 0;
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
    assert.ok(r.changes >= 5 && r.missedChanges === 0, `${r.missedChanges} of ${r.changes} changes missed`);
    assert.ok(Math.abs(rssChange) <= 0.1, `RSS went from ${r.rssBaselineBytes} to ${r.rssEndBytes} bytes`);
  } finally {
    await sandbox.cleanup();
  }
});

test('faults hostile fixtures - each kept datagram is answered or dropped and counted, and the hub stays up', async () => {
  const files = (await readdir(CRASHER_DIR)).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.length > 0, `no fixtures in ${CRASHER_DIR}`);
  const sandbox = await makeSandbox('henge-fault-fixtures-');
  const hub = await startHubProcess(sandbox, ['--log-level', 'error']);
  const sock = createSocket('udp4');
  try {
    const auth = { authorization: `Bearer ${hub.token ?? ''}`, 'content-type': 'application/json' };
    await fetch(`${hub.url}/devices`, { method: 'POST', headers: auth, body: JSON.stringify({ id: 'hostile-target', values: { x: 1 } }) });
    let sent = 0;
    for (const f of files) {
      const fixture = JSON.parse(await readFile(join(CRASHER_DIR, f), 'utf8')) as { datagrams: Array<{ port: 'coap' | 'coaps' | number; hex: string; kind: string }> };
      for (const d of fixture.datagrams) {
        const port = d.port === 'coaps' ? hub.coapsPort : d.port === 'coap' ? hub.coapPort : d.kind === 'dtls' ? hub.coapsPort : hub.coapPort;
        sock.send(Buffer.from(d.hex, 'hex'), port ?? 0, '127.0.0.1');
        sent++;
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(hub.child.exitCode, null, `the hub died on ${f}`);
      assert.equal((await fetch(`${hub.url}/healthz`)).status, 200, `the hub stopped answering after ${f}`);
    }
    const text = await (await fetch(`${hub.url}/metrics`, { headers: auth })).text();
    const v = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    assert.equal(v('henge_coap_request_errors'), 0);
    const counted = ['henge_coap_datagrams_received', 'henge_dtls_datagrams_invalid', 'henge_dtls_datagrams_dropped', 'henge_dtls_hello_verify_requests'].reduce((a, n) => a + v(n), 0);
    assert.ok(counted >= sent, `${counted} counted of ${sent} sent`);
  } finally {
    sock.close();
    await hub.stop();
    await sandbox.cleanup();
  }
});
