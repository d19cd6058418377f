/**
 * Run by fuzz/dnssd-seeds.ts inside a network namespace: records the mDNS messages a real hub advertiser
 * sends. Listens on 224.0.0.251:5353 (announcements, goodbyes) and, on a second socket with an ephemeral
 * port, sends the one-shot queries henge-fw sends (RFC 6762 §5.1: PTR of the browsed name, then SRV, TXT
 * and A one at a time) and records the unicast answers. One JSON line per message on stdout:
 * `{"kind":"multicast"|"unicast","question":"...","hex":"..."}`; reads `query <name> <type>` and `exit` on stdin.
 */
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';

const MDNS_GROUP = '224.0.0.251';
const MDNS_PORT = 5353;
const TYPES: Readonly<Record<string, number>> = { A: 1, PTR: 12, TXT: 16, AAAA: 28, SRV: 33 };

function encodeQuery(id: number, name: string, type: number): Buffer {
  const labels = name.split('.').filter((l) => l !== '');
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([Buffer.byteLength(l)]), Buffer.from(l));
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, 1]));
  return Buffer.concat(parts);
}

const emit = (kind: string, question: string, msg: Buffer): void => {
  process.stdout.write(`${JSON.stringify({ kind, question, hex: msg.toString('hex') })}\n`);
};

const listener = createSocket({ type: 'udp4', reuseAddr: true });
listener.on('message', (msg) => {
  // Responses only (QR set): our own queries loop back too.
  if (msg.length >= 3 && ((msg[2] ?? 0) & 0x80) !== 0) emit('multicast', '', msg);
});
listener.bind(MDNS_PORT, () => {
  listener.addMembership(MDNS_GROUP);
  const querier = createSocket('udp4');
  let question = '';
  querier.on('message', (msg) => emit('unicast', question, msg));
  querier.bind(0, () => {
    process.stdout.write(`${JSON.stringify({ kind: 'ready' })}\n`);
    let id = 0x4865;
    createInterface({ input: process.stdin }).on('line', (line) => {
      const [cmd, name, type] = line.trim().split(' ');
      if (cmd === 'query' && name !== undefined && type !== undefined && TYPES[type] !== undefined) {
        question = `${name} ${type}`;
        querier.send(encodeQuery(id++, name, TYPES[type] ?? 0), MDNS_PORT, MDNS_GROUP);
      } else if (cmd === 'exit') {
        querier.close();
        listener.close();
        process.exit(0); // stdin stays open: the process would not end by itself
      }
    });
  });
});
