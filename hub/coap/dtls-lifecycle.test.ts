/**
 * The DTLS transport's session lifecycle, with an in-process hub (startHub, coaps on a free port, short
 * limits) and libcoap's coap-client-openssl as the peer: wrong keys and idle sessions end, a session that
 * takes over an address gets nothing of the one before, a new key ends the old key's sessions.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../hub.ts';
import type { RunningHub } from '../hub.ts';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { addDevice, setValues } from '../domain/index.ts';
import { DtlsClient } from '../../dtls/client.ts';
import { MessageKind, OptionNumber, encodeMessage } from '../../protocol/coap.ts';
import { waitFor } from '../../test/helpers/coap-client.ts';
import { needPeer, runPeer, snapshotsIn, stopAllPeers } from '../../test/helpers/libcoap.ts';

const OPENSSL = 'coap-client-openssl';
let hub: RunningHub;
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'henge-dtls-life-'));
  hub = await startHub({ data: dir, port: 0, coaps: { port: 0, host: '127.0.0.1', handshakeMs: 600, idleMs: 1500 } });
});

after(async () => {
  await stopAllPeers();
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

const dtls = () => {
  assert.ok(hub.dtls && hub.keystore && hub.coapsPort);
  return { t: hub.dtls, ks: hub.keystore, port: hub.coapsPort };
};

test('dtls - coap-client-openssl with a wrong key fails at once, counted as a wrong key (not left to handshakeMs)', { timeout: 30_000 }, async (t) => {
  const bin = needPeer(t, OPENSSL);
  if (!bin) return;
  const { t: tr, ks, port } = dtls();
  await addDevice(hub.core, { actor: 'test' }, { id: 'life-wrong' });
  await ks.issue('life-wrong');
  const failed = tr.counters.handshakesFailed;
  const wrong = tr.counters.handshakesWrongKey;
  const started = Date.now();
  const run = runPeer(bin, ['-B', '3', '-u', 'life-wrong', '-k', 'wrong', '-m', 'get', `coaps://127.0.0.1:${port}/d/life-wrong/c`]);
  await waitFor('the wrong key detected', () => tr.counters.handshakesWrongKey === wrong + 1, 5_000);
  // The hub's handshakeMs is 600 here: a timeout would take that long at least; a detection takes a round trip.
  assert.ok(Date.now() - started < 3_000);
  assert.equal(tr.counters.handshakesFailed, failed + 1);
  assert.equal(tr.sessionCount, 0);
  await run.exited;
  assert.equal(snapshotsIn(run.stdout())?.length ?? 0, 0, 'nothing served');
});

test('dtls - an idle session is closed after idleMs; the device handshakes again next time', { timeout: 30_000 }, async (t) => {
  const bin = needPeer(t, OPENSSL);
  if (!bin) return;
  const { t: tr, ks, port } = dtls();
  await addDevice(hub.core, { actor: 'test' }, { id: 'life-idle', values: { a: 1 } });
  const { key } = await ks.issue('life-idle');
  const expired = tr.counters.sessionsExpired;
  const completed = tr.counters.handshakesCompleted;
  // -B 10: the client stays up (its session too) well past idleMs, having sent one GET.
  const run = runPeer(bin, ['-B', '10', '-s', '10', '-u', 'life-idle', '-k', key, '-m', 'get', `coaps://127.0.0.1:${port}/d/life-idle/c`]);
  await waitFor('the snapshot', () => (snapshotsIn(run.stdout())?.length ?? 0) >= 1, 5_000);
  assert.equal(tr.counters.handshakesCompleted, completed + 1);
  await waitFor('the idle session closed', () => tr.counters.sessionsExpired === expired + 1, 8_000);
  assert.equal(tr.sessionCount, 0);
  await run.stop();
});

/** A raw coaps device on a socket of its own (or a shared one), through the addon's client. */
async function rawDevice(socket: Socket, identity: string, key: string, port: number): Promise<{ client: DtlsClient; got: Buffer[] }> {
  const client = new DtlsClient((b) => socket.send(b, port, '127.0.0.1'), { identity, key }, 'the test hub');
  const got: Buffer[] = [];
  client.onData((d) => got.push(d));
  socket.removeAllListeners('message');
  socket.on('message', (m) => client.receive(m));
  await client.connect();
  return { client, got };
}

const observe = (device: string, mid: number): Buffer =>
  encodeMessage({
    kind: MessageKind.Con,
    code: '0.01',
    messageId: mid,
    token: Buffer.from([7, 7, 7, 7]),
    options: [[OptionNumber.Observe, 0], [OptionNumber.UriPath, Buffer.from('d')], [OptionNumber.UriPath, Buffer.from(device)], [OptionNumber.UriPath, Buffer.from('c')]],
  });

test('dtls - a session that takes over an address never gets the other identity\'s notifications or cached answers', { timeout: 30_000 }, async () => {
  const { ks, port } = dtls();
  for (const id of ['own-a', 'own-b']) await addDevice(hub.core, { actor: 'test' }, { id, values: { secret: `${id}-only` } });
  const keyA = (await ks.issue('own-a')).key;
  const keyB = (await ks.issue('own-b')).key;
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  try {
    const a = await rawDevice(socket, 'own-a', keyA, port);
    a.client.send(observe('own-a', 100));
    await waitFor('A registered', () => a.got.length >= 1, 5_000);
    // B, with its own valid key, handshakes from the very same address and port: A's session is replaced.
    const b = await rawDevice(socket, 'own-b', keyB, port);
    await setValues(hub.core, { actor: 'test' }, { device: 'own-a' }, { secret: 'own-a-v2' }, false);
    // The same message id A used: a cache keyed by address alone would answer B with A's config.
    b.client.send(observe('own-b', 100));
    await waitFor('B answered', () => b.got.length >= 1, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    const seen = Buffer.concat(b.got);
    assert.ok(!seen.includes(Buffer.from('own-a')), 'nothing of A reached B');
    assert.ok(seen.includes(Buffer.from('own-b-only')), 'B got its own config');
    b.client.close();
    a.client.close();
  } finally {
    socket.close();
  }
});

test('dtls - a new key for a device, or its removal, ends its open sessions at once', { timeout: 30_000 }, async () => {
  const { t: tr, ks, port } = dtls();
  await addDevice(hub.core, { actor: 'test' }, { id: 'rekey', values: { a: 1 } });
  const key = (await ks.issue('rekey')).key;
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  try {
    const d = await rawDevice(socket, 'rekey', key, port);
    d.client.send(observe('rekey', 1));
    await waitFor('registered', () => d.got.length >= 1, 5_000);
    const revoked = tr.counters.sessionsRevoked;
    const before = tr.sessionCount;
    await ks.issue('rekey');
    assert.equal(tr.counters.sessionsRevoked, revoked + 1, 'the old-key session ended');
    assert.equal(tr.sessionCount, before - 1);
    d.client.close();
  } finally {
    socket.close();
  }
});
