/**
 * A new handshake from the address and port of an open session runs beside it and takes its place only
 * once it proves its key. The DTLS transport on its own (no hub), the real addon on both sides: one test
 * socket carries an open session (client A) and then a second handshake (client B), and routes what the
 * transport sends the way the transport routes what it receives: handshake-layer records to B while B
 * handshakes, application data to A until B is open.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { DtlsClient } from '../../dtls/client.ts';
import { waitFor } from '../../test/helpers/coap-client.ts';
import { DtlsTransport, HandshakeOutcome } from './dtls-transport.ts';
import type { HandshakeEvent } from './dtls-transport.ts';

const KEYS = new Map([
  ['dev-a', 'key-of-device-a'],
  ['dev-b', 'key-of-device-b'],
]);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const handshakeLayer = (m: Buffer): boolean => m[0] === 22 || m[0] === 20 || (m[0] === 21 && m[3] === 0 && m[4] === 0);

interface Endpoint {
  readonly client: DtlsClient;
  readonly got: string[];
  /** Every datagram this client sent. */
  readonly sent: Buffer[];
}

/** The transport (answering `<identity>:<datagram>`), one socket, and clients that share it. */
async function setup(): Promise<{
  t: DtlsTransport;
  events: HandshakeEvent[];
  socket: Socket;
  a: Endpoint;
  /** A second client on the same socket; `drop` keeps some of its datagrams from leaving. */
  second(identity: string, key: string, drop?: (b: Buffer) => boolean): Endpoint;
  /** Sends `text` as A; resolves with A's next answer, or undefined when none comes within 300 ms. */
  askA(text: string): Promise<string | undefined>;
}> {
  const events: HandshakeEvent[] = [];
  const t = await DtlsTransport.open({
    port: 0,
    host: '127.0.0.1',
    handshakeMs: 600,
    pskLookup: (identity) => {
      const key = KEYS.get(identity);
      return key === undefined ? null : Buffer.from(key, 'ascii');
    },
    onHandshake: (e) => events.push(e),
  });
  t.onDatagram((bytes, from) => t.send(Buffer.concat([Buffer.from(`${from.identity ?? '?'}:`), bytes]), from));
  cleanups.push(() => t.close());
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));

  const endpoint = (identity: string, key: string, drop: (b: Buffer) => boolean = () => false): Endpoint => {
    const sent: Buffer[] = [];
    const client = new DtlsClient(
      (b) => {
        sent.push(b);
        if (!drop(b)) socket.send(b, t.port, '127.0.0.1');
      },
      { identity, key },
      'the test transport',
      3_000,
    );
    const got: string[] = [];
    client.onData((d) => got.push(d.toString()));
    cleanups.push(() => client.close());
    return { client, got, sent };
  };
  const a = endpoint('dev-a', 'key-of-device-a');
  let b: Endpoint | null = null;
  socket.on('message', (m) => {
    const to = b !== null && (b.client.isOpen || handshakeLayer(m)) ? b : a;
    to.client.receive(m);
  });
  await a.client.connect();
  const askA = async (text: string): Promise<string | undefined> => {
    const n = a.got.length;
    a.client.send(Buffer.from(text));
    const deadline = Date.now() + 300;
    while (a.got.length === n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return a.got[n];
  };
  return {
    t,
    events,
    socket,
    a,
    second: (identity, key, drop) => (b = endpoint(identity, key, drop)),
    askA,
  };
}

test('dtls - a replacement handshake with a wrong key leaves the open session serving', { timeout: 20_000 }, async () => {
  const { t, events, second, askA } = await setup();
  assert.equal(await askA('one'), 'dev-a:one');
  const b = second('dev-a', 'not-the-key');
  await assert.rejects(b.client.connect(), /bad record mac/, 'B is refused at once');
  assert.equal(t.counters.handshakesWrongKey, 1);
  assert.equal(t.counters.sessionsReplaced, 0);
  assert.equal(t.sessionCount, 1);
  assert.equal(await askA('two'), 'dev-a:two', 'A is served as before');
  assert.deepEqual(
    events.map((e) => e.outcome),
    [HandshakeOutcome.Open, HandshakeOutcome.WrongKey],
  );
});

test('dtls - a replacement handshake that never finishes times out; the open session serves throughout', { timeout: 20_000 }, async () => {
  const { t, events, second, askA } = await setup();
  // B sends its ClientHellos only: its handshake stays in progress beside A's session.
  let hellos = 0;
  const b = second('dev-a', 'key-of-device-a', (m) => !(m[0] === 22 && m[13] === 1 && hellos++ < 2));
  const bDone = b.client.connect().then(
    () => 'open',
    (err: Error) => err.message,
  );
  await waitFor('the replacement handshake', () => t.handshakeCount === 1, 3_000);
  assert.equal(t.sessionCount, 2, 'the open session and the handshake beside it');
  assert.equal(await askA('during'), 'dev-a:during', 'A is served while B handshakes');
  await waitFor('the replacement timed out', () => events.length === 2, 3_000);
  assert.equal(events[1]?.outcome, HandshakeOutcome.Timeout);
  assert.equal(t.sessionCount, 1);
  assert.equal(await askA('after'), 'dev-a:after', 'A is served after');
  b.client.close();
  assert.match(await bDone, /closed/);
});

test('dtls - a replayed ClientHello carrying the device\'s cookie does not end its open session', { timeout: 20_000 }, async () => {
  const { t, events, socket, a, askA } = await setup();
  // What an attacker on the LAN saw: A's ClientHello with the cookie, sent again from A's address and port.
  const hello = a.sent[1];
  assert.ok(hello && hello[0] === 22 && hello[13] === 1, 'A\'s second datagram was its ClientHello with the cookie');
  const started = t.counters.handshakesStarted;
  socket.send(hello, t.port, '127.0.0.1');
  await waitFor('a handshake started by the replay', () => t.counters.handshakesStarted === started + 1, 3_000);
  assert.equal(await askA('still'), 'dev-a:still', 'the session it would have ended serves on');
  await waitFor('the replayed handshake timed out', () => events.length === 2, 3_000);
  assert.equal(events[1]?.outcome, HandshakeOutcome.Timeout);
  assert.equal(await askA('and still'), 'dev-a:and still');
  assert.equal(t.counters.sessionsReplaced, 0);
});

test('dtls - a replacement handshake with the right key takes the open session\'s place', { timeout: 20_000 }, async () => {
  const { t, events, socket, second, askA } = await setup();
  assert.equal(await askA('before'), 'dev-a:before');
  // The device rebooted (same address and port, a fresh session); here as another identity, which the engine must see.
  const b = second('dev-b', 'key-of-device-b');
  await b.client.connect();
  assert.equal(t.counters.sessionsReplaced, 1);
  assert.equal(t.sessionCount, 1);
  assert.deepEqual(
    events.map((e) => [e.identity, e.outcome]),
    [
      ['dev-a', HandshakeOutcome.Open],
      ['dev-b', HandshakeOutcome.Open],
    ],
  );
  b.client.send(Buffer.from('new'));
  await waitFor('B answered', () => b.got.length === 1, 3_000);
  assert.deepEqual(b.got, ['dev-b:new'], 'the engine sees the identity B proved');
  assert.equal(await askA('old'), undefined, 'A\'s records mean nothing to the new session');
  const sends = t.counters.sendsWithoutSession;
  t.send(Buffer.from('for A'), { address: '127.0.0.1', port: socket.address().port, identity: 'dev-a' });
  assert.equal(t.counters.sendsWithoutSession, sends + 1, 'the engine\'s sends for A go nowhere');
});
