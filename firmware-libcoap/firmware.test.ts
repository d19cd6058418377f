/**
 * The C firmware core from `npm test`: its unit tests (C, under ASan and UBSan), the fixtures it shares
 * with protocol/snapshot.ts, a differential test of its decoder and renderer against the Node agent's on
 * random snapshots (the Cortex-M0+ size budget is size/size.test.ts). Without the compiler a test skips
 * itself naming the Debian package; with CI=true that is a failure.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Encoder } from 'cbor-x';
import { render } from '../agent/formats.ts';
import { buildSnapshot, decodeSnapshot } from '../protocol/snapshot.ts';
import type { ConfigValue } from '../protocol/snapshot.ts';
import { FIRMWARE_BUILD, FIRMWARE_DIR, makeFirmware, needFirmwareToolchain } from '../test/helpers/firmware.ts';
import { rng } from '../test/helpers/rng.ts';

const CORE_TESTS = join(FIRMWARE_BUILD, 'test', 'henge-core-tests');
const SNAPSHOT_TOOL = join(FIRMWARE_BUILD, 'tools', 'henge-snapshot-json');
const INCARNATION = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

function build(target: string): void {
  const r = makeFirmware([target]);
  assert.ok(r.ok, `make ${target} failed:\n${r.output}`);
}

/** Runs the snapshot tool on many snapshots at once: [code, text] per input. */
function runTool(inputs: ReadonlyArray<{ mode: 'j' | 'e' | 'l'; bytes: Uint8Array }>): Array<{ code: number; text: string }> {
  const parts: Buffer[] = [];
  for (const { mode, bytes } of inputs) {
    const head = Buffer.alloc(5);
    head[0] = mode.charCodeAt(0);
    head.writeUInt32BE(bytes.length, 1);
    parts.push(head, Buffer.from(bytes));
  }
  const r = spawnSync(SNAPSHOT_TOOL, ['--batch'], { input: Buffer.concat(parts), maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, `henge-snapshot-json --batch: ${r.stderr?.toString() ?? ''}`);
  const out: Array<{ code: number; text: string }> = [];
  const b = r.stdout;
  for (let at = 0; at < b.length; ) {
    const code = b[at] ?? 255;
    const n = b.readUInt32BE(at + 1);
    out.push({ code, text: b.subarray(at + 5, at + 5 + n).toString('utf8') });
    at += 5 + n;
  }
  assert.equal(out.length, inputs.length);
  return out;
}

/** Random config values: every scalar type, keys that clash as env names now and then, awkward text. */
function randomValues(next: () => number): Record<string, ConfigValue> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const n = Math.floor(next() * 12);
  const values: Record<string, ConfigValue> = {};
  const first = 'abcxyzABCXYZ_';
  const rest = 'abcdefXYZ019_-';
  const texts = ['', 'heat', "it's", 'quote " and \\ backslash', 'tab\there', 'new\nline', '\u0001\u001f\u007f', 'héllo wörld', '日本語', '😀 emoji', '\u2028\u2029', 'x'.repeat(300)];
  for (let i = 0; i < n; i++) {
    let key = pick([...first]);
    const len = Math.floor(next() * 10);
    for (let j = 0; j < len; j++) key += pick([...rest]);
    if (key === '__proto__') continue;
    const kind = Math.floor(next() * 9);
    let v: ConfigValue;
    switch (kind) {
      case 0:
        v = pick(texts);
        break;
      case 1:
        v = Math.floor((next() - 0.5) * 2 ** Math.floor(next() * 54));
        break;
      case 2:
        v = (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20);
        break;
      case 3:
        v = next() < 0.5;
        break;
      case 4:
        v = pick([0.1, 0.5, 21.5, -4, 1e21, 1e-7, 123456789012345680000, 1.5e-323, 5e-324, 1.7976931348623157e308, 0.000001, 1e-6 * 3, 2 ** 53, -(2 ** 53), 100, 1e100]);
        break;
      case 5:
        v = Math.fround(next() * 1000);
        break;
      case 6:
        v = Math.round(next() * 4000) / 8;
        break;
      case 7:
        v = Number((next() * 1e6).toPrecision(1 + Math.floor(next() * 16)));
        break;
      default:
        v = pick(texts) + String(i);
    }
    values[key] = v;
  }
  return values;
}

/** The Node agent's rendering, or the error it throws. */
function nodeRender(format: 'json' | 'env', values: Record<string, ConfigValue>): { ok: true; text: string } | { ok: false; message: string } {
  try {
    return { ok: true, text: render(format, values) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

describe('firmware core (C)', () => {
  test('firmware core - unit tests pass under ASan and UBSan (N passed, 0 failed)', { timeout: 300_000 }, (t) => {
    if (!needFirmwareToolchain(t)) return;
    build('build/test/henge-core-tests');
    const r = spawnSync(CORE_TESTS, [], { encoding: 'utf8', timeout: 120_000 });
    const out = `${r.stdout}${r.stderr}`;
    const summary = /(\d+) passed, (\d+) failed/.exec(r.stdout);
    assert.ok(summary, `no summary line:\n${out}`);
    assert.equal(Number(summary[2]), 0, out);
    assert.ok(Number(summary[1]) >= 30, `only ${summary[1]} tests ran`);
    assert.equal(r.status, 0, out);
  });

  test('firmware core - the fixtures in tests/test_snapshot.c are the bytes protocol/snapshot.ts encodes', () => {
    const source = readFileSync(join(FIRMWARE_DIR, 'tests', 'test_snapshot.c'), 'utf8');
    const fixture = (name: string): string => {
      const m = new RegExp(`${name} =\\s*((?:\\s*"[0-9a-f]*")+);`).exec(source);
      assert.ok(m?.[1], `${name} not found in test_snapshot.c`);
      return [...m[1].matchAll(/"([0-9a-f]*)"/g)].map((x) => x[1]).join('');
    };
    const hex = (v: Record<string, ConfigValue>): string => Buffer.from(buildSnapshot(7, v, INCARNATION).bytes).toString('hex');
    assert.equal(fixture('FIXTURE_EXAMPLE'), hex({ mode: 'heat', setpoint: 21.5 }));
    assert.equal(fixture('FIXTURE_EMPTY'), hex({}));
    assert.equal(fixture('FIXTURE_TYPES'), hex({ a: 'x', b: -1, c: 1e300, d: true, e: false, f: 0.1, g: 100000, h: 'héllo', long_key: 3.25 }));
  });

  test('firmware core - decoder and renderer agree with the Node agent on random snapshots (deterministic and cbor-x encodings)', { timeout: 300_000 }, (t) => {
    if (!needFirmwareToolchain(t)) return;
    build('build/tools/henge-snapshot-json');
    const next = rng(0x4e6e);
    // cbor-x's own encoder: insertion order, 64-bit floats, other heads: still valid snapshots.
    const loose = new Encoder({ useRecords: false, mapsAsObjects: false });
    const cases: Array<{ values: Record<string, ConfigValue>; bytes: Uint8Array; format: 'json' | 'env' }> = [];
    for (let i = 0; i < 400; i++) {
      const values = randomValues(next);
      // cbor-x writes integers beyond 32 bits as floats, which the protocol's unsigned version is not
      // (the C decoder refuses them; cbor-x reads them back): its cases keep to 32-bit versions.
      const built = buildSnapshot(1 + Math.floor(next() * (i % 3 === 0 ? 2 ** 32 - 1 : 2 ** 40)), values, INCARNATION);
      let bytes = built.bytes;
      if (i % 3 === 0) {
        const envelope = new Map<number, unknown>([
          [4, Buffer.from(INCARNATION)],
          [3, new Map(Object.entries(values))],
          [1, built.snapshot.version],
          [0, 1],
          [2, Buffer.from(built.snapshot.hash)],
        ]);
        bytes = loose.encode(envelope);
        assert.deepEqual(decodeSnapshot(bytes).values, decodeSnapshot(built.bytes).values, 'the Node decoder reads both encodings alike');
      }
      cases.push({ values, bytes, format: i % 2 === 0 ? 'json' : 'env' });
    }
    const results = runTool(cases.map((c) => ({ mode: c.format === 'json' ? 'j' : 'e', bytes: c.bytes })));
    let envRefusals = 0;
    cases.forEach((c, i) => {
      const got = results[i];
      assert.ok(got);
      // As the Node agent renders: the values as its decoder gives them (snapshot order matters for
      // which env clash is named first).
      const want = nodeRender(c.format, decodeSnapshot(c.bytes).values);
      const what = `case ${i} (${c.format}): ${JSON.stringify(c.values)}`;
      if (want.ok) {
        assert.equal(got.code, 0, `${what}: henge-fw refused: ${got.text}`);
        assert.equal(got.text, want.text, what);
      } else {
        envRefusals++;
        assert.equal(got.code, 2, `${what}: Node refused (${want.message}), henge-fw wrote ${got.text}`);
        assert.match(got.text, /^HENGE_E_REJECT /);
        assert.ok(got.text.includes(want.message), `${what}: ${got.text} vs ${want.message}`);
      }
    });
    assert.ok(envRefusals > 0, 'some env cases clash (both sides refuse them)');
  });

  test('firmware core - the LED follows led and blink_ms', (t) => {
    if (!needFirmwareToolchain(t)) return;
    build('build/tools/henge-snapshot-json');
    const cases: Array<[Record<string, ConfigValue>, string]> = [
      [{}, 'off'],
      [{ led: true }, 'on'],
      [{ led: false }, 'off'],
      [{ led: true, blink_ms: 250 }, 'blink 250'],
      [{ blink_ms: 500 }, 'blink 500'],
      [{ led: false, blink_ms: 500 }, 'off'],
      [{ led: true, blink_ms: 0 }, 'on'],
      [{ led: 'yes' }, 'off'],
    ];
    const results = runTool(cases.map(([v]) => ({ mode: 'l', bytes: buildSnapshot(1, v, INCARNATION).bytes })));
    cases.forEach(([v, want], i) => assert.equal(results[i]?.text, `${want}\n`, JSON.stringify(v)));
  });
});
