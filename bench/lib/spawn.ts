/**
 * Child processes that need more than `spawnTs` (bench/lib/child.ts) gives: extra node flags (e.g.
 * --expose-gc) and a raised open-file limit, for a process holding thousands of sockets. The limit is
 * raised by a shell in front of node (`ulimit -n`), since Node cannot raise its own; the child reads what
 * it got with `openFileLimit()` and reports it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { REPO_ROOT } from './child.ts';

export { openFileLimit } from '../../sim/limits.ts';

export interface SpawnOptions {
  /** Flags for node before `--import tsx`, e.g. ['--expose-gc']. */
  readonly nodeArgs?: readonly string[];
  /** Ask for this many open files (soft and hard); falls back to the hard limit when refused. */
  readonly openFiles?: number;
  readonly env?: Readonly<Record<string, string>>;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `file` with `node [nodeArgs] --import tsx file args`, through `bash -c 'ulimit -n ...; exec node ...'` when `openFiles` is given. */
export function spawnTsWith(file: string, args: readonly string[] = [], o: SpawnOptions = {}): ChildProcess {
  const argv = [...(o.nodeArgs ?? []), '--import', 'tsx', file, ...args];
  const env = { ...process.env, NODE_ENV: 'production', ...o.env };
  const stdio: Array<'ignore' | 'inherit' | 'ipc'> = ['ignore', 'inherit', 'inherit', 'ipc'];
  if (o.openFiles === undefined) return spawn(process.execPath, argv, { cwd: REPO_ROOT, stdio, env });
  const n = Math.floor(o.openFiles);
  const script = `ulimit -n ${n} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${[process.execPath, ...argv].map(quote).join(' ')}`;
  return spawn('bash', ['-c', script], { cwd: REPO_ROOT, stdio, env });
}

/** Runs any program the same way (e.g. a broker), stdout and stderr to the given handles. */
export function spawnWithLimit(command: string, args: readonly string[], openFiles: number, stdio: 'ignore' | 'inherit' = 'inherit'): ChildProcess {
  const script = `ulimit -n ${Math.floor(openFiles)} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${[command, ...args].map(quote).join(' ')}`;
  return spawn('bash', ['-c', script], { cwd: REPO_ROOT, stdio: ['ignore', stdio, stdio] });
}
