/**
 * Writes the seed corpus of fuzz-dnssd (fuzz/corpus/dnssd/) from what the hub's real advertiser
 * (discovery/advertise.ts, @homebridge/ciao) sends, captured between two network namespaces (needs root;
 * test/helpers/netns.ts): its announcements when it starts, its unicast answers to henge-fw's one-shot
 * queries (PTR, then SRV, TXT, A, AAAA one at a time), and its goodbyes. Then a few variants of those bytes
 * (TXT v=2, another hub id, a broken pointer, cut short). Run by hand after a change to the advertiser:
 *
 *   node --import tsx firmware-libcoap/fuzz/dnssd-seeds.ts
 *
 * The hub ids are fixed so the seeds are stable; the 10.77.0.x addresses change per run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../../test/helpers/processes.ts';
import { createNetnsPair, netnsMissing } from '../../test/helpers/netns.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, 'corpus', 'dnssd');
const ADVERTISE = join(ROOT, 'discovery', 'fixtures', 'advertise-hub.ts');
const CAPTURE = join(HERE, 'dnssd-capture.ts');
const SECURE_ID = '5eed0000c0a5';
const PLAIN_ID = '5eed0000c0a9';

interface Captured {
  readonly kind: string;
  readonly question?: string;
  readonly hex?: string;
}

const parse = (text: string): Captured[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Captured);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const missing = await netnsMissing();
  if (missing !== undefined) throw new Error(missing);
  const pair = await createNetnsPair({ ipv6: true });
  try {
    const capture = pair.b.spawn(process.execPath, ['--import', 'tsx', CAPTURE], { cwd: ROOT });
    await capture.waitForLine((l) => l.includes('"ready"'), 20_000, 'capture ready');
    const adv = pair.a.spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        ADVERTISE,
        JSON.stringify({
          hubs: [
            { hubId: SECURE_ID, coapPort: 5684, apiPort: 8080, secure: true },
            { hubId: PLAIN_ID, coapPort: 5683, apiPort: 8080, secure: false },
          ],
        }),
      ],
      { cwd: ROOT },
    );
    await adv.waitForLine((l) => l.includes('"ready"'), 30_000, 'advertiser ready');
    await sleep(1500);
    const queries = [
      ['_henge._sub._coaps._udp.local', 'PTR'],
      ['_henge._sub._coap._udp.local', 'PTR'],
      [`henge-${SECURE_ID}._coaps._udp.local`, 'SRV'],
      [`henge-${SECURE_ID}._coaps._udp.local`, 'TXT'],
      [`henge-${SECURE_ID}.local`, 'A'],
      [`henge-${SECURE_ID}.local`, 'AAAA'],
    ] as const;
    for (const [name, type] of queries) {
      capture.write(`query ${name} ${type}\n`);
      await sleep(400);
    }
    adv.write('stop\n');
    await adv.waitForLine((l) => l.includes('"stopped"'), 10_000, 'goodbyes sent');
    await sleep(500);
    capture.write('exit\n');
    await capture.exited;
    adv.write('exit\n');
    await adv.exited;

    mkdirSync(OUT, { recursive: true });
    const all = parse(capture.stdout()).filter((c) => c.hex !== undefined);
    let multicast = 0;
    let written = 0;
    const put = (name: string, bytes: Buffer): void => {
      writeFileSync(join(OUT, `${name}.bin`), bytes);
      written++;
    };
    for (const c of all) {
      const bytes = Buffer.from(c.hex ?? '', 'hex');
      const name = c.kind === 'unicast' ? `ciao-answer-${(c.question ?? '').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}` : `ciao-multicast-${multicast++}`;
      put(name, bytes);
    }
    const ptr = all.find((c) => c.kind === 'unicast' && c.question?.startsWith('_henge._sub._coaps') === true);
    if (ptr?.hex === undefined) throw new Error(`no answer to the PTR query: ${capture.stdout()}\n${capture.stderr()}`);
    const answer = Buffer.from(ptr.hex, 'hex');
    // Variants of the real answer, each a byte or two off: another protocol version, another hub, cut short.
    const swap = (from: string, to: string): Buffer => Buffer.from(answer.toString('latin1').replace(from, to), 'latin1');
    put('variant-v2', swap('v=1', 'v=2'));
    put('variant-other-id', swap(`id=${SECURE_ID}`, `id=${SECURE_ID.slice(0, -1)}f`));
    put('variant-truncated', answer.subarray(0, answer.length - 7));
    const loop = Buffer.from(answer);
    // The first compression pointer after the question made to point at itself.
    for (let i = 12; i + 1 < loop.length; i++) {
      if (((loop[i] ?? 0) & 0xc0) === 0xc0) {
        loop[i] = 0xc0 | (i >> 8);
        loop[i + 1] = i & 0xff;
        break;
      }
    }
    put('variant-pointer-loop', loop);
    process.stdout.write(`wrote ${written} seeds to ${OUT} (${all.length} messages captured)\n`);
  } finally {
    await pair.cleanup();
  }
}

await main();
