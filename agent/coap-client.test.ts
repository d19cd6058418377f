/**
 * The agent's CoAP client and Block2 reassembly against a scripted CoAP peer on a real UDP socket: the
 * cases the hub does not produce on demand (lost datagrams, duplicates, unknown tokens, separate responses,
 * a representation that changes between blocks).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { blockOption, generateMessage, option, parseMessage, readBlock, uintOption, uriPath } from '../protocol/coap.ts';
import type { CoapMessage } from '../protocol/coap.ts';
import { fetchRepresentation } from './blockwise.ts';
import { CoapClient } from './coap-client.ts';
import { BlockTransferError, CoapResetError, CoapTimeoutError } from './errors.ts';

interface Received {
  readonly msg: CoapMessage;
  readonly from: { address: string; port: number };
  readonly at: number;
}

/** A CoAP peer whose answers the test scripts. */
class Peer {
  readonly received: Received[] = [];
  handler: (r: Received, peer: Peer) => void = () => undefined;
  private last: { address: string; port: number } | null = null;

  private constructor(
    readonly socket: Socket,
    readonly address: string,
  ) {
    socket.on('message', (buf, rinfo) => {
      const r = { msg: parseMessage(buf), from: { address: rinfo.address, port: rinfo.port }, at: Date.now() };
      this.last = r.from;
      this.received.push(r);
      this.handler(r, this);
    });
  }

  static async open(address = '127.0.0.1'): Promise<Peer> {
    const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    return new Peer(socket, address);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(packet: Parameters<typeof generateMessage>[0], to = this.last): void {
    assert.ok(to, 'the client has spoken first');
    this.socket.send(generateMessage(packet), to.port, to.address);
  }

  /** Waits until `pred` holds for some received message. */
  async waitFor(pred: (r: Received) => boolean, timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error('the peer did not receive the expected message');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers) await c();
});

async function pair(address = '127.0.0.1'): Promise<{ peer: Peer; client: CoapClient }> {
  const peer = await Peer.open(address);
  const client = await CoapClient.open({ address, family: address.includes(':') ? 6 : 4, port: peer.port });
  closers.push(() => client.close(), () => peer.close());
  return { peer, client };
}

const piggyback = (r: Received, code: string, extra: Partial<Parameters<typeof generateMessage>[0]> = {}): Parameters<typeof generateMessage>[0] => ({
  ack: true,
  code,
  messageId: r.msg.messageId,
  token: r.msg.token,
  ...extra,
});

test('a lost request is retransmitted with the same message id and token, after 2..3 s', async () => {
  const { peer, client } = await pair();
  let seen = 0;
  peer.handler = (r, p) => {
    if (++seen === 2) p.send(piggyback(r, '2.05', { payload: Buffer.from('hi') }));
  };
  const res = await client.request({ method: 'GET', path: ['d', 'x', 'c'] });
  assert.equal(res.payload.toString(), 'hi');
  const [a, b] = peer.received;
  assert.ok(a && b);
  assert.equal(a.msg.messageId, b.msg.messageId);
  assert.ok(a.msg.token.equals(b.msg.token));
  assert.ok(a.msg.confirmable);
  assert.deepEqual(uriPath(a.msg), ['d', 'x', 'c']);
  const gap = b.at - a.at;
  assert.ok(gap >= 1900 && gap <= 3200, `first retransmission after ${gap} ms (ACK_TIMEOUT 2 s x 1..1.5)`);
});

test('a response with the right message id but another token is not taken', async () => {
  const { peer, client } = await pair();
  peer.handler = (r, p) => {
    p.send(piggyback(r, '2.05', { token: Buffer.from('nope'), payload: Buffer.from('wrong') }));
    p.send(piggyback(r, '2.05', { payload: Buffer.from('right') }));
  };
  assert.equal((await client.request({ method: 'GET', path: ['a'] })).payload.toString(), 'right');
});

test('requests go one at a time (NSTART 1)', async () => {
  const { peer, client } = await pair();
  const pending: Received[] = [];
  peer.handler = (r) => pending.push(r);
  const p1 = client.request({ method: 'GET', path: ['one'] });
  const p2 = client.request({ method: 'POST', path: ['two'], payload: Buffer.from([1]) });
  await peer.waitFor(() => true);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(pending.length, 1, 'the second waits for the first');
  const first = pending.shift();
  assert.ok(first);
  peer.send(piggyback(first, '2.05'));
  await p1;
  const second = await peer.waitFor((r) => uriPath(r.msg)[0] === 'two');
  peer.send(piggyback(second, '2.04'));
  assert.equal((await p2).code, '2.04');
  assert.notEqual(first.msg.messageId, second.msg.messageId);
});

test('an abandoned request (its signal aborted) rejects with HENGE_E_COAP_ABORTED, is not retransmitted, and the next goes out at once; a late answer is dropped', async () => {
  const { peer, client } = await pair();
  const first = new AbortController();
  const queued = new AbortController();
  const p1 = client.request({ method: 'POST', path: ['old'], signal: first.signal });
  const p2 = client.request({ method: 'POST', path: ['never'], signal: queued.signal });
  const p3 = client.request({ method: 'POST', path: ['new'] });
  const old = await peer.waitFor((r) => uriPath(r.msg)[0] === 'old');
  queued.abort(); // still queued: taken out, never sent
  first.abort(); // in flight: abandoned
  await assert.rejects(p1, { code: 'HENGE_E_COAP_ABORTED' });
  await assert.rejects(p2, { code: 'HENGE_E_COAP_ABORTED' });
  const next = await peer.waitFor((r) => uriPath(r.msg)[0] === 'new', 1000);
  assert.ok(next.at - old.at < 1000, 'the next request did not wait for a retransmission timeout');
  peer.send(piggyback(old, '2.04')); // late: settles nothing
  peer.send(piggyback(next, '2.04'));
  assert.equal((await p3).code, '2.04');
  await new Promise((r) => setTimeout(r, 3200)); // past the first retransmission time of 'old'
  assert.equal(peer.received.filter((r) => uriPath(r.msg)[0] === 'old').length, 1, 'the abandoned request was not retransmitted');
  assert.equal(peer.received.filter((r) => uriPath(r.msg)[0] === 'never').length, 0);
  await assert.rejects(client.request({ method: 'GET', path: ['x'], signal: first.signal }), { code: 'HENGE_E_COAP_ABORTED' }, 'an already aborted signal');
});

test('an RST to a request rejects it with HENGE_E_COAP_RESET; a deadline gives up early', async () => {
  const { peer, client } = await pair();
  peer.handler = (r, p) => p.send({ reset: true, code: '0.00', messageId: r.msg.messageId, token: Buffer.alloc(0) });
  await assert.rejects(client.request({ method: 'GET', path: ['x'] }), (e: unknown) => e instanceof CoapResetError && e.code === 'HENGE_E_COAP_RESET');
  peer.handler = () => undefined;
  const t = Date.now();
  await assert.rejects(client.request({ method: 'GET', path: ['x'], deadlineMs: 200 }), (e: unknown) => e instanceof CoapTimeoutError && e.code === 'HENGE_E_COAP_TIMEOUT');
  assert.ok(Date.now() - t < 1000);
});

test('an empty ACK, then a separate CON response: resolved once, and ACKed', async () => {
  const { peer, client } = await pair();
  peer.handler = (r, p) => {
    if (r.msg.code !== '0.01') return;
    p.send({ ack: true, code: '0.00', messageId: r.msg.messageId, token: Buffer.alloc(0) });
    setTimeout(() => p.send({ confirmable: true, code: '2.05', messageId: 4242, token: r.msg.token, payload: Buffer.from('later') }), 50);
  };
  const res = await client.request({ method: 'GET', path: ['slow'] });
  assert.equal(res.payload.toString(), 'later');
  const ack = await peer.waitFor((r) => r.msg.ack && r.msg.messageId === 4242);
  assert.equal(ack.msg.code, '0.00');
});

test('a duplicated CON notification is ACKed twice and delivered once; an unknown token gets an RST', async () => {
  const { peer, client } = await pair();
  const token = client.newToken();
  const delivered: CoapMessage[] = [];
  client.observe(token, (m) => delivered.push(m));
  // The client must speak first (the peer learns its address), as a registration would.
  peer.handler = (r, p) => {
    if (r.msg.code === '0.01') p.send(piggyback(r, '2.05', { options: [{ name: 'Observe', value: uintOption(1) }] }));
  };
  await client.request({ method: 'GET', path: ['d', 'x', 'c'], observe: 0, token });
  const note = { confirmable: true, code: '2.05', messageId: 777, token, options: [{ name: 'Observe', value: uintOption(2) }], payload: Buffer.from('v2') };
  peer.send(note);
  peer.send(note);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(delivered.length, 1);
  assert.equal(peer.received.filter((r) => r.msg.ack && r.msg.messageId === 777).length, 2);

  peer.send({ confirmable: true, code: '2.05', messageId: 778, token: Buffer.from('dead'), payload: Buffer.from('?') });
  const rst = await peer.waitFor((r) => r.msg.reset && r.msg.messageId === 778);
  assert.equal(rst.msg.code, '0.00');
  // A NON notification for an unknown token: RST too.
  peer.send({ code: '2.05', messageId: 779, token: Buffer.from('dead'), payload: Buffer.from('?') });
  await peer.waitFor((r) => r.msg.reset && r.msg.messageId === 779);
  // After unobserve, the same token is unknown.
  client.unobserve(token);
  peer.send({ ...note, messageId: 780 });
  await peer.waitFor((r) => r.msg.reset && r.msg.messageId === 780);
  assert.equal(delivered.length, 1);
});

test('datagrams from another address or port are ignored', async () => {
  const { peer, client } = await pair();
  const token = client.newToken();
  const delivered: CoapMessage[] = [];
  client.observe(token, (m) => delivered.push(m));
  peer.handler = (r, p) => p.send(piggyback(r, '2.05'));
  await client.request({ method: 'GET', path: ['x'], token });
  const stranger = await Peer.open();
  closers.push(() => stranger.close());
  stranger.send({ confirmable: true, code: '2.05', messageId: 1, token, payload: Buffer.from('spoof') }, { address: '127.0.0.1', port: client.localPort });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(delivered.length, 0);
  assert.equal(stranger.received.length, 0, 'not even an RST');
});

test('IPv6', async () => {
  const { peer, client } = await pair('::1');
  peer.handler = (r, p) => p.send(piggyback(r, '2.05', { payload: Buffer.from('six') }));
  assert.equal((await client.request({ method: 'GET', path: ['x'] })).payload.toString(), 'six');
  assert.equal(peer.received[0]?.from.address, '::1');
});

/** A Block2 server over `current()`: answers GET with the requested block and the representation's ETag. */
function blockServer(current: () => { bytes: Buffer; etag: Buffer }): (r: Received, p: Peer) => void {
  return (r, p) => {
    const rep = current();
    const b2 = option(r.msg, 'Block2');
    const want = b2 ? readBlock(b2) : { num: 0, szx: 6, more: false };
    const size = 1 << (want.szx + 4);
    const start = want.num * size;
    if (start >= rep.bytes.length) return p.send(piggyback(r, '4.02'));
    const more = start + size < rep.bytes.length;
    p.send(
      piggyback(r, '2.05', {
        options: [
          { name: 'ETag', value: rep.etag },
          { name: 'Block2', value: blockOption({ num: want.num, more, szx: want.szx }) },
          { name: 'Size2', value: uintOption(rep.bytes.length) },
        ],
        payload: rep.bytes.subarray(start, start + size),
      }),
    );
  };
}

test('Block2: the blocks after the first are fetched with GET + Block2 and joined', async () => {
  const { peer, client } = await pair();
  const bytes = Buffer.from(Array.from({ length: 2500 }, (_, i) => i % 251));
  peer.handler = blockServer(() => ({ bytes, etag: Buffer.from('etag-one') }));
  const first = await client.request({ method: 'GET', path: ['d', 'x', 'c'] });
  const rep = await fetchRepresentation(client, ['d', 'x', 'c'], first);
  assert.ok(rep.payload.equals(bytes));
  assert.equal(rep.blocks, 3);
  assert.equal(rep.restarts, 0);
  const blockGets = peer.received.filter((r) => option(r.msg, 'Block2'));
  assert.deepEqual(
    blockGets.map((r) => readBlock(option(r.msg, 'Block2') ?? Buffer.alloc(0)).num),
    [1, 2],
  );
  for (const r of blockGets) assert.equal(option(r.msg, 'Observe'), undefined, 'block requests carry no Observe');
});

test('Block2: an ETag that changes between blocks restarts from block 0 of the new representation', async () => {
  const { peer, client } = await pair();
  const v1 = Buffer.alloc(2100, 1);
  const v2 = Buffer.alloc(1500, 2);
  let rep = { bytes: v1, etag: Buffer.from('v1v1v1v1') };
  const serve = blockServer(() => rep);
  peer.handler = (r, p) => {
    // The representation changes right after block 0 went out.
    serve(r, p);
    if (!option(r.msg, 'Block2') || readBlock(option(r.msg, 'Block2') ?? Buffer.alloc(0)).num === 0) rep = { bytes: v2, etag: Buffer.from('v2v2v2v2') };
  };
  const first = await client.request({ method: 'GET', path: ['c'] });
  assert.equal(option(first, 'ETag')?.toString(), 'v1v1v1v1');
  const got = await fetchRepresentation(client, ['c'], first);
  assert.ok(got.payload.equals(v2), 'the newest representation, whole');
  assert.equal(got.etag?.toString(), 'v2v2v2v2');
  assert.equal(got.restarts, 1);
});

test('Block2: a representation that never holds still gives up with HENGE_E_BLOCK2', async () => {
  const { peer, client } = await pair();
  let n = 0;
  const serve = blockServer(() => ({ bytes: Buffer.alloc(3000, n), etag: Buffer.from(`etag-${n}`) }));
  peer.handler = (r, p) => {
    serve(r, p);
    n++;
  };
  const first = await client.request({ method: 'GET', path: ['c'] });
  await assert.rejects(fetchRepresentation(client, ['c'], first), (e: unknown) => e instanceof BlockTransferError && e.code === 'HENGE_E_BLOCK2');
  assert.ok(peer.received.length < 30, 'bounded');
});
