/**
 * A private mount namespace holding a size-limited tmpfs, for tests of a full disk or a read-only data
 * folder with a real file system: the kernel answers ENOSPC and EROFS, nothing is injected. A holder
 * process (`unshare --mount sleep`) keeps the namespace alive; processes run inside it through
 * `nsenter`, and `remount()` changes the size or makes it read-only while they run. The host never
 * sees the mount: when the holder ends (cleanup, by its pid), the namespace and the tmpfs go with it.
 *
 * Needs Linux, util-linux's unshare and nsenter, and the right to create mount namespaces (root).
 * `mountnsMissing()` says what is missing; skipOrFail (netns.ts) turns it into a skip, or a failure under CI=true.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './netns.ts';

const COMMAND_TIMEOUT_MS = 10_000;

export interface MountNs {
  /** The tmpfs mount point (a folder on the host, empty there). */
  readonly dir: string;
  /** The argv prefix that runs a command inside the namespace. */
  readonly prefix: readonly string[];
  /** `mount -o remount,<options>` of the tmpfs, e.g. `size=64m` or `ro`. */
  remount(options: string): Promise<void>;
  cleanup(): Promise<void>;
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: COMMAND_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/** What keeps mount-namespace tests from running, or undefined. */
export async function mountnsMissing(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'needs Linux (mount namespaces)';
  const missing = ['unshare', 'nsenter', 'mount'].filter((c) => findExecutable(c) === undefined);
  if (missing.length > 0) return `needs the Debian package util-linux (missing: ${missing.join(', ')})`;
  try {
    await run(findExecutable('unshare') ?? 'unshare', ['--mount', '--propagation', 'private', 'true']);
  } catch (err) {
    return `unshare --mount is not permitted here (needs root or CAP_SYS_ADMIN): ${(err as Error).message}`;
  }
  return undefined;
}

/** A new namespace with a tmpfs of `size` (mount's syntax, e.g. `4m`) at a fresh temp folder. */
export async function createTmpfsNs(size: string): Promise<MountNs> {
  const dir = await mkdtemp(join(tmpdir(), 'henge-tmpfs-'));
  // The holder waits on a pipe from this process: if this process dies, the pipe closes and the holder
  // (with the namespace and the tmpfs) goes too.
  const holder: ChildProcess = spawn(findExecutable('unshare') ?? 'unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'read _'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const pid = holder.pid;
  if (pid === undefined) throw new Error('unshare did not start');
  const ended = new Promise<void>((r) => holder.once('exit', () => r()));
  const nsenter = findExecutable('nsenter') ?? 'nsenter';
  const prefix = [nsenter, '--mount', `--target=${pid}`];
  const inside = (args: readonly string[]): Promise<string> => run(nsenter, ['--mount', `--target=${pid}`, ...args]);
  const cleanup = async (): Promise<void> => {
    holder.stdin?.destroy();
    if (holder.exitCode === null && holder.signalCode === null) process.kill(pid, 'SIGKILL');
    await ended;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // unshare has made the namespace once it runs sh; until then nsenter would join the host's, and the
    // tmpfs would land on the host: never mount before the namespaces differ.
    let own = false;
    for (let i = 0; i < 250 && !own; i++) {
      const [mine, its] = await Promise.all([run('readlink', ['/proc/self/ns/mnt']), run('readlink', [`/proc/${pid}/ns/mnt`]).catch(() => '')]);
      own = its !== '' && its !== mine;
      if (!own) await new Promise((r) => setTimeout(r, 20));
    }
    if (!own) throw new Error(`unshare (pid ${pid}) did not make a mount namespace of its own within 5 s`);
    await inside(['mount', '-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    dir,
    prefix,
    remount: async (options) => void (await inside(['mount', '-o', `remount,${options}`, dir])),
    cleanup,
  };
}
