/**
 * The DTLS transport's admission limits and handshake outcomes, on its own (no hub): the real addon on both
 * sides (dtls/client.ts as the device), real UDP sockets on 127.0.0.x (the whole of 127/8 is loopback on
 * Linux, so 127.0.0.2 and .3 are other addresses). The transport answers each datagram with
 * `<identity>:<datagram>`.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { DtlsClient } from '../../dtls/client.ts';
import { waitFor } from '../../test/helpers/coap-client.ts';
import { DtlsTransport, HandshakeOutcome } from './dtls-transport.ts';
import type { DtlsOptions, HandshakeEvent } from './dtls-transport.ts';
import type { Peer } from './transport.ts';

const KEYS = new Map([
  ['dev-a', 'key-of-device-a'],
  ['dev-b', 'key-of-device-b'],
]);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Hub {
  readonly t: DtlsTransport;
  readonly events: HandshakeEvent[];
  readonly lookups: Array<{ identity: string; peer: Peer }>;
}

async function hub(opts: Partial<DtlsOptions> = {}): Promise<Hub> {
  const events: HandshakeEvent[] = [];
  const lookups: Array<{ identity: string; peer: Peer }> = [];
  const t = await DtlsTransport.open({
    port: 0,
    host: '127.0.0.1',
    pskLookup: (identity, peer) => {
      lookups.push({ identity, peer });
      const key = KEYS.get(identity);
      return key === undefined ? null : Buffer.from(key, 'ascii');
    },
    onHandshake: (e) => events.push(e),
    ...opts,
  });
  t.onDatagram((bytes, from) => t.send(Buffer.concat([Buffer.from(`${from.identity ?? '?'}:`), bytes]), from));
  cleanups.push(() => t.close());
  return { t, events, lookups };
}

async function udp(address = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

interface Device {
  readonly client: DtlsClient;
  readonly socket: Socket;
  /** Sends `text`; resolves with the next answer. */
  ask(text: string): Promise<string>;
}

/** A device on a socket of its own; `connect()` is the caller's. */
function device(socket: Socket, port: number, identity: string, key: string, handshakeMs = 5_000): Device {
  const client = new DtlsClient((b) => socket.send(b, port, '127.0.0.1'), { identity, key }, 'the test transport', handshakeMs);
  const got: string[] = [];
  client.onData((d) => got.push(d.toString()));
  socket.on('message', (m) => client.receive(m));
  cleanups.push(() => client.close());
  return {
    client,
    socket,
    ask: async (text) => {
      const n = got.length;
      client.send(Buffer.from(text));
      return waitFor(`the answer to ${text}`, () => got[n], 3_000);
    },
  };
}

/**
 * A device that sends its two ClientHellos (without, then with the cookie) and nothing after, not even a
 * retransmission: its handshake stays in progress at the transport.
 */
function stalled(socket: Socket, port: number): Promise<string> {
  let hellos = 0;
  const client = new DtlsClient(
    (b) => {
      if (b[0] === 22 && b[13] === 1 && hellos++ < 2) socket.send(b, port, '127.0.0.1');
    },
    { identity: 'dev-a', key: 'key-of-device-a' },
    'the test transport',
    20_000,
  );
  socket.on('message', (m) => client.receive(m));
  cleanups.push(() => client.close());
  return client.connect().then(
    () => 'open',
    (err: Error) => err.message,
  );
}

/** How connect() ended, and after how long. */
async function connectOutcome(d: Device): Promise<{ ok: boolean; ms: number; error: string }> {
  const t0 = performance.now();
  try {
    await d.client.connect();
    return { ok: true, ms: performance.now() - t0, error: '' };
  } catch (err) {
    return { ok: false, ms: performance.now() - t0, error: (err as Error).message };
  }
}

test('dtls - a wrong key fails the handshake at once (not after handshakeMs), with an alert, counted and reported', { timeout: 20_000 }, async () => {
  const { t, events, lookups } = await hub(); // handshakeMs stays 20 s
  const s = await udp();
  const r = await connectOutcome(device(s, t.port, 'dev-a', 'not-the-key'));
  assert.equal(r.ok, false);
  assert.ok(r.ms < 1_000, `the client learned it in ${Math.round(r.ms)} ms`);
  assert.match(r.error, /bad record mac/, 'the client got our fatal alert, not its own timeout');
  assert.equal(t.counters.handshakesWrongKey, 1);
  assert.equal(t.counters.handshakesFailed, 1);
  assert.equal(t.counters.handshakesCompleted, 0);
  assert.equal(t.sessionCount, 0);
  assert.equal(t.handshakeCount, 0);
  const peer = { address: '127.0.0.1', port: s.address().port };
  assert.deepEqual(lookups, [{ identity: 'dev-a', peer }], 'pskLookup hears the peer whose handshake asks');
  assert.deepEqual(events, [{ identity: 'dev-a', peer, outcome: HandshakeOutcome.WrongKey }]);

  // The same address and port, the right key: it opens (one failure is far from the budget).
  const again = await udp();
  const d = device(again, t.port, 'dev-a', 'key-of-device-a');
  await d.client.connect();
  assert.equal(await d.ask('hello'), 'dev-a:hello');
  assert.deepEqual(events.at(-1), { identity: 'dev-a', peer: { address: '127.0.0.1', port: again.address().port, identity: 'dev-a' }, outcome: HandshakeOutcome.Open });
  assert.equal(events.length, 2, 'one event per handshake');
});

test('dtls - an unknown identity fails at once, counted as a failure of its address', { timeout: 20_000 }, async () => {
  const { t, events } = await hub({ failedHandshakesPerMinute: 1 });
  const s = await udp('127.0.0.4');
  const r = await connectOutcome(device(s, t.port, 'nobody', 'whatever'));
  assert.equal(r.ok, false);
  assert.ok(r.ms < 1_000, `the client learned it in ${Math.round(r.ms)} ms`);
  assert.equal(t.counters.handshakesUnknownIdentity, 1);
  assert.equal(t.counters.handshakesFailed, 1);
  assert.deepEqual(events, [{ identity: 'nobody', peer: { address: '127.0.0.4', port: s.address().port }, outcome: HandshakeOutcome.UnknownIdentity }]);
  // Its budget of one is spent: even the right key from that address is refused now.
  const r2 = await connectOutcome(device(await udp('127.0.0.4'), t.port, 'dev-a', 'key-of-device-a', 800));
  assert.equal(r2.ok, false);
  assert.ok(t.counters.handshakesRefusedFailures >= 1);
});

test('dtls - an address that spent its failure budget is refused before the cookie exchange; other addresses are not', { timeout: 20_000 }, async () => {
  const { t, events } = await hub({ failedHandshakesPerMinute: 3 });
  for (let i = 0; i < 3; i++) {
    const r = await connectOutcome(device(await udp('127.0.0.3'), t.port, 'dev-b', `guess-${i}`));
    assert.equal(r.ok, false);
  }
  assert.equal(t.counters.handshakesWrongKey, 3);
  const hvr = t.counters.helloVerifyRequests;
  const started = t.counters.handshakesStarted;

  // The right key, from that address: no answer at all (no HelloVerifyRequest) for the rest of its minute.
  const r = await connectOutcome(device(await udp('127.0.0.3'), t.port, 'dev-b', 'key-of-device-b', 1_200));
  assert.equal(r.ok, false);
  assert.match(r.error, /no DTLS session/, 'the client timed out: nothing came back');
  assert.ok(t.counters.handshakesRefusedFailures >= 1, 'its ClientHellos were counted as refused');
  assert.equal(t.counters.helloVerifyRequests, hvr, 'not even a cookie was sent');
  assert.equal(t.counters.handshakesStarted, started);
  assert.equal(events.length, 3, 'a refused ClientHello is no handshake');

  // Another address, the same device and key: served as ever.
  const d = device(await udp('127.0.0.1'), t.port, 'dev-b', 'key-of-device-b');
  await d.client.connect();
  assert.equal(await d.ask('still here'), 'dev-b:still here');
});

test('dtls - an address may have at most maxHandshakesPerAddress handshakes in progress; others are not held up', { timeout: 20_000 }, async () => {
  const { t } = await hub({ maxHandshakesPerAddress: 2 });
  for (let i = 1; i <= 2; i++) {
    void stalled(await udp(), t.port);
    await waitFor(`handshake ${i} in progress`, () => t.handshakeCount === i, 3_000);
  }
  // A third port of the same address: its cookie is good, but it gets no session.
  void stalled(await udp(), t.port);
  await waitFor('the third refused', () => t.counters.handshakesRefusedAddress === 1, 3_000);
  assert.equal(t.handshakeCount, 2);
  assert.equal(t.counters.handshakesStarted, 2);

  // Another address is not held up.
  const d = device(await udp('127.0.0.2'), t.port, 'dev-a', 'key-of-device-a');
  await d.client.connect();
  assert.equal(await d.ask('ping'), 'dev-a:ping');
  assert.equal(t.counters.handshakesRefusedAddress, 1);
  assert.equal(t.counters.handshakesStarted, 3);
});

test('dtls - a handshake that stops midway is dropped after handshakeMs, reported as a timeout', { timeout: 20_000 }, async () => {
  const { t, events } = await hub({ handshakeMs: 600 });
  const s = await udp();
  const t0 = performance.now();
  void stalled(s, t.port);
  await waitFor('a handshake in progress', () => t.handshakeCount === 1, 3_000);
  await waitFor('the timeout outcome', () => events.length === 1, 5_000);
  assert.ok(performance.now() - t0 >= 600, 'not before handshakeMs');
  assert.deepEqual(events, [{ identity: null, peer: { address: '127.0.0.1', port: s.address().port }, outcome: HandshakeOutcome.Timeout }]);
  assert.equal(t.handshakeCount, 0);
  assert.equal(t.sessionCount, 0);
  assert.equal(t.counters.handshakesFailed, 1);
});

test('dtls - an empty or oversized datagram is dropped and counted, from a stranger or an open session\'s peer', { timeout: 20_000 }, async () => {
  const { t } = await hub();
  const s = await udp();
  const d = device(s, t.port, 'dev-a', 'key-of-device-a');
  await d.client.connect();
  const stranger = await udp();
  const sent = (sock: Socket, b: Buffer) => new Promise<void>((r, j) => sock.send(b, t.port, '127.0.0.1', (err) => (err ? j(err) : r())));
  for (const sock of [stranger, s]) {
    await sent(sock, Buffer.alloc(0));
    await sent(sock, Buffer.alloc(20_000, 23));
  }
  await waitFor('four dropped', () => t.counters.datagramsInvalid === 4, 3_000);
  assert.equal(await d.ask('alive'), 'dev-a:alive', 'the session serves on');
});
