/**
 * `npm run bench:dtls-records`: what one DTLS record costs the hub inside OpenSSL (the addon alone, no
 * sockets, no CoAP), to tell the fan-out's DTLS overhead that no JavaScript change can remove from the rest.
 *
 * Method: one process, the addon's server and client sessions paired in memory (handshakes pumped by
 * hand, TLS_PSK_WITH_AES_128_CCM_8). For S sessions, each round encrypts one 190-byte notification per
 * session on the server (`write`), lets each client decrypt it and answer a 4-byte ACK (not timed), then
 * decrypts every ACK on the server (`feed`). Timed per call, median of the rounds, for S = 1 (caches hot)
 * and S = 5,000 (the fan-out's sessions, caches cold). Prints the method, progress and one JSON line, also
 * written to bench/results/dtls-records.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDtls } from '../../dtls/native.ts';
import type { DtlsAddon, NativeHandle } from '../../dtls/native.ts';
import { median, round } from '../lib/stats.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CIPHERS = 'PSK-AES128-CCM8';
const NOTIFICATION_BYTES = 190;
const ROUNDS = 7;

function line(s: string): void {
  process.stdout.write(`${s}\n`);
}

/** A server and a client session with a completed handshake, pumped in memory. */
function pair(a: DtlsAddon, server: NativeHandle, key: Buffer, peer: string): { srv: NativeHandle; cli: NativeHandle } {
  const c = a.createClient({ ciphers: CIPHERS, identity: 'bench', key });
  const toServer: Buffer[] = [...c.out];
  const toClient: Buffer[] = [];
  let srv: NativeHandle | null = null;
  for (let i = 0; i < 10; i++) {
    for (const d of toServer.splice(0)) {
      if (srv === null) {
        const r = a.listen(server, peer, d);
        toClient.push(...r.out);
        srv = r.session;
      } else {
        const r = a.feed(srv, d);
        if (!Buffer.isBuffer(r)) toClient.push(...r.out);
      }
    }
    for (const d of toClient.splice(0)) {
      const r = a.feed(c.session, d);
      if (!Buffer.isBuffer(r)) toServer.push(...r.out);
    }
  }
  if (srv === null) throw new Error('the in-memory handshake did not complete');
  return { srv, cli: c.session };
}

function measure(a: DtlsAddon, sessions: number): { writeUs: number; feedUs: number } {
  const key = Buffer.from('b'.repeat(43), 'ascii');
  const server = a.createServer({ ciphers: CIPHERS, pskLookup: () => key });
  const pairs = Array.from({ length: sessions }, (_, i) => pair(a, server, key, `p${i}`));
  const plain = Buffer.alloc(NOTIFICATION_BYTES, 7);
  const ack = Buffer.from([0x60, 0x00, 0x12, 0x34]);
  // One round's worth of records at the least, so a one-session run times more than one call.
  const perRound = Math.max(sessions, 20_000);
  const writes: number[] = [];
  const feeds: number[] = [];
  const records: Buffer[] = new Array<Buffer>(perRound);
  const acks: Buffer[] = new Array<Buffer>(perRound);
  for (let round = 0; round <= ROUNDS; round++) {
    let t = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) {
      const r = a.write(pairs[i % sessions]!.srv, plain);
      if (!Buffer.isBuffer(r)) throw new Error(`write gave no record: ${String(r.error)}`);
      records[i] = r;
    }
    const w = Number(process.hrtime.bigint() - t) / perRound / 1000;
    for (let i = 0; i < perRound; i++) {
      const p = pairs[i % sessions]!;
      a.feed(p.cli, records[i]!);
      const r = a.write(p.cli, ack);
      if (!Buffer.isBuffer(r)) throw new Error('the client wrote no ACK record');
      acks[i] = r;
    }
    t = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) a.feed(pairs[i % sessions]!.srv, acks[i]!);
    const f = Number(process.hrtime.bigint() - t) / perRound / 1000;
    if (round > 0) {
      // Round 0 warms up.
      writes.push(w);
      feeds.push(f);
    }
  }
  for (const p of pairs) {
    a.close(p.srv);
    a.close(p.cli);
  }
  return { writeUs: round(median(writes), 2), feedUs: round(median(feeds), 2) };
}

async function main(): Promise<void> {
  const a = loadDtls();
  line(`henge bench:dtls-records  (${new Date().toISOString()}, ${a.openssl})`);
  line('method:');
  line(`  the addon alone, server and client sessions paired in memory, ${CIPHERS}; per round: the server encrypts one`);
  line(`  ${NOTIFICATION_BYTES}-byte notification per session (write), each client decrypts it and answers a 4-byte ACK (untimed), the`);
  line(`  server decrypts every ACK (feed); µs per call, median of ${ROUNDS} rounds after a warm-up; S = 1 and S = 5,000 sessions.`);
  const loadAtStart = loadavg().map((x) => round(x, 2));
  const results: Record<string, { writeUs: number; feedUs: number }> = {};
  for (const s of [1, 5000]) {
    line(`  S=${s}: pairing ${s} sessions and timing ${ROUNDS} rounds...`);
    const r = measure(a, s);
    results[`sessions${s}`] = r;
    line(`  S=${s}: hub write ${r.writeUs} µs/notification, hub feed ${r.feedUs} µs/ACK (${round(r.writeUs + r.feedUs, 2)} µs the pair)`);
  }
  const out = { bench: 'dtls-records', time: new Date().toISOString(), openssl: a.openssl, cipher: CIPHERS, loadAvgAtStart: loadAtStart, loadAvgAtEnd: loadavg().map((x) => round(x, 2)), results };
  const file = resolve(REPO_ROOT, 'bench/results/dtls-records.json');
  await mkdir(resolve(REPO_ROOT, 'bench/results'), { recursive: true });
  await writeFile(file, `${JSON.stringify(out)}\n`);
  line(`(also written to ${file})`);
  line(JSON.stringify(out));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:dtls-records failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
