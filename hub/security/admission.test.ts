/**
 * Fleet provisioning, admission and key rotation end to end: an in-process hub with coaps on a free port,
 * the Node agent's CoAP client (DTLS through the addon) as the device, the REST API as the admin.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../hub.ts';
import type { RunningHub } from '../hub.ts';
import { CoapClient } from '../../agent/coap-client.ts';
import { ENROLL_PATH, decodeEnrolled, encodeEnrollRequest, parseEnrollment } from '../../protocol/enroll.ts';
import type { Enrolled } from '../../protocol/enroll.ts';
import { devicePath, Resource } from '../../protocol/paths.ts';
import { addDevice, events as readEvents } from '../domain/index.ts';
import type { HengeEvent } from '../domain/index.ts';

let hub: RunningHub;
let dir = '';
let admin = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'henge-admission-'));
  hub = await startHub({ data: dir, port: 0, coaps: { port: 0, host: '127.0.0.1', enrollPerMinute: 1000 } });
  assert.ok(hub.firstToken);
  admin = hub.firstToken;
});

after(async () => {
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

async function api<T>(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, token = admin): Promise<{ status: number; json: T }> {
  const res = await hub.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(body !== undefined ? { payload: body as object } : {}) });
  return { status: res.statusCode, json: res.json<T>() };
}

const hubAt = (h: RunningHub = hub) => ({ address: '127.0.0.1', family: 4 as const, port: h.coapsPort ?? 0 });

/** A DTLS session as `identity`; rejects when the handshake fails. */
const connect = (identity: string, key: string, h: RunningHub = hub): Promise<CoapClient> => CoapClient.open(hubAt(h), { psk: { identity, key } });

/** Whether a handshake as `identity` with `key` completes (and the device then reads its config); bounded. */
async function works(identity: string, key: string): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in 10 s as ${identity}; transport ${JSON.stringify(hub.dtls?.counters)}`)), 10_000);
  });
  try {
    return await Promise.race([tryOnce(identity, key), bound]);
  } finally {
    clearTimeout(timer);
  }
}

async function tryOnce(identity: string, key: string): Promise<boolean> {
  let client: CoapClient;
  try {
    client = await connect(identity, key);
  } catch {
    return false;
  }
  try {
    const res = await client.request({ method: 'GET', path: devicePath(identity, Resource.Config) });
    return res.code === '2.05';
  } finally {
    await client.close();
  }
}

async function provisioningToken(body: object): Promise<{ id: string; token: string }> {
  const r = await api<{ id: string; token: string }>('POST', '/provisioning', body);
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json;
}

/** Enrolls as `device` with a fleet token; the hub's answer (code and, on 2.04, what it sent). */
async function enrollWith(token: string, device: string, labels: Record<string, string> = {}, h: RunningHub = hub): Promise<{ code: string; enrolled?: Enrolled; text: string }> {
  const parsed = parseEnrollment(token);
  assert.ok(parsed);
  const client = await connect(parsed.identity, parsed.secret, h);
  try {
    const res = await client.request({ method: 'POST', path: [ENROLL_PATH], payload: encodeEnrollRequest({ device, labels }) });
    return { code: res.code, text: res.payload.toString('utf8'), ...(res.code === '2.04' ? { enrolled: decodeEnrolled(res.payload) } : {}) };
  } finally {
    await client.close();
  }
}

async function eventsOf(device: string): Promise<HengeEvent[]> {
  return (await readEvents(hub.core, { device, limit: 100 })).events;
}

/** The device's first event of `type`, waiting for it (retiring a key is recorded after the handshake). */
async function eventOf(device: string, type: string): Promise<HengeEvent | undefined> {
  for (let i = 0; i < 100; i++) {
    const e = (await eventsOf(device)).find((x) => x.type === type);
    if (e) return e;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

test('provisioning - a device enrolls itself, waits pending (its handshake fails), and works once a person accepts it', { timeout: 30_000 }, async () => {
  const { token } = await provisioningToken({ name: 'line-1', labels: { line: '1' } });
  const r = await enrollWith(token, 'fab-0001', { model: 'thermo-v2' });
  assert.equal(r.code, '2.04', r.text);
  assert.ok(r.enrolled);
  assert.equal(r.enrolled.device, 'fab-0001');
  assert.equal(r.enrolled.admission, 'pending');
  assert.equal(r.enrolled.hubId, hub.core.state.meta?.hubId);
  // The token's labels and the reported ones, both kept.
  assert.deepEqual(hub.core.state.devices.get('fab-0001')?.labels, { model: 'thermo-v2', line: '1' });
  const notAdmitted = hub.credentials?.counters.notAdmitted ?? 0;
  assert.equal(await works('fab-0001', r.enrolled.key), false, 'a pending device must not complete a handshake');
  assert.ok((hub.credentials?.counters.notAdmitted ?? 0) > notAdmitted);
  const pending = await api<{ devices: Array<{ id: string; admission?: string }> }>('GET', '/devices');
  assert.equal(pending.json.devices.find((d) => d.id === 'fab-0001')?.admission, 'pending');

  const accepted = await api<{ device: { admission?: string } }>('POST', '/devices/fab-0001/accept', {});
  assert.equal(accepted.status, 200);
  assert.equal(accepted.json.device.admission, undefined);
  assert.equal(await works('fab-0001', r.enrolled.key), true);
  const types = (await eventsOf('fab-0001')).map((e) => e.type);
  assert.ok(types.includes('device.added') && types.includes('device.admitted') && types.includes('device.key_issued'), types.join());
  const decision = (await eventsOf('fab-0001')).find((e) => e.type === 'device.admitted');
  assert.ok(decision && decision.actor !== 'hub' && !decision.actor.startsWith('provisioning:'), `a person decided: ${decision?.actor}`);
});

test('provisioning - a rule accepts matching devices at once; the others wait for a person', { timeout: 30_000 }, async () => {
  const { id, token } = await provisioningToken({ name: 'line-2', accept: 'model=thermo-v2' });
  const yes = await enrollWith(token, 'fab-0101', { model: 'thermo-v2' });
  const no = await enrollWith(token, 'fab-0102', { model: 'other' });
  assert.equal(yes.enrolled?.admission, undefined);
  assert.equal(no.enrolled?.admission, 'pending');
  assert.ok(yes.enrolled && no.enrolled);
  assert.equal(await works('fab-0101', yes.enrolled.key), true);
  assert.equal(await works('fab-0102', no.enrolled.key), false);
  const decision = (await eventsOf('fab-0101')).find((e) => e.type === 'device.admitted');
  assert.ok(decision && decision.type === 'device.admitted');
  assert.deepEqual(decision.data, { device: 'fab-0101', decision: 'accepted', rule: id });
});

test('provisioning - a rejected device is refused at the handshake; a taken id is never handed out again', { timeout: 30_000 }, async () => {
  const { token } = await provisioningToken({ name: 'line-3' });
  const r = await enrollWith(token, 'fab-0201');
  assert.ok(r.enrolled);
  const rejected = await api<{ device: { admission?: string } }>('POST', '/devices/fab-0201/reject', {});
  assert.equal(rejected.json.device.admission, 'rejected');
  assert.equal(await works('fab-0201', r.enrolled.key), false);
  const again = await api<{ code: string }>('POST', '/devices/fab-0201/accept', {});
  assert.equal(again.status, 409);
  assert.equal(again.json.code, 'HENGE_E_NOT_PENDING');
  // Neither a rejected id nor an admin's device can be taken over with a fleet token.
  const retry = await enrollWith(token, 'fab-0201');
  assert.equal(retry.code, '4.03');
  assert.match(retry.text, /taken/);
  await addDevice(hub.core, { actor: 'test' }, { id: 'fab-admin' });
  const { key } = await hub.keystore!.issue('fab-admin');
  const takeover = await enrollWith(token, 'fab-admin');
  assert.equal(takeover.code, '4.03');
  assert.equal(await works('fab-admin', key), true, 'the existing device keeps its key');
  // A bad request is refused with a reason.
  const bad = await enrollWith(token, 'fab-0202', { 'Bad Key': 'x' });
  assert.equal(bad.code, '4.00');
  assert.equal(hub.core.state.devices.has('fab-0202'), false);
});

test('provisioning - a revoked or expired fleet token fails the handshake', { timeout: 30_000 }, async () => {
  const { id, token } = await provisioningToken({ name: 'line-4' });
  assert.equal((await api('DELETE', `/provisioning/${id}`)).status, 200);
  const parsed = parseEnrollment(token);
  assert.ok(parsed);
  await assert.rejects(connect(parsed.identity, parsed.secret));
  assert.ok(hub.provisioning);
  const expired = await hub.provisioning.create({ name: 'old', expiresAt: Date.now() - 1, labels: {}, schema: null, accept: '*' });
  const p2 = parseEnrollment(expired.token);
  assert.ok(p2);
  await assert.rejects(connect(p2.identity, p2.secret));
  const listed = await api<{ tokens: Array<{ id: string }> }>('GET', '/provisioning');
  assert.equal(listed.json.tokens.some((t) => t.id === id), false);
  assert.equal(JSON.stringify(listed.json).includes(parsed.secret), false, 'no secret listed');
});

test('provisioning - only admins make, list or revoke fleet tokens, and admit devices', { timeout: 30_000 }, async () => {
  const op = await api<{ token: string }>('POST', '/tokens', { name: 'op', role: 'operator' });
  assert.equal(op.status, 201);
  assert.equal((await api('GET', '/provisioning', undefined, op.json.token)).status, 403);
  assert.equal((await api('POST', '/provisioning', { name: 'x' }, op.json.token)).status, 403);
  assert.equal((await api('POST', '/devices/fab-0102/accept', {}, op.json.token)).status, 403);
});

test('rotation - with a grace period both keys work; the new key, once used, retires the old one', { timeout: 30_000 }, async () => {
  await addDevice(hub.core, { actor: 'test' }, { id: 'rot-1' });
  const first = (await api<{ key: string; keyId: string }>('POST', '/devices/rot-1/key', {})).json;
  assert.ok(first.key);
  const rotated = await api<{ key: string; keyId: string; previous?: { keyId: string; until: number } }>('POST', '/devices/rot-1/key', { graceHours: 1 });
  assert.equal(rotated.status, 201);
  assert.equal(rotated.json.previous?.keyId, first.keyId);
  assert.ok((rotated.json.previous?.until ?? 0) > Date.now() + 3_500_000);
  // The device has not been updated yet: its old key still works.
  assert.equal(await works('rot-1', first.key), true);
  // Updated: the first handshake may be tried with the old key and fail; the next one uses the new key.
  let ok = await works('rot-1', rotated.json.key);
  if (!ok) ok = await works('rot-1', rotated.json.key);
  assert.equal(ok, true, 'the new key works within two attempts');
  const retired = await eventOf('rot-1', 'device.key_retired');
  assert.ok(retired && retired.type === 'device.key_retired');
  assert.equal(retired.data.keyId, first.keyId);
  assert.match(retired.data.reason, /new key/);
  assert.equal(await works('rot-1', first.key), false, 'the old key no longer works');
  assert.equal(await works('rot-1', rotated.json.key), true);
  const issued = (await eventsOf('rot-1')).filter((e) => e.type === 'device.key_issued');
  assert.equal(JSON.stringify(issued).includes(first.key) || JSON.stringify(issued).includes(rotated.json.key), false, 'no key material in events');
});

test('rotation - the old key stops working when its grace period ends', { timeout: 30_000 }, async () => {
  await addDevice(hub.core, { actor: 'test' }, { id: 'rot-2' });
  assert.ok(hub.keystore);
  const first = await hub.keystore.issue('rot-2');
  const second = await hub.keystore.issue('rot-2', 3_600_000);
  assert.equal(await works('rot-2', first.key), true);
  assert.equal(await hub.keystore.retireExpired(Date.now() + 3_600_001), 1);
  assert.equal(await works('rot-2', first.key), false);
  assert.equal(await works('rot-2', second.key), true);
  const retired = await eventOf('rot-2', 'device.key_retired');
  assert.ok(retired && retired.type === 'device.key_retired');
  assert.match(retired.data.reason, /grace/);
});

test('provisioning - enrollment handshakes are limited per address per minute', { timeout: 30_000 }, async () => {
  const d = await mkdtemp(join(tmpdir(), 'henge-enroll-limit-'));
  const small = await startHub({ data: d, port: 0, coaps: { port: 0, host: '127.0.0.1', enrollPerMinute: 2 } });
  try {
    assert.ok(small.provisioning && small.credentials);
    const t = await small.provisioning.create({ name: 'limit', expiresAt: Date.now() + 60_000, labels: {}, schema: null, accept: '*' });
    assert.equal((await enrollWith(t.token, 'lim-1', {}, small)).code, '2.04');
    assert.equal((await enrollWith(t.token, 'lim-2', {}, small)).code, '2.04');
    await assert.rejects(enrollWith(t.token, 'lim-3', {}, small), 'the third enrollment handshake this minute is refused');
    assert.equal(small.credentials.counters.enrollRateLimited, 1);
    assert.equal(small.core.state.devices.has('lim-3'), false);
  } finally {
    await small.close();
    await rm(d, { recursive: true, force: true });
  }
});
