/**
 * Closing the hub while a device's ack is being made durable: the ack is recorded and answered before the
 * socket closes (a graceful stop used to answer on the closed socket and exit 1), and a datagram that
 * arrives once closing has begun is left for the next hub.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckStatus, encodeAck } from '../../protocol/ack.ts';
import { ContentFormat, Method } from '../../protocol/coap.ts';
import { decodeSnapshot } from '../../protocol/snapshot.ts';
import { addDevice } from '../domain/index.ts';
import { startHub } from '../hub.ts';
import type { RunningHub } from '../hub.ts';
import { CoapTestClient } from '../../test/helpers/coap-client.ts';
import { HubCore } from '../domain/core.ts';
import { DeviceRuntime } from '../domain/runtime.ts';
import { LevelStore } from '../store/level-store.ts';
import { FaultyStore } from '../../test/helpers/faulty-store.ts';
import { CoapEndpoint } from './endpoint.ts';
import { UdpTransport } from './udp-transport.ts';

const ctx = { actor: 'test' };

async function withHub(run: (hub: RunningHub, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'henge-coap-close-'));
  try {
    await run(await startHub({ data: dir, port: 0, coap: { port: 0, keepaliveS: 60 } }), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Turns the event loop until `done()` holds; setImmediate, so no timer granularity hides the moment. */
async function spinUntil(what: string, done: () => boolean, maxTurns = 100_000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (done()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`${what}: not after ${maxTurns} turns of the event loop`);
}

test('close - an ack that arrived before close is recorded and answered 2.04 before the socket closes', async () => {
  await withHub(async (hub, dir) => {
    let version = -1;
    await addDevice(hub.core, ctx, { id: 'closing-1', values: { a: 1 } });
    const coap = hub.coap;
    assert.ok(coap && hub.coapPort !== null);
    const dev = await CoapTestClient.open(hub.coapPort);
    try {
      const first = await dev.request({ code: Method.Get, path: '/d/closing-1/c' });
      version = decodeSnapshot(first.payload).version;
      const ack = encodeAck({ version, status: AckStatus.Applied });
      const answered = dev.request({ code: Method.Post, path: '/d/closing-1/a', payload: Buffer.from(ack), contentFormat: ContentFormat.Cbor, timeoutMs: 10_000 });
      // Close the moment the endpoint has the ack: its recording is still in flight.
      await spinUntil('the hub received the ack', () => coap.counters.acksReceived === 1);
      await hub.close();
      const r = await answered;
      assert.equal(r.code, '2.04', 'the ack was answered before the socket closed');
    } finally {
      await dev.close();
    }
    // What was answered is durable: a hub on the same data has the version as applied.
    const again = await startHub({ data: dir, port: 0 });
    try {
      assert.equal(again.core.state.reports.get('closing-1')?.appliedVersion, version);
    } finally {
      await again.close();
    }
  });
});

test('close - a request that arrives once closing began gets no answer, and nothing throws', async () => {
  await withHub(async (hub) => {
    await addDevice(hub.core, ctx, { id: 'closing-2', values: { a: 1 } });
    const coap = hub.coap;
    assert.ok(coap && hub.coapPort !== null);
    const dev = await CoapTestClient.open(hub.coapPort);
    try {
      // One ack in flight keeps the socket open while closing; a second request meanwhile is left alone.
      const first = await dev.request({ code: Method.Get, path: '/d/closing-2/c' });
      const ack = encodeAck({ version: decodeSnapshot(first.payload).version, status: AckStatus.Applied });
      const acked = dev.request({ code: Method.Post, path: '/d/closing-2/a', payload: Buffer.from(ack), contentFormat: ContentFormat.Cbor, timeoutMs: 10_000 });
      await spinUntil('the hub received the ack', () => coap.counters.acksReceived === 1);
      const closing = hub.close();
      const late = dev.request({ code: Method.Get, path: '/d/closing-2/c', timeoutMs: 1_000 }).then(
        () => 'answered',
        () => 'no answer',
      );
      await closing;
      assert.equal((await acked).code, '2.04');
      assert.equal(await late, 'no answer');
    } finally {
      await dev.close();
    }
  });
});

test('close - an ack whose write never ends does not keep the endpoint from closing: 5 s, then a warning naming what was owed', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'henge-coap-close-stall-'));
  const store = new FaultyStore(new LevelStore(join(dir, 'store')));
  const core = await HubCore.open(store);
  let release = (): void => undefined;
  const transport = await UdpTransport.open({ port: 0, host: '127.0.0.1' });
  const warnings: Array<{ obj: object; msg: string }> = [];
  const endpoint = new CoapEndpoint(transport, core, new DeviceRuntime(60), { keepaliveS: 60, log: { warn: (obj, msg) => warnings.push({ obj, msg }), error: () => undefined } });
  const dev = await CoapTestClient.open(endpoint.port);
  try {
    await addDevice(core, ctx, { id: 'stalled', values: { a: 1 } });
    const first = await dev.request({ code: Method.Get, path: '/d/stalled/c' });
    release = store.hold();
    const ack = encodeAck({ version: decodeSnapshot(first.payload).version, status: AckStatus.Applied });
    void dev.request({ code: Method.Post, path: '/d/stalled/a', payload: Buffer.from(ack), contentFormat: ContentFormat.Cbor, timeoutMs: 10_000 }).catch(() => undefined);
    await spinUntil('the endpoint received the ack', () => endpoint.counters.acksReceived === 1);
    const t0 = performance.now();
    await endpoint.close();
    const ms = performance.now() - t0;
    assert.ok(ms >= 4_900 && ms < 8_000, `closed after ${Math.round(ms)} ms`);
    assert.deepEqual(warnings.map((w) => w.msg), ['closing with answers still owed (their requests were not answered)']);
    assert.equal((warnings[0]?.obj as { owed?: number }).owed, 1);
  } finally {
    await dev.close();
    release(); // the disk answers again: the held write ends and the core can close
    await core.close();
    await rm(dir, { recursive: true, force: true });
  }
});
