/**
 * Network namespaces for tests that need a real link between two hosts (mDNS, multicast): two namespaces
 * joined by a veth pair with addresses in 10.77.0.0/24, multicast on, a route for 224.0.0.0/4. Names are
 * unique per run; `cleanup()` ends every process started through the pair (by pid: SIGTERM, then SIGKILL)
 * and deletes both namespaces (which removes the veth pair). An 'exit' hook and SIGINT/SIGTERM handlers do
 * the same if a test run ends before its cleanup (a SIGKILL of the test process cannot be caught).
 *
 * Needs Linux, iproute2 and the right to run `ip netns add` (root or CAP_SYS_ADMIN). `netnsMissing()` says
 * what is missing; `skipOrFail()` turns that into a skip, or a failure when CI=true.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

/** Default bound for one `ip` command. */
const COMMAND_TIMEOUT_MS = 10_000;

/** The full path of an executable, searching PATH and the sbin folders (often not on a user's PATH). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * What keeps these tests from running, or undefined. `packages` maps a command to its Debian package,
 * e.g. `{ 'avahi-browse': 'avahi-utils' }`; they are checked after `ip netns` itself.
 */
export async function netnsMissing(packages: Readonly<Record<string, string>> = {}): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'needs Linux (network namespaces)';
  const missing = Object.entries({ ip: 'iproute2', ...packages }).filter(([command]) => findExecutable(command) === undefined);
  if (missing.length > 0) {
    const needed = [...new Set(Object.values({ ip: 'iproute2', ...packages }))];
    return `needs Debian packages ${needed.join(' ')} (missing: ${missing.map(([c]) => c).join(', ')})`;
  }
  const probe = `henge-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  const added = await ip(['netns', 'add', probe]).catch((err: unknown) => err);
  if (added instanceof Error) return `ip netns is not permitted here (needs root or CAP_SYS_ADMIN): ${added.message}`;
  await ip(['netns', 'del', probe]).catch(() => undefined);
  return undefined;
}

/** A missing prerequisite fails the test under CI=true, and skips it (saying what is missing) otherwise. */
export function skipOrFail(t: TestContext, missing: string): void {
  if (process.env['CI'] === 'true') assert.fail(`${missing} (CI=true: this test must run)`);
  t.skip(missing);
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** True until the process exits. */
  running(): boolean;
  write(text: string): void;
  /**
   * The first stdout line (already printed or still to come) for which `match` is true; rejects after
   * `timeoutMs`, or when the process exits first, with everything it printed.
   */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  /** The same on stderr. */
  waitForStderrLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

export interface RunResult extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

export interface Netns {
  readonly name: string;
  /** This namespace's end of the veth pair. */
  readonly ifname: string;
  /** Its IPv4 address in 10.77.0.0/24 (no prefix length). */
  readonly address: string;
  /** Starts `command` inside the namespace (`ip netns exec`); cleanup() ends it if it is still running. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ManagedProcess;
  /** Runs `command` inside the namespace to completion; killed (and rejected) after `timeoutMs`. */
  run(command: string, args: readonly string[], options: { readonly timeoutMs: number; readonly env?: NodeJS.ProcessEnv; readonly cwd?: string }): Promise<RunResult>;
}

export interface NetnsPair {
  readonly a: Netns;
  readonly b: Netns;
  /** A new temp folder (configs, sockets) that cleanup() removes. */
  tempDir(prefix: string): string;
  cleanup(): Promise<void>;
}

export interface NetnsPairOptions {
  /** Keep IPv6 link-local addresses on the veth links (default false: IPv4 only). */
  readonly ipv6?: boolean;
}

/** Environment for child processes: no node:test context (a child node must not think it is a test). */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

export async function createNetnsPair(options: NetnsPairOptions = {}): Promise<NetnsPair> {
  const tag = randomBytes(3).toString('hex');
  const nsA = `henge-${process.pid}-${tag}-a`;
  const nsB = `henge-${process.pid}-${tag}-b`;
  const ifA = `hg${tag}a`;
  const ifB = `hg${tag}b`;
  // Two neighbouring host numbers, different per run, so an address seen in a test is clearly this run's.
  const host = 1 + 2 * ((randomBytes(1)[0] ?? 0) % 125);
  const addrA = `10.77.0.${host}`;
  const addrB = `10.77.0.${host + 1}`;

  const processes = new Set<ManagedProcess>();
  const namespaces: string[] = [];
  const dirs: string[] = [];
  let cleaned = false;

  const exitHook = (): void => {
    // Last resort when the test process ends without cleanup(): synchronous, bounded.
    for (const p of processes) if (p.running()) signal(p.pid, 'SIGKILL');
    for (const ns of namespaces) spawnSync(findExecutable('ip') ?? 'ip', ['netns', 'del', ns], { timeout: 5000, stdio: 'ignore' });
    spawnSync(findExecutable('ip') ?? 'ip', ['link', 'del', ifA], { timeout: 5000, stdio: 'ignore' });
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  // Killed by a signal (Ctrl-C, the test runner's timeout): clean up, then die of that signal as usual.
  const onSignal = (sig: NodeJS.Signals): void => {
    exitHook();
    process.off('exit', exitHook);
    process.kill(process.pid, sig);
  };
  process.on('exit', exitHook);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await Promise.all([...processes].map((p) => p.stop(2000)));
    for (const ns of namespaces) await ip(['netns', 'del', ns]).catch(() => undefined);
    // Only left when setup failed between creating the pair and moving it into the namespaces.
    await ip(['link', 'del', ifA]).catch(() => undefined);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    process.off('exit', exitHook);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };

  const makeNetns = (name: string, ifname: string, address: string): Netns => ({
    name,
    ifname,
    address,
    spawn(command, args, spawnOptions = {}) {
      const p = manage(spawn(findExecutable('ip') ?? 'ip', ['netns', 'exec', name, command, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        ...spawnOptions,
        env: spawnOptions.env ?? childEnv(),
      }), `${command} in ${name}`);
      processes.add(p);
      return p;
    },
    async run(command, args, runOptions) {
      const p = this.spawn(command, args, { env: runOptions.env ?? childEnv(), ...(runOptions.cwd === undefined ? {} : { cwd: runOptions.cwd }) });
      p.child.stdin?.end();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), runOptions.timeoutMs);
      });
      const outcome = await Promise.race([p.exited, timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        await p.stop(1000);
        processes.delete(p);
        throw new Error(`${command} ${args.join(' ')} (in ${name}) did not finish in ${runOptions.timeoutMs} ms\nstdout: ${p.stdout()}\nstderr: ${p.stderr()}`);
      }
      processes.delete(p);
      return { ...outcome, stdout: p.stdout(), stderr: p.stderr() };
    },
  });

  try {
    await ip(['netns', 'add', nsA]);
    namespaces.push(nsA);
    await ip(['netns', 'add', nsB]);
    namespaces.push(nsB);
    await ip(['link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB]);
    await ip(['link', 'set', ifA, 'netns', nsA]);
    await ip(['link', 'set', ifB, 'netns', nsB]);
    for (const [ns, ifname, address] of [[nsA, ifA, addrA], [nsB, ifB, addrB]] as const) {
      if (options.ipv6 !== true && existsSync('/proc/sys/net/ipv6')) {
        // No IPv6 link-local address on the link: the only address of each end is its 10.77.0.x.
        await ip(['-n', ns, 'link', 'set', ifname, 'addrgenmode', 'none']);
      }
      await ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', ifname]);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'link', 'set', ifname, 'multicast', 'on', 'up']);
      // No default route in the namespace: multicast needs a route of its own to leave by the veth.
      await ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', ifname]);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }

  const tempDir = (prefix: string): string => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  return { a: makeNetns(nsA, ifA, addrA), b: makeNetns(nsB, ifB, addrB), tempDir, cleanup };
}

function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(findExecutable('ip') ?? 'ip', [...args], { timeout: COMMAND_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

function manage(child: ChildProcess, label: string): ManagedProcess {
  if (child.pid === undefined) {
    // spawn failed synchronously (e.g. ENOENT); the error event follows.
    child.on('error', () => undefined);
    throw new Error(`cannot start ${label}`);
  }
  const pid = child.pid;
  let out = '';
  let err = '';
  let status: ExitStatus | undefined;
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  child.stdin?.on('error', () => undefined); // EPIPE when the process is already gone
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('close', (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
  });
  const waitFor = (stream: 'stdout' | 'stderr', match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> => {
    const text = (): string => (stream === 'stdout' ? out : err);
    const find = (): string | undefined => {
      const lines = text().split('\n');
      // The last piece is a line still being written, unless the process has exited.
      if (status === undefined) lines.pop();
      return lines.find(match);
    };
    return new Promise((resolve, reject) => {
      const source = stream === 'stdout' ? child.stdout : child.stderr;
      const done = (): void => {
        clearTimeout(timer);
        source?.off('data', check);
        child.off('close', onClose);
      };
      const check = (): void => {
        const line = find();
        if (line !== undefined) {
          done();
          resolve(line);
        }
      };
      const onClose = (): void => {
        check();
        done();
        reject(new Error(`${label} exited (${JSON.stringify(status)}) before ${what}\nstdout: ${out}\nstderr: ${err}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${label}: no ${what} within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`));
      }, timeoutMs);
      source?.on('data', check);
      if (status !== undefined) onClose();
      else {
        child.once('close', onClose);
        check();
      }
    });
  };
  return {
    pid,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    running: () => status === undefined,
    write: (text) => {
      child.stdin?.write(text);
    },
    waitForLine: (match, timeoutMs, what) => waitFor('stdout', match, timeoutMs, what),
    waitForStderrLine: (match, timeoutMs, what) => waitFor('stderr', match, timeoutMs, what),
    async stop(graceMs = 3000) {
      if (status !== undefined) return status;
      signal(pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          if (status === undefined) signal(pid, 'SIGKILL');
          resolve();
        }, graceMs);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      return exited;
    },
  };
}

/** Signals one process we started; it may have exited a moment ago (ESRCH), which is fine. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
