/**
 * The Cortex-M0+ size check (size/Makefile, size/report.sh) from `npm test`: the core, cross-compiled
 * with arm-none-eabi-gcc (-Os, freestanding, HENGE_NO_ERRMSG, default limits) and linked with
 * --gc-sections with the libgcc and newlib-nano helpers it calls and the state a port keeps, must fit
 * 16 KB of flash (.text + .data) and 4 KB of static RAM (.data + .bss). The last line of the report
 * is what `npm run size:firmware` ends with.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIRMWARE_DIR, needFirmwareToolchain } from '../../test/helpers/firmware.ts';
import { run } from '../../test/helpers/firmware.ts';

const TOTAL = /^TOTAL \.text (\d+) \.data (\d+) \.bss (\d+) \| flash \(\.text\+\.data\) (\d+) B of (\d+): (ok|OVER) \| static RAM \(\.data\+\.bss\) (\d+) B of (\d+): (ok|OVER) \| (PASS|FAIL)$/;
const ROW = /^(core\/\S+|\S+\.a helpers|state a port keeps.*?)\s+(\d+)\s+(\d+)\s+(\d+)/;

describe('firmware size (Cortex-M0+)', () => {
  test('size - the core fits a Cortex-M0+: at most 16 KB flash and 4 KB static RAM (arm-none-eabi-gcc -Os, linked)', { timeout: 300_000 }, (t) => {
    if (!needFirmwareToolchain(t, { arm: true })) return;
    const r = run('make', ['-C', join(FIRMWARE_DIR, 'size'), '--no-print-directory', '-s'], 280_000);
    const lines = r.output.trimEnd().split('\n');
    for (const l of lines) t.diagnostic(l);
    const last = lines.at(-1) ?? '';
    const m = TOTAL.exec(last);
    assert.ok(m, `the last line is not the totals:\n${r.output}`);
    const [text, data, bss, flash, flashMax, , ram, ramMax, , verdict] = m.slice(1).map((x) => (/^\d+$/.test(x ?? '') ? Number(x) : x)) as [number, number, number, number, number, string, number, number, string, string];
    assert.equal(flash, text + data);
    assert.equal(ram, data + bss);
    assert.equal(flashMax, 16384);
    assert.equal(ramMax, 4096);
    assert.ok(flash <= 16384, `flash ${flash} B > 16 KB`);
    assert.ok(ram <= 4096, `static RAM ${ram} B > 4 KB`);
    assert.equal(verdict, 'PASS');
    assert.equal(r.code, 0, r.output);
    // The rows add up to the totals (the report also checks them against arm-none-eabi-size).
    const rows = lines.map((l) => ROW.exec(l)).filter((x): x is RegExpExecArray => x !== null);
    assert.ok(rows.some((x) => x[1] === 'core/henge_snapshot.c'), 'a row per core file');
    const sum = (i: number): number => rows.reduce((n, x) => n + Number(x[i]), 0);
    assert.deepEqual([sum(2), sum(3), sum(4)], [text, data, bss], 'the rows add up to TOTAL');
  });
});
