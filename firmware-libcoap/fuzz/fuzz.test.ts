/**
 * The firmware core's fuzz targets (fuzz/fuzz_{snapshot,device,slots,dnssd}.c, libFuzzer with ASan and UBSan)
 * from `npm test`: each runs from its seed corpus and must end without a finding; what they kept is
 * then replayed under valgrind. fuzz/run.sh does the running and prints one line per target.
 *
 * How long: HENGE_FUZZ_SECONDS for the snapshot decoder, and HENGE_FUZZ_STATE_SECONDS (default 5) for
 * each of the device, slot and mDNS (dnssd) targets. Unset, the decoder runs 60 s with CI=true (the floor) and
 * 20 s otherwise: from the seed corpus its edge coverage levels off (about 550 edges) within 5 s on this
 * machine, so 20 s is four times that for new features while a local `npm test` stays short. Each test
 * here has its own timeout; longer campaigns: fuzz/run.sh (npm run fuzz:firmware).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FIRMWARE_BUILD, FIRMWARE_DIR, needFirmwareToolchain } from '../../test/helpers/firmware.ts';
import { CLANG, LIBFUZZER, LLVM_COV, VALGRIND, needTools, run } from '../../test/helpers/firmware.ts';

const FUZZ_DIR = join(FIRMWARE_DIR, 'fuzz');
const OUT = join(FIRMWARE_BUILD, 'fuzzing');
const DEFAULT_SECONDS = process.env['CI'] === 'true' ? 60 : 20;
const SECONDS = Number(process.env['HENGE_FUZZ_SECONDS'] ?? DEFAULT_SECONDS);
const STATE_SECONDS = Number(process.env['HENGE_FUZZ_STATE_SECONDS'] ?? 5);
const TOTAL_SECONDS = SECONDS + 3 * STATE_SECONDS;

interface Summary {
  target: string;
  seconds: number;
  runs: number;
  exec_per_s: number;
  cov: number;
  ft: number;
  corpus: number;
  crashes: number;
}

function parse(output: string): Summary[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('FUZZ '))
    .map((l) => {
      const kv = Object.fromEntries(l.slice(5).split(' ').map((p) => p.split('=') as [string, string]));
      return {
        target: kv['target'] ?? '?',
        seconds: Number(kv['seconds']),
        runs: Number(kv['runs']),
        exec_per_s: Number(kv['exec_per_s']),
        cov: Number(kv['cov']),
        ft: Number(kv['ft']),
        corpus: Number(kv['corpus']),
        crashes: Number(kv['crashes']),
      };
    });
}

const files = (dir: string): string[] => readdirSync(dir).map((f) => join(dir, f));

describe('firmware fuzzing (libFuzzer)', () => {
  test(`fuzz - the decoder, device, slot and mDNS targets run from their seed corpus without a finding (${SECONDS} s + 3 × ${STATE_SECONDS} s)`, { timeout: (TOTAL_SECONDS * 2 + 300) * 1000 }, (t) => {
    if (!needFirmwareToolchain(t) || !needTools(t, [CLANG, LIBFUZZER])) return;
    assert.ok(Number.isInteger(SECONDS) && SECONDS > 0, `HENGE_FUZZ_SECONDS must be a whole number of seconds, got ${String(process.env['HENGE_FUZZ_SECONDS'])}`);
    assert.ok(Number.isInteger(STATE_SECONDS) && STATE_SECONDS > 0, `HENGE_FUZZ_STATE_SECONDS must be a whole number of seconds`);
    const r = run(join(FUZZ_DIR, 'run.sh'), [String(SECONDS), String(STATE_SECONDS)], (TOTAL_SECONDS * 2 + 240) * 1000);
    const summary = parse(r.output);
    for (const s of summary) t.diagnostic(`${s.target}: ${s.runs} runs in ${s.seconds} s (${s.exec_per_s}/s), cov ${s.cov}, features ${s.ft}, corpus ${s.corpus}, crashes ${s.crashes}`);
    assert.equal(r.code, 0, `fuzz/run.sh found something or failed (exit ${String(r.code)}):\n${r.output}`);
    assert.deepEqual(
      summary.map((s) => s.target),
      ['snapshot', 'device', 'slots', 'dnssd'],
      r.output,
    );
    for (const s of summary) {
      assert.equal(s.crashes, 0, `${s.target} crashed:\n${r.output}`);
      assert.ok(s.runs > 1000, `${s.target} ran only ${s.runs} inputs`);
      assert.ok(s.cov > 50, `${s.target} covered only ${s.cov} edges: is it instrumented?`);
    }
  });

  test('fuzz - the corpora reach at least 90 % of the lines of core/ (llvm-cov)', { timeout: 300_000 }, (t) => {
    // After the run above: the seeds alone reach less (89 % of lines), what the fuzzers kept the rest.
    if (!needFirmwareToolchain(t) || !needTools(t, [CLANG, LIBFUZZER, LLVM_COV])) return;
    const r = run(join(FUZZ_DIR, 'coverage.sh'), [], 280_000);
    assert.equal(r.code, 0, r.output.slice(-3000));
    const m = /COVERAGE lines=([\d.]+)% branches=([\d.]+)% functions=([\d.]+)% regions=([\d.]+)%/.exec(r.output);
    assert.ok(m, r.output.slice(-3000));
    t.diagnostic(`core/ reached by the seed corpus and what the fuzzers kept: lines ${m[1]} %, branches ${m[2]} %, functions ${m[3]} %, regions ${m[4]} %`);
    assert.ok(Number(m[1]) >= 90, `only ${m[1]} % of the lines of core/ reached:\n${r.output}`);
  });

  test('fuzz - the seed corpus, what the fuzzers kept and the known finding replay clean under valgrind', { timeout: 600_000 }, (t) => {
    if (!needFirmwareToolchain(t) || !needTools(t, [VALGRIND])) return;
    const m = run('make', ['-C', FUZZ_DIR, '--no-print-directory', '-s', 'replayers'], 300_000);
    assert.equal(m.code, 0, `make -C fuzz replayers failed:\n${m.output}`);
    for (const target of ['snapshot', 'device', 'slots', 'dnssd']) {
      const inputs = [join(FUZZ_DIR, 'corpus', target)];
      const kept = join(OUT, 'work', target);
      try {
        // At most 1,000 kept inputs, to bound the time valgrind takes.
        inputs.push(...files(kept).slice(0, 1000));
      } catch {
        // the fuzz test has not run: the seeds only
      }
      if (target === 'snapshot') inputs.push(...files(join(FUZZ_DIR, 'known')).filter((f) => f.endsWith('.cbor')));
      const r = run('valgrind', ['--error-exitcode=99', '--leak-check=full', '--errors-for-leak-kinds=all', '--track-origins=yes', join(OUT, `replay-${target}`), ...inputs], 600_000);
      assert.equal(r.code, 0, `valgrind on replay-${target}:\n${r.output.slice(-4000)}`);
      assert.match(r.output, /ERROR SUMMARY: 0 errors/, r.output.slice(-2000));
      assert.match(r.output, /All heap blocks were freed -- no leaks are possible/, r.output.slice(-2000));
      t.diagnostic(`${target}: ${/replayed (\d+) inputs/.exec(r.output)?.[1] ?? '?'} inputs, 0 errors, no leaks`);
    }
  });

  test('fuzz - malformed CBOR inside an unknown envelope value is refused (the inputs of fuzz/known/)', { timeout: 300_000 }, (t) => {
    if (!needFirmwareToolchain(t) || !needTools(t, [CLANG, LIBFUZZER])) return;
    const m = run('make', ['-C', FUZZ_DIR, '--no-print-directory', '-s', join(OUT, 'fuzz-snapshot')], 300_000);
    assert.equal(m.code, 0, `make -C fuzz failed:\n${m.output}`);
    const known = files(join(FUZZ_DIR, 'known')).filter((f) => f.endsWith('.cbor'));
    assert.ok(known.length >= 3);
    for (const f of known) {
      const r = run(join(OUT, 'fuzz-snapshot'), [f], 60_000);
      assert.equal(r.code, 0, `${f}: ${/fuzz_snapshot: [^\n]*/.exec(r.output)?.[0] ?? r.output.slice(-500)}`);
    }
  });
});
