/**
 * The DTLS transport's session lifecycle, with an in-process hub (startHub, coaps on a free port, short
 * limits) and libcoap's coap-client-openssl as the peer: unfinished handshakes and idle sessions end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../hub.ts';
import type { RunningHub } from '../hub.ts';
import { addDevice } from '../domain/index.ts';
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

test('dtls - a handshake that cannot finish (a wrong key) is dropped after handshakeMs', { timeout: 30_000 }, async (t) => {
  const bin = needPeer(t, OPENSSL);
  if (!bin) return;
  const { t: tr, ks, port } = dtls();
  await addDevice(hub.core, { actor: 'test' }, { id: 'life-wrong' });
  await ks.issue('life-wrong');
  const failed = tr.counters.handshakesFailed;
  const run = runPeer(bin, ['-B', '1', '-u', 'life-wrong', '-k', 'wrong', '-m', 'get', `coaps://127.0.0.1:${port}/d/life-wrong/c`]);
  await waitFor('a handshake in progress', () => tr.sessionCount === 1, 5_000);
  await run.exited;
  await waitFor('the handshake dropped', () => tr.sessionCount === 0, 5_000);
  assert.equal(tr.counters.handshakesFailed, failed + 1);
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
