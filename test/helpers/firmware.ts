/**
 * The C firmware (firmware-libcoap/) in tests: building it with make, skipping a test (or failing it,
 * with CI=true) when the compiler, libcoap3-dev or the ARM toolchain is missing, as `needPeer` does for
 * libcoap's clients, and henge-fw as a child process whose JSON log lines can be awaited.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { watchLogs } from './agent-process.ts';
import type { LoggingProcess } from './agent-process.ts';
import { findOnPath } from './libcoap.ts';
import { ROOT } from './processes.ts';
import type { Sandbox } from './processes.ts';

export const FIRMWARE_DIR = join(ROOT, 'firmware-libcoap');
export const FIRMWARE_BUILD = join(FIRMWARE_DIR, 'build');
export const HENGE_FW = join(FIRMWARE_BUILD, 'henge-fw');
/** The same program built with ASan + UBSan (`make build/asan/henge-fw`): a leak or an error fails its exit code. */
export const HENGE_FW_ASAN = join(FIRMWARE_BUILD, 'asan', 'henge-fw');

/** The pkg-config package henge-fw builds against (the OpenSSL flavour: DTLS-PSK). */
export const LIBCOAP_PKG = 'libcoap-3-openssl';

/** A tool a firmware test needs, the Debian package that brings it, and how to tell it is there. */
export interface Tool {
  readonly what: string;
  readonly pkg: string;
  readonly present: () => boolean;
}
type Need = Tool;

const onPath = (name: string) => () => findOnPath(name) !== undefined;

const HOST_BUILD: readonly Need[] = [
  { what: 'cc', pkg: 'gcc', present: onPath('cc') },
  { what: 'make', pkg: 'make', present: onPath('make') },
];

const LIBCOAP_DEV: readonly Need[] = [
  { what: 'pkg-config', pkg: 'pkg-config', present: onPath('pkg-config') },
  {
    what: `${LIBCOAP_PKG}.pc`,
    pkg: 'libcoap3-dev',
    present: () => findOnPath('pkg-config') !== undefined && spawnSync('pkg-config', ['--exists', LIBCOAP_PKG]).status === 0,
  },
];

const ARM: readonly Need[] = [
  { what: 'arm-none-eabi-gcc', pkg: 'gcc-arm-none-eabi', present: onPath('arm-none-eabi-gcc') },
  {
    what: 'newlib-nano (libc_nano.a)',
    pkg: 'libnewlib-arm-none-eabi',
    present: () => {
      if (!findOnPath('arm-none-eabi-gcc')) return false;
      const r = spawnSync('arm-none-eabi-gcc', ['-mcpu=cortex-m0plus', '-mthumb', '-print-file-name=libc_nano.a'], { encoding: 'utf8' });
      const path = r.stdout.trim();
      return isAbsolute(path) && existsSync(path);
    },
  },
];

/**
 * Skips the test (or, with CI=true, fails it) when something the firmware build needs is missing,
 * naming the Debian packages; returns true when everything is there.
 */
export function needFirmwareToolchain(t: TestContext, opts: { readonly libcoap?: boolean; readonly arm?: boolean } = {}): boolean {
  return needTools(t, [...HOST_BUILD, ...(opts.libcoap ? LIBCOAP_DEV : []), ...(opts.arm ? ARM : [])]);
}

export const CLANG: Tool = { what: 'clang', pkg: 'clang', present: onPath('clang') };

/** libFuzzer's runtime (clang -fsanitize=fuzzer links it); Debian ships it apart from clang. */
export const LIBFUZZER: Tool = {
  what: 'libFuzzer (libclang_rt.fuzzer)',
  pkg: 'libclang-rt-dev',
  present: () => {
    if (!findOnPath('clang')) return false;
    const r = spawnSync('clang', ['--print-runtime-dir'], { encoding: 'utf8' });
    const dir = r.stdout?.trim() ?? '';
    return dir !== '' && ['libclang_rt.fuzzer-x86_64.a', 'libclang_rt.fuzzer.a', 'libclang_rt.fuzzer-aarch64.a'].some((f) => existsSync(join(dir, f)));
  },
};

/** Source-based coverage (fuzz/coverage.sh). */
export const LLVM_COV: Tool = { what: 'llvm-cov, llvm-profdata', pkg: 'llvm', present: () => findOnPath('llvm-cov') !== undefined && findOnPath('llvm-profdata') !== undefined };

export const VALGRIND: Tool = { what: 'valgrind', pkg: 'valgrind', present: onPath('valgrind') };

/** What of the firmware build is missing, naming the Debian packages, or undefined when everything is there. */
export function firmwareToolchainMissing(opts: { readonly libcoap?: boolean; readonly arm?: boolean } = {}): string | undefined {
  return missingTools([...HOST_BUILD, ...(opts.libcoap ? LIBCOAP_DEV : []), ...(opts.arm ? ARM : [])]);
}

function missingTools(tools: readonly Tool[]): string | undefined {
  const missing = tools.filter((x) => !x.present());
  if (missing.length === 0) return undefined;
  const pkgs = [...new Set(missing.map((m) => m.pkg))].join(' ');
  return `${missing.map((m) => m.what).join(', ')} not found: install the Debian package(s) ${pkgs} (scripts/install-system-deps.sh)`;
}

/** Skips (or, with CI=true, fails) the test when a tool is missing, naming the Debian packages; true when all are there. */
export function needTools(t: TestContext, tools: readonly Tool[]): boolean {
  const why = missingTools(tools);
  if (why === undefined) return true;
  if (process.env['CI'] === 'true') assert.fail(`${why}; with CI=true a missing build tool is a failure`);
  t.skip(why);
  return false;
}

export interface Run {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command to its end (stdout and stderr together), at most `timeoutMs`. */
export function run(cmd: string, args: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${String(r.error)}` : ''}` };
}

export interface MakeResult {
  readonly ok: boolean;
  readonly output: string;
}

/**
 * Runs make in firmware-libcoap/ (or in `dir`, a folder under it) for `targets` (incremental; each
 * target family has its own object folder).
 */
export function makeFirmware(targets: readonly string[], timeoutMs = 300_000, dir?: string): MakeResult {
  const r = spawnSync('make', ['-C', dir === undefined ? FIRMWARE_DIR : join(FIRMWARE_DIR, dir), '--no-print-directory', ...targets], { encoding: 'utf8', timeout: timeoutMs });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** The builds `firmwareReady` made in this process: the folder and the arguments given to make. */
const madeOnce = new Set<string>();

/**
 * For a test that runs a firmware program: skips it (or, with CI=true, fails it) as
 * `needFirmwareToolchain` does when the toolchain (and with `libcoap`, libcoap3-dev; with `arm`, the
 * ARM toolchain) is missing, then runs make for `targets` (make's goals, and flags such as `-s`; none
 * for the default goal) in firmware-libcoap/ or in `dir` under it, once per process, and asserts that it
 * succeeded, with make's output. True when the test can go on; a failed build is tried again by the
 * next test.
 */
export function firmwareReady(
  t: TestContext,
  targets: readonly string[],
  opts: { readonly libcoap?: boolean; readonly arm?: boolean; readonly dir?: string } = {},
): boolean {
  if (!needFirmwareToolchain(t, opts)) return false;
  const key = JSON.stringify([opts.dir ?? '', ...targets]);
  if (!madeOnce.has(key)) {
    const r = makeFirmware(targets, 300_000, opts.dir);
    assert.ok(r.ok, `make ${[...(opts.dir === undefined ? [] : ['-C', opts.dir]), ...targets].join(' ')} failed:\n${r.output}`);
    madeOnce.add(key);
  }
  return true;
}

/** henge-fw as a child process: its JSON log lines can be awaited like the Node agent's. */
export type FirmwareProcess = LoggingProcess;

/** Starts `build/henge-fw` (or `bin`) with `args` in the sandbox (its environment, its folder as cwd). */
export function startFirmwareProcess(sandbox: Sandbox, args: readonly string[], env: NodeJS.ProcessEnv = {}, bin: string = HENGE_FW): FirmwareProcess {
  return watchLogs(spawn(bin, args, { env: { ...sandbox.env, ...env }, cwd: sandbox.dir, stdio: ['ignore', 'pipe', 'pipe'] }), 'henge-fw');
}
