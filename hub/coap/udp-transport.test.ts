import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { UdpTransport, literalFirstLookup } from './udp-transport.ts';

/** Bytes waiting in the receive queue of the IPv4 UDP socket bound to 127.0.0.1:port, from /proc/net/udp. */
function rxQueue(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local) return Number.parseInt((f[4] ?? '0:0').split(':')[1] ?? '0', 16);
  }
  throw new Error(`no UDP socket on 127.0.0.1:${port}`);
}

test('udp - a datagram to an IP literal leaves before the sending code yields', async (t) => {
  const receiver = createSocket('udp4');
  receiver.bind(0, '127.0.0.1');
  await once(receiver, 'listening');
  const transport = await UdpTransport.open({ port: 0, host: '127.0.0.1' });
  t.after(async () => {
    receiver.close();
    await transport.close();
  });
  const port = receiver.address().port;
  assert.equal(rxQueue(port), 0);
  // Still inside this synchronous block: with dns.lookup the send would only happen in the next tick.
  transport.send(Buffer.from([0x60, 0, 0, 1]), { address: '127.0.0.1', port });
  assert.ok(rxQueue(port) > 0, 'the datagram is in the receiver queue before the sender yielded');
  const [msg] = (await once(receiver, 'message')) as [Buffer];
  assert.deepEqual([...msg], [0x60, 0, 0, 1]);
});

test('udp - the lookup answers literals at once and resolves host names', async () => {
  let answered: [string, number] | undefined;
  literalFirstLookup('::ffff:127.0.0.1', 6, (err, address, family) => {
    assert.equal(err, null);
    answered = [address, family];
  });
  assert.deepEqual(answered, ['::ffff:127.0.0.1', 6]);
  literalFirstLookup('10.1.2.3', 4, (_err, address, family) => (answered = [address, family]));
  assert.deepEqual(answered, ['10.1.2.3', 4]);
  const resolved = await new Promise<[string, number]>((resolve, reject) =>
    literalFirstLookup('localhost', 4, (err, address, family) => (err ? reject(err) : resolve([address, family]))),
  );
  assert.deepEqual(resolved, ['127.0.0.1', 4]);
});

test('udp - the buffer granted is what was asked (up to rmem_max); the queue limit the kernel applies is twice that', async (t) => {
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  const asked = 256 * 1024;
  const transport = await UdpTransport.open({ port: 0, host: '127.0.0.1', receiveBuffer: asked });
  t.after(() => transport.close());
  assert.equal(transport.receiveBufferBytes, Math.min(asked, rmemMax));
  assert.equal(transport.receiveQueueBytes, 2 * transport.receiveBufferBytes);
});
