/**
 * Child processes for the benchmarks: a TypeScript file run with `node --import tsx`, talking over the
 * IPC channel, so that the hub and the load generator never share an event loop.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root (where `tsx` resolves from). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `file` with `node --import tsx file args`. */
export function spawnTs(file: string, args: readonly string[] = []): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
}

/** Resolves with the first IPC message `accept` returns a value for; rejects if the child exits first. */
export function nextMessage<T>(child: ChildProcess, accept: (m: unknown) => T | undefined, timeoutMs = 120_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      const v = accept(m);
      if (v === undefined) return;
      cleanup();
      resolve(v);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup();
      reject(new Error(`child process ended (code ${String(code)}, signal ${String(signal)}) before answering`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`child process gave no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Resolves with the exit code once the child has ended. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Type guard for the `{ type: ... }` messages the benchmark children send. */
export function isMessage<K extends string>(m: unknown, type: K): m is { type: K } & Record<string, unknown> {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}

/** Sends over IPC from a child; a benchmark child without a parent is a usage error. */
export function sendToParent(message: object): void {
  if (!process.send) throw new Error('run this file through bench/store/run.ts (it needs an IPC channel)');
  process.send(message);
}
