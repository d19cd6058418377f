/**
 * The core's C unit tests (tests/runner.c, tests/test_*.c) built by sanitize/Makefile two more ways
 * than the main build: clang with ASan, UBSan (with implicit-conversion checks) and LeakSanitizer, and
 * gcc without sanitizers under valgrind memcheck. Each must report "N passed, 0 failed" with no error
 * and no leak.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIRMWARE_DIR, needFirmwareToolchain } from '../../test/helpers/firmware.ts';
import { CLANG, VALGRIND, needTools, run } from '../../test/helpers/firmware.ts';

const DIR = join(FIRMWARE_DIR, 'sanitize');

function counts(output: string): { passed: number; failed: number } {
  const m = /(\d+) passed, (\d+) failed/.exec(output);
  assert.ok(m, `no "N passed, N failed" line:\n${output.slice(-3000)}`);
  return { passed: Number(m[1]), failed: Number(m[2]) };
}

describe('firmware core under sanitizers', () => {
  test('sanitize - the core unit tests pass under clang ASan + UBSan + LeakSanitizer with no report', { timeout: 300_000 }, (t) => {
    if (!needFirmwareToolchain(t) || !needTools(t, [CLANG])) return;
    const r = run('make', ['-C', DIR, '--no-print-directory', 'asan'], 280_000);
    const c = counts(r.output);
    assert.equal(r.code, 0, r.output.slice(-4000));
    assert.equal(c.failed, 0, r.output.slice(-4000));
    assert.ok(c.passed > 0);
    assert.doesNotMatch(r.output, /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/, r.output.slice(-4000));
    t.diagnostic(`${c.passed} passed, 0 failed; no ASan, LSan or UBSan report`);
  });

  test('sanitize - the core unit tests pass under valgrind memcheck: 0 errors, 0 leaks', { timeout: 300_000 }, (t) => {
    if (!needFirmwareToolchain(t) || !needTools(t, [VALGRIND])) return;
    const r = run('make', ['-C', DIR, '--no-print-directory', 'valgrind'], 280_000);
    const c = counts(r.output);
    assert.equal(r.code, 0, r.output.slice(-4000));
    assert.equal(c.failed, 0, r.output.slice(-4000));
    assert.match(r.output, /ERROR SUMMARY: 0 errors from 0 contexts/, r.output.slice(-3000));
    assert.match(r.output, /in use at exit: 0 bytes in 0 blocks/, r.output.slice(-3000));
    assert.match(r.output, /All heap blocks were freed -- no leaks are possible/, r.output.slice(-3000));
    const heap = /total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated/.exec(r.output);
    t.diagnostic(`${c.passed} passed, 0 failed; valgrind: 0 errors, 0 leaks${heap ? ` (heap: ${heap[1]} allocs, all by stdio; the core allocates nothing)` : ''}`);
  });
});
