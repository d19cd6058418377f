/**
 * Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/), deterministically, from the hub's
 * own encoder (protocol/snapshot.ts) and the variant encodings of diff/snapshot-gen.ts:
 *
 *   node --import tsx firmware-libcoap/fuzz/seeds.ts
 *
 * The files are committed; rerun after a protocol change. Existing files of the same name are replaced,
 * others left alone.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSnapshot } from '../../protocol/snapshot.ts';
import type { ConfigValue } from '../../protocol/snapshot.ts';
import { rng } from '../../test/helpers/rng.ts';
import { encodeVariant, randomBytes, randomValues, randomVersion } from '../diff/snapshot-gen.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const INCARNATION = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
/** The MCU build's limit (henge_config.h HENGE_MAX_SNAPSHOT_BYTES): seeds beyond it only reach the size check. */
const MCU_BYTES = 4096;

function write(target: string, name: string, bytes: Uint8Array): void {
  const dir = join(HERE, 'corpus', target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), bytes);
}

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function snapshotSeeds(): number {
  let n = 0;
  const put = (name: string, bytes: Uint8Array): void => {
    write('snapshot', `${name}.cbor`, bytes);
    n++;
  };
  // docs/protocol.md's example and the shapes the hub sends.
  put('spec-example', buildSnapshot(7, { mode: 'heat', setpoint: 21.5 }, INCARNATION).bytes);
  put('empty', buildSnapshot(0, {}, INCARNATION).bytes);
  const types: Record<string, ConfigValue> = { a: 'x', b: -1, c: 1e300, d: true, e: false, f: 0.1, g: 100000, h: 'héllo', long_key: 3.25, i: -0, j: 5e-324, k: 65504, l: 1.5e-5, m: 2 ** 60, n: '😀\u0000' };
  put('every-type', buildSnapshot(2 ** 32, types, INCARNATION).bytes);
  put('led', buildSnapshot(12, { led: true, blink_ms: 250 }, INCARNATION).bytes);
  const fields = (count: number): Record<string, ConfigValue> => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i % 2 === 0]));
  put('fields-32', buildSnapshot(3, fields(32), INCARNATION).bytes);
  put('fields-33', buildSnapshot(3, fields(33), INCARNATION).bytes);
  put('text-256', buildSnapshot(4, { t: 'x'.repeat(256) }, INCARNATION).bytes);
  put('text-257', buildSnapshot(4, { t: 'é'.repeat(128) + 'x' }, INCARNATION).bytes);
  put('key-64', buildSnapshot(5, { [`_${'a-9'.repeat(21)}`]: 1 }, INCARNATION).bytes);
  // Valid encodings other than the hub's: long heads, indefinite maps, chunks, unknown envelope keys.
  put('long-heads', hex('b9 0005 04 48 0102030405060708 03 b8 01 64 6d6f6465 7a 00000004 68656174 02 48 b20cf0ed67fec9bb 01 1b 0000000000000007 00 18 01'));
  put('indefinite', hex('bf 00 01 01 07 02 5f 44 b20cf0ed 44 67fec9bb ff 03 bf 7f 62 6d6f 62 6465 ff 7f 62 6865 60 62 6174 ff 61 78 fb 3ff8000000000000 ff 04 48 0102030405060708 ff'));
  put('unknown-keys', hex('a8 00 01 01 07 09 82 a1 01 82 01 02 61 78 20 41 00 0a c1 1a 00000001 02 48 b20cf0ed67fec9bb 03 a1 61 6b f5 04 48 0102030405060708'));
  put('unknown-indefinite', hex('a7 00 01 01 07 18 63 9f bf 01 9f ff ff 5f ff 7f 60 ff d9 03e8 80 ff 02 48 0000000000000000 03 a0 04 48 0102030405060708 38 63 f6'));
  put('unknown-deep', hex('a6 00 01 01 07 09 81818181 81818181 00 02 48 0000000000000000 03 a0 04 48 0000000000000000'));
  // Random snapshots, and each in two other encodings.
  for (let i = 0; n < 60 && i < 500; i++) {
    const next = rng(0xf022 + i);
    const { snapshot, bytes } = buildSnapshot(randomVersion(next), randomValues(next), randomBytes(next, 8));
    if (bytes.length > MCU_BYTES) continue;
    put(`random-${i}`, bytes);
    const v = encodeVariant(snapshot, rng(i), { cborX: i % 2 === 0 });
    if (v.length <= MCU_BYTES) put(`random-${i}-variant`, v);
  }
  return n;
}

/** Device programs (fuzz_device.c): op bytes and their arguments. */
function deviceSeeds(): number {
  const programs: Record<string, number[]> = {
    // snapshot v1 inc0 (ETag right), ack 2.04, duplicate, valid
    'apply-ack-duplicate': [0, 1, 0, 7, 2, 0, 5, 1, 1, 4, 0, 0, 0, 1, 0, 7, 2, 0, 5, 1, 1, 3],
    // apply fails (platform E_APPLY), the same snapshot again, a newer one
    'fail-then-newer': [7, 1, 0, 2, 0, 9, 1, 0, 0, 0, 2, 0, 9, 1, 0, 7, 0, 0, 3, 0, 9, 0, 0],
    // another incarnation with a lower version, then a reboot, then an old one
    'new-incarnation-reboot': [0, 9, 0, 1, 1, 0, 0, 3, 1, 2, 0, 0, 5, 0, 9, 0, 1, 1, 0],
    // a wrong ETag, a late ack answer, timing
    'etag-late-ack': [0, 4, 0, 1, 0, 3, 0, 5, 0, 1, 0, 1, 4, 0, 0, 4, 1, 0, 6, 0, 255, 255, 255, 255, 6, 2, 1, 2, 3, 4, 0, 60],
    // raw bytes through the device
    'raw-example': [2, 49, ...hex('a5000101070248b20cf0ed67fec9bb03a2646d6f6465646865617468736574706f696e74f94d6004480102030405060708')],
  };
  for (const [name, bytes] of Object.entries(programs)) write('device', name, Uint8Array.from(bytes));
  return Object.keys(programs).length;
}

/** Slot programs (fuzz_slots.c): slot size, flash mode, then ops. */
function slotSeeds(): number {
  const programs: Record<string, number[]> = {
    'write-reboot': [0, 0, 0, 10, 1, 2, 4, 0, 20, 3, 4, 4],
    'cut-during-write': [1, 0, 0, 10, 1, 2, 2, 5, 0, 40, 7, 1, 4, 0, 3, 9, 9, 4],
    'fail-then-write': [2, 0, 3, 0, 8, 1, 1, 0, 8, 1, 1, 4, 0x84],
    // A crafted slot A header: magic "HNG1", sequence 0xffffffff, length 0, a wrong CRC.
    'crafted-header': [0, 1, 0x48, 0x4e, 0x47, 0x31, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, ...Array(48).fill(0xff), ...Array(64).fill(0xff), 0, 4, 1, 1, 4],
  };
  for (const [name, bytes] of Object.entries(programs)) write('slots', name, Uint8Array.from(bytes));
  return Object.keys(programs).length;
}

const counts = { snapshot: snapshotSeeds(), device: deviceSeeds(), slots: slotSeeds() };
console.log(`seeds written to ${join(HERE, 'corpus')}: ${JSON.stringify(counts)}`);
