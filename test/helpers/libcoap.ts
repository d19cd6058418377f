/**
 * libcoap's command-line clients (Debian package libcoap3-bin) as independent peers in tests: finding
 * them, running them, reading the CBOR snapshots they print. Without the binary a test is skipped, except
 * with CI=true, where it fails.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Decoder } from 'cbor-x';
import { findExecutable } from './netns.ts';

export const LIBCOAP_PACKAGE = 'libcoap3-bin';

/** The full path of a command, or undefined. */
export const findOnPath = findExecutable;

/** Skips (or, with CI=true, fails) a test when the peer `name` is missing; returns its path otherwise. */
export function needPeer(t: TestContext, name: string): string | undefined {
  const peer = findOnPath(name);
  if (peer) return peer;
  const why = `${name} not found on PATH: install the Debian package ${LIBCOAP_PACKAGE} (scripts/install-system-deps.sh)`;
  if (process.env['CI'] === 'true') assert.fail(`${why}; with CI=true a missing peer is a failure`);
  t.skip(why);
  return undefined;
}

/** What coap-client prints: the payloads it received, one after the other (plus a newline at the end). */
export interface Printed {
  readonly version: number;
  readonly values: Map<string, unknown>;
}

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

/** The snapshots in coap-client's stdout so far; undefined while the output ends mid-item. */
export function snapshotsIn(out: Buffer): Printed[] | undefined {
  let items: unknown[];
  try {
    items = (decoder.decodeMultiple(out) as unknown[] | undefined) ?? [];
  } catch {
    return undefined;
  }
  const out2: Printed[] = [];
  for (const item of items) {
    if (!(item instanceof Map)) continue; // the trailing newline decodes as the integer 10
    const values: unknown = item.get(3);
    const version: unknown = item.get(1);
    assert.ok(values instanceof Map, 'a printed snapshot has values (key 3)');
    assert.equal(typeof version, 'number', 'a printed snapshot has a version (key 1)');
    out2.push({ version: version as number, values: values as Map<string, unknown> });
  }
  return out2;
}

export interface PeerRun {
  readonly child: ChildProcess;
  readonly stdout: () => Buffer;
  readonly stderr: () => string;
  /** Ends the peer if it still runs (by its pid) and waits for its exit, at most 5 s. */
  stop(): Promise<void>;
  readonly exited: Promise<number | null>;
}

/** Peers still running, for the after() hook: `stopAllPeers`. */
const running = new Set<PeerRun>();

export async function stopAllPeers(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

export function runPeer(bin: string, args: readonly string[]): PeerRun {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (b: Buffer) => chunks.push(b));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const run: PeerRun = {
    child,
    stdout: () => Buffer.concat(chunks),
    stderr: () => err,
    exited,
    async stop() {
      running.delete(run);
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    },
  };
  running.add(run);
  return run;
}

