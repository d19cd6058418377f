/**
 * The simulator against a real hub (startHub with its CoAP endpoint on a free port, real UDP sockets on
 * loopback): devices register, a group change reaches all of them, they ack, and the hub's fleet view
 * shows them converged; a snapshot too large for one datagram arrives block-wise; devices re-register
 * within Max-Age.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../hub/hub.ts';
import type { RunningHub } from '../hub/hub.ts';
import { addDevice, setValues } from '../hub/domain/index.ts';
import { Simulator } from './index.ts';
import type { AckedEvent, NotifiedEvent } from './index.ts';

let hub: RunningHub;
let dir = '';
let token = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'henge-sim-'));
  hub = await startHub({ data: dir, port: 0, coap: { port: 0, host: '127.0.0.1' } });
  assert.ok(hub.firstToken);
  token = hub.firstToken;
});

after(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(hub.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, body: (await r.json()) as T };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface FleetRow {
  device: string;
  sync: string;
  desiredVersion: number;
  appliedVersion: number | null;
  online: boolean;
}

test('sim - 20 devices register, a group change reaches all, they ack and the fleet converges', async () => {
  const ids = Array.from({ length: 20 }, (_, i) => `sim-t${String(i + 1).padStart(2, '0')}`);
  for (const id of ids) {
    const r = await api('POST', '/devices', { id, labels: { fleet: 'simtest' } });
    assert.equal(r.status, 201);
  }
  const sim = new Simulator({ hub: `127.0.0.1:${String(hub.coapPort)}` });
  const notified: NotifiedEvent[] = [];
  const acked: AckedEvent[] = [];
  sim.on('notified', (e) => notified.push(e));
  sim.on('acked', (e) => acked.push(e));
  try {
    await sim.start(ids);
    const reg = await sim.registration();
    assert.deepEqual({ devices: reg.devices, observing: reg.observing, failed: reg.failed }, { devices: 20, observing: 20, failed: 0 });
    assert.equal(hub.coap?.registry.size, 20, 'the hub holds 20 observe relations');
    // Each device applies and acks the snapshot its registration carried.
    await waitFor('the registration acks', () => acked.length === 20);

    const r = await api<{ seq: number }>('PUT', '/groups/simtest', { selector: 'fleet=simtest', values: { mode: 'eco', interval: 30 } });
    assert.equal(r.status, 200);
    const version = r.body.seq;
    await waitFor('20 acks of the group change', () => acked.filter((e) => e.version === version).length === 20);

    const changed = notified.filter((e) => e.version === version);
    assert.deepEqual(new Set(changed.map((e) => e.device)), new Set(ids), 'every device got the change');
    assert.ok(changed.every((e) => e.applied && e.via === 'notify'));
    for (const e of acked.filter((x) => x.version === version)) {
      assert.equal(e.code, '2.04');
      assert.ok(e.at >= e.sentAt && e.sentAt >= e.notifiedAt, 'timestamps are in order');
    }
    const c = sim.counters;
    assert.equal(c.applied, 40);
    assert.equal(c.acksAnswered, 40);
    assert.equal(c.acksToNotifications, 20, 'each confirmable notification was ACKed');
    assert.equal(c.timeouts, 0);
    assert.equal(c.malformed, 0);

    const fleet = await api<{ summary: Record<string, number>; devices: FleetRow[] }>('GET', '/fleet');
    assert.equal(fleet.status, 200);
    const mine = fleet.body.devices.filter((d) => ids.includes(d.device));
    assert.equal(mine.length, 20);
    for (const d of mine) {
      assert.equal(d.sync, 'converged', `${d.device} is converged`);
      assert.equal(d.appliedVersion, version);
      assert.equal(d.desiredVersion, version);
      assert.equal(d.online, true);
    }
    assert.ok((fleet.body.summary['converged'] ?? 0) >= 20);
  } finally {
    await sim.stop({ deregister: true });
  }
  assert.equal(hub.coap?.registry.size, 0, 'stop({ deregister: true }) ended every relation');
});

test('sim - a snapshot larger than one datagram arrives block-wise and is acked', async () => {
  const id = 'sim-big';
  assert.equal((await api('POST', '/devices', { id })).status, 201);
  const sim = new Simulator({ hub: `127.0.0.1:${String(hub.coapPort)}` });
  const acked: AckedEvent[] = [];
  const notified: NotifiedEvent[] = [];
  sim.on('acked', (e) => acked.push(e));
  sim.on('notified', (e) => notified.push(e));
  try {
    await sim.start([id]);
    await sim.registration();
    await waitFor('the registration ack', () => acked.length === 1);
    const big = 'x'.repeat(3000);
    const r = await api<{ seq: number }>('PATCH', `/devices/${id}/values`, { values: { blob: big, n: 7 } });
    assert.equal(r.status, 200);
    await waitFor('the ack of the large snapshot', () => acked.some((e) => e.version === r.body.seq));
    const n = notified.find((e) => e.version === r.body.seq);
    assert.equal(n?.via, 'block', 'the rest of the snapshot was fetched with Block2');
    assert.equal(sim.counters.blockRequests, 2, '3 KB in 1,024-byte blocks: blocks 1 and 2 were requested');
    assert.equal(sim.device(id)?.appliedVersion, r.body.seq);
    const state = await api<{ appliedVersion: number }>('GET', `/devices/${id}/state`);
    assert.equal(state.body.appliedVersion, r.body.seq);
  } finally {
    await sim.stop();
  }
});

test('sim - devices re-register before Max-Age runs out, with their ETag, and keep getting changes', async () => {
  const dir2 = await mkdtemp(join(tmpdir(), 'henge-sim-keepalive-'));
  const hub2 = await startHub({ data: dir2, port: 0, coap: { port: 0, host: '127.0.0.1', keepaliveS: 1 } });
  const sim = new Simulator({ hub: `127.0.0.1:${String(hub2.coapPort)}` });
  const acked: AckedEvent[] = [];
  const codes: string[] = [];
  sim.on('acked', (e) => acked.push(e));
  sim.on('registered', (e) => codes.push(e.code));
  try {
    const ids = ['ka-1', 'ka-2', 'ka-3'];
    for (const id of ids) await addDevice(hub2.core, { actor: 'test' }, { id });
    await sim.start(ids);
    await sim.registration();
    await waitFor('the registration acks', () => acked.length === 3);
    // Max-Age is 1 s: each device registers again within it, twice in 2.2 s.
    await new Promise((r) => setTimeout(r, 2200));
    assert.ok(sim.counters.registrationsSent >= 9, `registrations sent: ${sim.counters.registrationsSent}`);
    assert.ok(codes.slice(3).every((c) => c === '2.03'), `re-registrations carry the ETag and get 2.03 Valid: ${codes.join(',')}`);
    assert.equal(acked.length, 3, 'a 2.03 is nothing new to apply or ack');
    assert.equal(hub2.coap?.registry.size, 3, 'one relation per device, replaced, not added');
    const r = await setValues(hub2.core, { actor: 'test' }, { device: 'ka-2' }, { mode: 'on' }, false);
    await waitFor('the change after re-registrations', () => acked.some((e) => e.device === 'ka-2' && e.version === r.seq));
  } finally {
    await sim.stop();
    await hub2.close();
    await rm(dir2, { recursive: true, force: true });
  }
});

test('sim - with ackStatus null devices apply but send no ack; the hub shows them pending until acks resume', async () => {
  const ids = ['sim-q1', 'sim-q2', 'sim-q3'];
  for (const id of ids) await addDevice(hub.core, { actor: 'test' }, { id, values: { n: 1 } });
  const coapPort = hub.coapPort;
  assert.ok(coapPort !== null);
  const sim = new Simulator({ hub: `127.0.0.1:${coapPort}`, ackStatus: null });
  try {
    const applied = new Map<string, number>();
    sim.on('notified', (e: NotifiedEvent) => {
      if (e.applied) applied.set(e.device, e.version);
    });
    await sim.start(ids);
    await sim.registration();
    await waitFor('three registrations applied', () => applied.size === 3);
    await setValues(hub.core, { actor: 'test' }, { device: 'sim-q1' }, { n: 2 }, false);
    const v2 = hub.core.state.snapshots.get('sim-q1')?.snapshot.version;
    await waitFor('the change applied', () => applied.get('sim-q1') === v2);
    await waitFor('devices idle', () => sim.stats().idle === 3);
    assert.equal(sim.counters.acksSent, 0);
    assert.equal(sim.counters.acksWithheld, 4, 'three registrations and one change');
    assert.equal(hub.core.state.reports.get('sim-q1')?.appliedVersion ?? null, null, 'the hub never heard of it');
    sim.ackStatus = 0;
    await setValues(hub.core, { actor: 'test' }, { device: 'sim-q1' }, { n: 3 }, false);
    const v3 = hub.core.state.snapshots.get('sim-q1')?.snapshot.version;
    await waitFor('the ack of the next change recorded', () => hub.core.state.reports.get('sim-q1')?.appliedVersion === v3);
    assert.equal(sim.counters.acksSent, 1);
  } finally {
    await sim.stop();
  }
});

test('sim - over coaps, each device with its own key and DTLS session, a change reaches every device and they ack', async () => {
  const dir2 = await mkdtemp(join(tmpdir(), 'henge-sim-dtls-'));
  const secure = await startHub({ data: dir2, port: 0, coaps: { port: 0, host: '127.0.0.1' } });
  const ids = ['sd-1', 'sd-2', 'sd-3', 'sd-4', 'sd-5'];
  const keys = new Map<string, string>();
  const sim = new Simulator({ hub: `127.0.0.1:${String(secure.coapsPort)}`, keyOf: (id) => keys.get(id) });
  try {
    assert.ok(secure.keystore && secure.dtls);
    for (const id of ids) {
      await addDevice(secure.core, { actor: 'test' }, { id, values: { n: 1 } });
      keys.set(id, (await secure.keystore.issue(id)).key);
    }
    const acked = new Map<string, number>();
    sim.on('acked', (e: AckedEvent) => acked.set(e.device, e.version));
    await sim.start(ids);
    const reg = await sim.registration();
    assert.equal(reg.observing, ids.length);
    assert.equal(secure.dtls.counters.handshakesCompleted, ids.length, 'one DTLS session per device');
    await setValues(secure.core, { actor: 'test' }, { device: 'sd-3' }, { n: 2 }, false);
    const v = secure.core.state.snapshots.get('sd-3')?.snapshot.version;
    await waitFor('sd-3 acks the change over DTLS', () => acked.get('sd-3') === v);
    assert.equal(secure.core.state.reports.get('sd-3')?.appliedVersion, v);
  } finally {
    await sim.stop();
    await secure.close();
    await rm(dir2, { recursive: true, force: true });
  }
});
