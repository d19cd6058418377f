/**
 * The firmware's snapshot decoder (C, core/henge_snapshot.c) against the hub's own (protocol/snapshot.ts,
 * on cbor-x): random valid snapshots from the hub's encoder and in other valid encodings decode to the
 * same fields in both; damaged bytes are refused by both. The C side is diff/snapshot_canon.c, built
 * with ASan and UBSan, which prints each decoded snapshot as canonical JSON (see its header).
 *
 * Where the two decoders differ by design or by a gap in protocol/, a test says so by name and checks
 * the C side only (diff/README.md lists the differences).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { buildSnapshot, decodeSnapshot } from '../../protocol/snapshot.ts';
import type { ConfigValue, Snapshot } from '../../protocol/snapshot.ts';
import { FIRMWARE_BUILD, FIRMWARE_DIR, needFirmwareToolchain } from '../../test/helpers/firmware.ts';
import { rng } from '../../test/helpers/rng.ts';
import { encodeVariant, isWireInteger, randomBytes, randomValues, randomVersion } from './snapshot-gen.ts';

const CANON = join(FIRMWARE_BUILD, 'diff', 'henge-snapshot-canon');
const CANON_MCU = join(FIRMWARE_BUILD, 'diff', 'henge-snapshot-canon-mcu');
/** Random snapshots per test; HENGE_DIFF_COUNT raises it (each makes 1 + 3 encodings). */
const COUNT = Number(process.env['HENGE_DIFF_COUNT'] ?? 400);
const SEED = Number(process.env['HENGE_DIFF_SEED'] ?? 0x5eed);

/** One decoded field as the C tool prints it: [key, type, value]. */
type CField = [string, 't' | 'i' | 'f' | 'b', string | boolean];
interface Canon {
  status: string;
  envelope: boolean;
  version?: string;
  hash?: string;
  incarnation?: string;
  values?: CField[];
}

let built = false;
let buildError = '';

function build(): void {
  const r = spawnSync('make', ['-C', join(FIRMWARE_DIR, 'diff'), '--no-print-directory'], { encoding: 'utf8', timeout: 300_000 });
  built = r.status === 0;
  buildError = `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

/** Runs the C decoder on every input at once; one canonical line each. */
function decodeC(inputs: readonly Uint8Array[], bin = CANON): Canon[] {
  const parts: Buffer[] = [];
  for (const b of inputs) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, Buffer.from(b));
  }
  const r = spawnSync(bin, ['--batch'], { input: Buffer.concat(parts), maxBuffer: 512 * 1024 * 1024, encoding: 'utf8' });
  assert.equal(r.status, 0, `${bin} --batch exited ${String(r.status)} ${String(r.signal)}:\n${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, inputs.length, 'one line per input');
  return lines.map((l) => JSON.parse(l) as Canon);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function floatBits(v: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  return view.getBigUint64(0).toString(16).padStart(16, '0');
}

/** The canonical form of a snapshot as the hub means it: numbers typed as the hub's encoder types them. */
function canonOf(s: Snapshot): Canon {
  const keys = Object.keys(s.values).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); // keys are ASCII: UTF-16 order is byte order
  const values: CField[] = keys.map((k) => {
    const v = s.values[k] as ConfigValue;
    if (typeof v === 'string') return [k, 't', v];
    if (typeof v === 'boolean') return [k, 'b', v];
    return isWireInteger(v) ? [k, 'i', String(v)] : [k, 'f', floatBits(v)];
  });
  return { status: 'HENGE_OK', envelope: true, version: String(s.version), hash: hex(s.hash), incarnation: hex(s.incarnation), values };
}

/** protocol/'s verdict: the snapshot, or undefined when it refuses the bytes. */
function decodeTs(bytes: Uint8Array): Snapshot | undefined {
  try {
    return decodeSnapshot(bytes);
  } catch {
    return undefined;
  }
}

/** Same fields by value (an integral float and an integer are the same number), for inputs not typed by the hub. */
function sameByValue(c: Canon, s: Snapshot): string | undefined {
  if (c.version !== String(s.version) || c.hash !== hex(s.hash) || c.incarnation !== hex(s.incarnation)) return 'envelope differs';
  const want = Object.keys(s.values).length;
  if ((c.values ?? []).length !== want) return `C has ${(c.values ?? []).length} fields, protocol/ ${want}`;
  for (const [k, type, v] of c.values ?? []) {
    if (!Object.hasOwn(s.values, k)) return `protocol/ has no ${k}`;
    const js = s.values[k];
    if (type === 't' || type === 'b') {
      if (js !== v) return `${k}: ${JSON.stringify(v)} vs ${JSON.stringify(js)}`;
    } else if (typeof js !== 'number') {
      return `${k}: a number in C, ${typeof js} in protocol/`;
    } else if (type === 'i') {
      if (!Number.isInteger(js) || BigInt(v as string) !== BigInt(js)) return `${k}: ${String(v)} vs ${js}`;
    } else if (floatBits(js) !== v) {
      return `${k}: float ${String(v)} vs ${floatBits(js)}`;
    }
  }
  return undefined;
}

interface Case {
  readonly seed: number;
  readonly snapshot: Snapshot;
  readonly bytes: Uint8Array;
}

/** `COUNT` random snapshots through the hub's own encoder (protocol/snapshot.ts buildSnapshot). */
function hubSnapshots(seed: number, count = COUNT): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const next = rng(seed + i);
    const { snapshot, bytes } = buildSnapshot(randomVersion(next), randomValues(next), randomBytes(next, 8));
    out.push({ seed: seed + i, snapshot, bytes });
  }
  return out;
}

function explain(c: Case, bytes: Uint8Array, got: unknown, want: unknown): string {
  const h = hex(bytes);
  return `seed ${c.seed} (HENGE_DIFF_SEED=${SEED}), ${bytes.length} bytes: ${h.length > 400 ? `${h.slice(0, 400)}…` : h}\nC: ${JSON.stringify(got).slice(0, 600)}\nwant: ${JSON.stringify(want).slice(0, 600)}`;
}

describe('firmware decoder diff (C core vs protocol/)', () => {
  before(() => build());

  const ready = (t: Parameters<typeof needFirmwareToolchain>[0]): boolean => {
    if (!needFirmwareToolchain(t)) return false;
    assert.ok(built, `make -C firmware-libcoap/diff failed:\n${buildError}`);
    return true;
  };

  test('decoder diff - the hub encoder\'s bytes of random valid snapshots decode to the same fields in C and in protocol/', (t) => {
    if (!ready(t)) return;
    const cases = hubSnapshots(SEED);
    const c = decodeC(cases.map((x) => x.bytes));
    cases.forEach((x, i) => {
      const ts = decodeTs(x.bytes);
      assert.ok(ts, `protocol/ refused the hub's own bytes (seed ${x.seed})`);
      const want = canonOf(ts);
      assert.deepEqual(c[i], want, explain(x, x.bytes, c[i], want));
      // And protocol/ gives back what was encoded (so `want` is the hub's meaning, not a shared mistake).
      assert.deepEqual(want, canonOf(x.snapshot), `protocol/ does not round-trip seed ${x.seed}`);
    });
    t.diagnostic(`${cases.length} snapshots, ${cases.reduce((n, x) => n + Object.keys(x.snapshot.values).length, 0)} fields, ${cases.reduce((n, x) => n + x.bytes.length, 0)} bytes`);
  });

  test('decoder diff - other valid encodings (long heads, indefinite maps, wider floats, any key order, unknown envelope keys) agree', (t) => {
    if (!ready(t)) return;
    const cases = hubSnapshots(SEED + 1_000_000);
    const inputs: Array<{ c: Case; bytes: Uint8Array }> = [];
    for (const x of cases) {
      const next = rng(x.seed ^ 0x7a11);
      for (let k = 0; k < 3; k++) inputs.push({ c: x, bytes: encodeVariant(x.snapshot, next, { cborX: true }) });
    }
    const out = decodeC(inputs.map((x) => x.bytes));
    inputs.forEach(({ c, bytes }, i) => {
      const ts = decodeTs(bytes);
      assert.ok(ts, `protocol/ refused a valid encoding: ${explain(c, bytes, out[i], '-')}`);
      const want = canonOf(ts);
      assert.deepEqual(out[i], want, explain(c, bytes, out[i], want));
      assert.deepEqual(want, canonOf(c.snapshot), `protocol/ decodes the variant of seed ${c.seed} to other fields`);
    });
    t.diagnostic(`${inputs.length} encodings of ${cases.length} snapshots`);
  });

  test('decoder diff - encodings protocol/ (cbor-x) cannot decode (chunked strings, 8-byte heads): C decodes the fields of the deterministic bytes', (t) => {
    if (!ready(t)) return;
    const cases = hubSnapshots(SEED + 2_000_000);
    const inputs: Array<{ c: Case; bytes: Uint8Array }> = [];
    for (const x of cases) inputs.push({ c: x, bytes: encodeVariant(x.snapshot, rng(x.seed ^ 0xc4a7), { cborX: false }) });
    const out = decodeC(inputs.map((x) => x.bytes));
    let tsRefused = 0;
    inputs.forEach(({ c, bytes }, i) => {
      const want = canonOf(c.snapshot);
      assert.deepEqual(out[i], want, explain(c, bytes, out[i], want));
      if (decodeTs(bytes) === undefined) tsRefused++;
    });
    t.diagnostic(`${inputs.length} encodings; protocol/ refused ${tsRefused} of them (see VariantOptions in snapshot-gen.ts)`);
  });

  test('decoder diff - the MCU build (default limits): the same fields within its limits, HENGE_E_LIMIT with the envelope beyond them', (t) => {
    if (!ready(t)) return;
    // The defaults of core/henge_config.h.
    const MCU = { fields: 32, text: 256, bytes: 4096 };
    const cases = hubSnapshots(SEED + 3_000_000);
    const full = decodeC(cases.map((x) => x.bytes));
    const mcu = decodeC(
      cases.map((x) => x.bytes),
      CANON_MCU,
    );
    let within = 0;
    cases.forEach((x, i) => {
      const vals = Object.values(x.snapshot.values);
      const fits = vals.length <= MCU.fields && vals.every((v) => typeof v !== 'string' || Buffer.byteLength(v) <= MCU.text) && x.bytes.length <= MCU.bytes;
      if (fits) {
        within++;
        assert.deepEqual(mcu[i], full[i], explain(x, x.bytes, mcu[i], full[i]));
        return;
      }
      const m = mcu[i] as Canon;
      const f = full[i] as Canon;
      assert.equal(m.status, 'HENGE_E_LIMIT', explain(x, x.bytes, m, 'HENGE_E_LIMIT'));
      if (x.bytes.length > MCU.bytes) {
        assert.equal(m.envelope, false, 'a snapshot larger than HENGE_MAX_SNAPSHOT_BYTES is not read at all');
      } else {
        assert.equal(m.envelope, true, 'beyond the limits, the envelope is kept (to ack "rejected")');
        assert.deepEqual([m.version, m.hash, m.incarnation], [f.version, f.hash, f.incarnation]);
      }
    });
    t.diagnostic(`${within} of ${cases.length} within the MCU limits`);
  });

  test('decoder diff - damaged inputs: both decoders refuse every one', (t) => {
    if (!ready(t)) return;
    const H = 'a5 00 01 01 07 02 48 0000000000000000';
    const T = '04 48 0102030405060708';
    const V = (values: string): string => `${H} 03 ${values} ${T}`;
    const damaged: Record<string, string> = {
      'nothing': '',
      'a lone break': 'ff',
      'an array': '85 00 01 01 07 02',
      'a text': '64 6d6f6465',
      'an integer': '07',
      'a byte after the item': `${V('a0')} 00`,
      'two snapshots': `${V('a0')} ${V('a0')}`,
      'protocol 2': 'a5 00 02 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'protocol as text': 'a5 00 61 31 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'no protocol': 'a4 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'no version': 'a4 00 01 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'a negative version': 'a5 00 01 01 26 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'a text version': 'a5 00 01 01 61 37 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'no hash': 'a4 00 01 01 07 03 a0 04 48 0102030405060708',
      'a 7-byte hash': 'a5 00 01 01 07 02 47 00000000000000 03 a0 04 48 0102030405060708',
      'a 9-byte hash': 'a5 00 01 01 07 02 49 000000000000000000 03 a0 04 48 0102030405060708',
      'a text hash': 'a5 00 01 01 07 02 68 3030303030303030 03 a0 04 48 0102030405060708',
      'no values': 'a4 00 01 01 07 02 48 0000000000000000 04 48 0102030405060708',
      'values an array': V('80'),
      'values a text': V('61 61'),
      'no incarnation': `${H} 03 a0`,
      'a 4-byte incarnation': `${H} 03 a0 04 44 01020304`,
      'a text envelope key': 'a6 00 01 61 78 01 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'an integer value key': V('a1 01 01'),
      'a bytes value key': V('a1 41 61 01'),
      'null': V('a1 61 61 f6'),
      'undefined': V('a1 61 61 f7'),
      'a simple value': V('a1 61 61 f0'),
      'an array value': V('a1 61 61 82 01 02'),
      'a map value': V('a1 61 61 a1 61 62 01'),
      'a bytes value': V('a1 61 61 42 0102'),
      'a tagged value (epoch time)': V('a1 61 61 c1 1a 5f5e1000'),
      'a tagged value (bignum)': V('a1 61 61 c2 49 010000000000000000'),
      'NaN (half)': V('a1 61 61 f9 7e00'),
      'NaN (double)': V('a1 61 61 fb 7ff8000000000000'),
      'Infinity (half)': V('a1 61 61 f9 7c00'),
      '-Infinity (single)': V('a1 61 61 fa ff800000'),
      'Infinity (double)': V('a1 61 61 fb 7ff0000000000000'),
      'an integer beyond 64 bits (uint64 max)': V('a1 61 61 1b ffffffffffffffff'),
      'the integer 2^53 (the protocol allows ±(2^53 - 1))': V('a1 61 61 1b 0020000000000000'),
      'the integer -2^53': V('a1 61 61 3b 001fffffffffffff'),
      'int64 max': V('a1 61 61 1b 7fffffffffffffff'),
      'int64 min': V('a1 61 61 3b 7fffffffffffffff'),
      'the key __proto__': V('a1 69 5f5f70726f746f5f5f f5'),
      'a text envelope key after the others': `a6 00 01 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708 61 78 01`,
      'a negative integer beyond int64': V('a1 61 61 3b 8000000000000000'),
      'reserved additional information 28': V('a1 61 61 1c'),
      'reserved additional information 30': V('a1 61 61 fe'),
      'an indefinite integer': V('a1 61 61 1f'),
      'a break as a value': V('a1 61 61 ff'),
      'a text longer than the input': V('a1 61 61 7a 00001000 61'),
      'a map claiming 2^32 entries': V('bb 0000000100000000 61 61 01'),
      'a map claiming more entries than there are': V('a3 61 61 01'),
      'an unended indefinite map': 'bf 00 01 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'an unended values map': `${H} 03 bf 61 61 01 ${T}`,
      'a truncated float': V('a1 61 61 fb 3ff00000'),
      'a truncated hash': 'a5 00 01 01 07 02 48 00000000',
      '257 fields (the protocol allows 256)': V(`b9 0101 ${Array.from({ length: 257 }, (_, i) => `64 ${Buffer.from(`k${String(i).padStart(3, '0')}`).toString('hex')} f5`).join(' ')}`),
    };
    const names = Object.keys(damaged);
    const inputs = names.map((n) => unhex(damaged[n] as string));
    const c = decodeC(inputs);
    const wrong: string[] = [];
    names.forEach((name, i) => {
      const cs = (c[i] as Canon).status;
      const ts = decodeTs(inputs[i] as Uint8Array);
      if (cs === 'HENGE_OK') wrong.push(`${name}: the C decoder accepted it`);
      if (ts !== undefined) wrong.push(`${name}: protocol/ accepted it as ${JSON.stringify(ts.values)}`);
    });
    assert.deepEqual(wrong, [], wrong.map((w) => w.slice(0, 300)).join('\n'));
    t.diagnostic(`${names.length} damaged inputs refused by both`);
  });

  test('decoder diff - every truncation of hub snapshots is refused by both', (t) => {
    if (!ready(t)) return;
    const cases = hubSnapshots(SEED + 4_000_000, 40).filter((x) => x.bytes.length < 3000);
    const inputs: Array<{ c: Case; bytes: Uint8Array }> = [];
    for (const x of cases) for (let cut = 0; cut < x.bytes.length; cut++) inputs.push({ c: x, bytes: x.bytes.subarray(0, cut) });
    const out = decodeC(inputs.map((x) => x.bytes));
    inputs.forEach(({ c, bytes }, i) => {
      assert.notEqual((out[i] as Canon).status, 'HENGE_OK', `C accepted a truncation: ${explain(c, bytes, out[i], 'refused')}`);
      assert.equal(decodeTs(bytes), undefined, `protocol/ accepted a truncation of seed ${c.seed} at ${bytes.length}`);
    });
    t.diagnostic(`${inputs.length} truncations of ${cases.length} snapshots`);
  });

  test('decoder diff - random corruptions: whatever both accept, they decode to the same fields', (t) => {
    if (!ready(t)) return;
    const cases = hubSnapshots(SEED + 5_000_000, 300);
    const inputs: Array<{ c: Case; bytes: Uint8Array }> = [];
    for (const x of cases) {
      const next = rng(x.seed ^ 0xbad);
      for (let k = 0; k < 20; k++) {
        const b = Uint8Array.from(x.bytes);
        const flips = 1 + Math.floor(next() * 3);
        for (let f = 0; f < flips; f++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
        inputs.push({ c: x, bytes: b });
      }
    }
    const out = decodeC(inputs.map((x) => x.bytes));
    const tally = { both: 0, neither: 0, onlyC: 0, onlyTs: 0 };
    inputs.forEach(({ c, bytes }, i) => {
      const cOk = (out[i] as Canon).status === 'HENGE_OK';
      const ts = decodeTs(bytes);
      if (cOk && ts) {
        tally.both++;
        const why = sameByValue(out[i] as Canon, ts);
        assert.equal(why, undefined, `both accepted, with other fields (${String(why)}): ${explain(c, bytes, out[i], ts.values)}`);
      } else if (cOk) tally.onlyC++;
      else if (ts) tally.onlyTs++;
      else tally.neither++;
    });
    t.diagnostic(`${inputs.length} corruptions: both accept ${tally.both}, both refuse ${tally.neither}, only C accepts ${tally.onlyC}, only protocol/ accepts ${tally.onlyTs}`);
  });

  test('decoder diff - where the protocol forbids what protocol/ lets through, the C decoder refuses it', (t) => {
    if (!ready(t)) return;
    // docs/protocol.md: keys match [A-Za-z_][A-Za-z0-9_-]{0,63}, text is UTF-8 of at most 4,096 bytes, a
    // map key once, key 0 and key 1 unsigned. protocol/ (cbor-x) accepts these; the firmware must not.
    const H = 'a5 00 01 01 07 02 48 0000000000000000';
    const T = '04 48 0102030405060708';
    const V = (values: string): string => `${H} 03 ${values} ${T}`;
    const cases: Record<string, string> = {
      'invalid UTF-8': V('a1 61 61 62 c328'),
      'an overlong NUL': V('a1 61 61 62 c080'),
      'a UTF-16 surrogate': V('a1 61 61 63 eda080'),
      'a code point above U+10FFFF': V('a1 61 61 64 f4908080'),
      'a key twice': V('a2 61 61 01 61 61 02'),
      'an empty key': V('a1 60 01'),
      'a key with a space': V('a1 63 612062 01'),
      'a key starting with a digit': V('a1 62 3161 01'),
      'a 65-byte key': V(`a1 78 41 ${'61'.repeat(65)} 01`),
      'an envelope key twice': 'a6 00 01 01 07 01 08 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'protocol as the float 1.0': 'a5 00 f9 3c00 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'version as the float 7.0': 'a5 00 01 01 f9 4700 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      'a 4,097-byte text (the protocol allows 4,096)': V(`a1 61 61 79 1001 ${'78'.repeat(4097)}`),
    };
    const names = Object.keys(cases);
    const inputs = names.map((n) => unhex(cases[n] as string));
    const c = decodeC(inputs);
    const lax: string[] = [];
    names.forEach((name, i) => {
      assert.notEqual((c[i] as Canon).status, 'HENGE_OK', `the C decoder accepted ${name}`);
      if (decodeTs(inputs[i] as Uint8Array) !== undefined) lax.push(name);
    });
    t.diagnostic(`protocol/ accepts ${lax.length} of ${names.length}: ${lax.join('; ')}`);
  });

  test('decoder diff - what the C decoder accepts and protocol/ refuses: valid encodings cbor-x cannot read; a version beyond 2^53 - 1 both refuse', (t) => {
    if (!ready(t)) return;
    const H = 'a5 00 01 01 07 02 48 0000000000000000';
    const T = '04 48 0102030405060708';
    const E = { status: 'HENGE_OK', envelope: true, version: '7', hash: '0000000000000000', incarnation: '0102030405060708' };
    const cases: Array<[string, string, Canon]> = [
      // Valid encodings (docs/protocol.md: "A device must accept any valid encoding") that protocol/ refuses.
      ['a chunked text', `${H} 03 a1 61 61 7f 62 6865 61 79 ff ${T}`, { ...E, values: [['a', 't', 'hey']] }],
      ['envelope key 4 in an 8-byte head', `${H} 03 a0 1b 0000000000000004 48 0102030405060708`, { ...E, values: [] }],
      ['protocol 1 in an 8-byte head', `a5 00 1b 0000000000000001 01 07 02 48 0000000000000000 03 a0 ${T}`, { ...E, values: [] }],
      ['a non-ASCII text, then a string with an 8-byte length', `a5 00 01 01 07 03 a1 61 61 62 c3a9 02 5b 0000000000000008 0000000000000000 ${T}`, { ...E, values: [['a', 't', 'é']] }],
      // docs/protocol.md ("Limits"): the version is at most 2^53 - 1; both decoders refuse more.
      ['a version beyond 2^53', `a5 00 01 01 1b 0020000000000001 02 48 0000000000000000 03 a0 ${T}`, { status: 'HENGE_E_SNAPSHOT', envelope: false }],
      // The edges of the integer range: both take them.
      ['2^53 - 1 and -(2^53 - 1)', `${H} 03 a2 61 61 1b 001fffffffffffff 61 62 3b 001ffffffffffffe ${T}`, { ...E, values: [['a', 'i', '9007199254740991'], ['b', 'i', '-9007199254740991']] }],
    ];
    const c = decodeC(cases.map(([, h]) => unhex(h)));
    const refused: string[] = [];
    cases.forEach(([name, h, want], i) => {
      assert.deepEqual(c[i], want, `C on ${name}`);
      if (decodeTs(unhex(h)) === undefined) refused.push(name);
    });
    assert.ok(refused.includes('a version beyond 2^53'), 'protocol/ refuses a version beyond 2^53 - 1 too');
    t.diagnostic(`protocol/ refuses ${refused.length} of ${cases.length}: ${refused.join('; ')}`);
  });

  test(
    'decoder diff - an envelope key that is not an unsigned integer makes the snapshot invalid (docs/protocol.md, "Limits")',
    (t) => {
      if (!ready(t)) return;
      const cases: Record<string, string> = {
        'key -1': 'a6 00 01 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708 20 41 00',
        'key -100 before the others': 'a6 38 63 f6 00 01 01 07 02 48 0000000000000000 03 a0 04 48 0102030405060708',
      };
      const names = Object.keys(cases);
      const c = decodeC(names.map((n) => unhex(cases[n] as string)));
      names.forEach((name, i) => {
        assert.notEqual((c[i] as Canon).status, 'HENGE_OK', `the C decoder accepts ${name}`);
        assert.equal(decodeTs(unhex(cases[name] as string)), undefined, `protocol/ accepts ${name}`);
      });
    },
  );
});
