/**
 * Starts real henge processes for end-to-end tests: the hub (`henge hub`) and the CLI, each with its
 * own temp data folder and CLI config, so tests never touch the user's files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const HENGE_BIN = join(ROOT, 'bin', 'henge.mjs');

export interface Sandbox {
  readonly dir: string;
  /** Environment for processes in this sandbox: its own CLI config, no inherited HENGE_* settings. */
  readonly env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

export async function makeSandbox(prefix = 'henge-test-'): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: join(dir, 'config'), NODE_NO_WARNINGS: '1' };
  delete env['HENGE_URL'];
  delete env['HENGE_TOKEN'];
  delete env['HENGE_CONFIG'];
  return { dir, env, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface HubProcess {
  readonly url: string;
  /** UDP port of the plain CoAP endpoint (--insecure), or null. */
  readonly coapPort: number | null;
  /** UDP port of the DTLS device endpoint, or null when started with --no-coaps. */
  readonly coapsPort: number | null;
  /** The first-run admin token, or null when the data folder already had a hub. */
  readonly token: string | null;
  readonly dataDir: string;
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Stops the hub with `signal` (SIGTERM: graceful) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface HubProcessOptions {
  /** Plain CoAP too (--insecure), the default: most end-to-end tests drive the plain endpoint. */
  readonly insecure?: boolean;
  /** The data folder (default: `<sandbox>/data`). */
  readonly dataDir?: string;
  /** A command that runs the hub, e.g. nsenter into a mount namespace (mountns.ts); it must exec, not fork. */
  readonly prefix?: readonly string[];
}

/**
 * Starts `henge hub` on free ports, without mDNS (tests send nothing beyond loopback unless they run in
 * their own network namespaces).
 */
export async function startHubProcess(sandbox: Sandbox, args: readonly string[] = [], timeoutMs = 20_000, options: HubProcessOptions = {}): Promise<HubProcess> {
  const dataDir = options.dataDir ?? join(sandbox.dir, 'data');
  const insecure = (options.insecure ?? true) ? ['--insecure'] : [];
  const [cmd, ...pre] = [...(options.prefix ?? []), process.execPath];
  const child = spawn(cmd ?? process.execPath, [...pre, HENGE_BIN, 'hub', '--data', dataDir, '--port', '0', '--coap-port', '0', '--coaps-port', '0', '--no-mdns', '--log-level', 'warn', ...insecure, ...args], {
    env: sandbox.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave it running: it may hold a port, a data folder or (with a prefix) a namespace.
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`hub did not start in ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
    }, timeoutMs);
    const check = (): void => {
      const m = /API:\s+(https?:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${String(code)} before starting\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  const token = /admin token[^:]*:\s+(hgt_\S+)/.exec(out)?.[1] ?? null;
  const coap = /CoAP: udp \S+ port (\d+)/.exec(out)?.[1];
  const coaps = /CoAPS: udp \S+ port (\d+)/.exec(out)?.[1];
  return {
    url,
    coapPort: coap === undefined ? null : Number(coap),
    coapsPort: coaps === undefined ? null : Number(coaps),
    token,
    dataDir,
    child,
    stdout: () => out,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, signal);
      return exited;
    },
  };
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `henge <args>` to completion. */
export function runCli(sandbox: Sandbox, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HENGE_BIN, ...args], { env: { ...sandbox.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], cwd: sandbox.dir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`henge ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `henge <args>` that must succeed (exit 0, else an assertion with its stderr); its stdout. */
export async function henge(sandbox: Sandbox, ...args: string[]): Promise<string> {
  const r = await runCli(sandbox, args);
  assert.equal(r.code, 0, `henge ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** What tests read of `GET /devices/{id}/state`. */
export interface DeviceStateView {
  readonly desiredVersion: number;
  readonly appliedVersion: number | null;
  readonly sync: string;
  readonly lastAck: { readonly version: number; readonly status: string; readonly message?: string } | null;
}

/** The hub's view of device `id` (200 expected). */
export async function deviceStateOf(hub: HubProcess, token: string, id: string): Promise<DeviceStateView> {
  const r = await fetch(`${hub.url}/devices/${id}/state`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `GET /devices/${id}/state`);
  return (await r.json()) as DeviceStateView;
}
