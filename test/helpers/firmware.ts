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

interface Need {
  readonly what: string;
  readonly pkg: string;
  readonly present: () => boolean;
}

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
  const needs = [...HOST_BUILD, ...(opts.libcoap ? LIBCOAP_DEV : []), ...(opts.arm ? ARM : [])];
  const missing = needs.filter((n) => !n.present());
  if (missing.length === 0) return true;
  const pkgs = [...new Set(missing.map((m) => m.pkg))].join(' ');
  const why = `${missing.map((m) => m.what).join(', ')} not found: install the Debian package(s) ${pkgs} (scripts/install-system-deps.sh)`;
  if (process.env['CI'] === 'true') assert.fail(`${why}; with CI=true a missing build tool is a failure`);
  t.skip(why);
  return false;
}

export interface MakeResult {
  readonly ok: boolean;
  readonly output: string;
}

/** Runs make in firmware-libcoap/ for `targets` (incremental; each target family has its own object folder). */
export function makeFirmware(targets: readonly string[], timeoutMs = 300_000): MakeResult {
  const r = spawnSync('make', ['-C', FIRMWARE_DIR, '--no-print-directory', ...targets], { encoding: 'utf8', timeout: timeoutMs });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** henge-fw as a child process: its JSON log lines can be awaited like the Node agent's. */
export type FirmwareProcess = LoggingProcess;

/** Starts `build/henge-fw` (or `bin`) with `args` in the sandbox (its environment, its folder as cwd). */
export function startFirmwareProcess(sandbox: Sandbox, args: readonly string[], env: NodeJS.ProcessEnv = {}, bin: string = HENGE_FW): FirmwareProcess {
  return watchLogs(spawn(bin, args, { env: { ...sandbox.env, ...env }, cwd: sandbox.dir, stdio: ['ignore', 'pipe', 'pipe'] }), 'henge-fw');
}
