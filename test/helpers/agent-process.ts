/**
 * Test support for end-to-end tests of device programs (`henge agent`, henge-fw): a real child process
 * whose JSON log lines on stderr can be awaited, and bounded polling. Not part of the agent.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { HENGE_BIN } from './processes.ts';
import type { Sandbox } from './processes.ts';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A child process that logs JSON lines on stderr (the Node agent, henge-fw). */
export interface LoggingProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every JSON log line so far. */
  logs(): LogLine[];
  stderr(): string;
  /** Waits for a log line that satisfies `pred` (also one already logged after `fromIndex`). */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, fromIndex?: number): Promise<LogLine>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit code, at most `timeoutMs` (then SIGKILL). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  signal(signal: NodeJS.Signals): void;
  readonly exited: Promise<number | null>;
}

export type AgentProcess = LoggingProcess;

export function startAgentProcess(sandbox: Sandbox, args: readonly string[], env: NodeJS.ProcessEnv = {}): AgentProcess {
  const child = spawn(process.execPath, [HENGE_BIN, 'agent', ...args], { env: { ...sandbox.env, ...env }, cwd: sandbox.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  return watchLogs(child, 'agent');
}

/** Collects the JSON log lines `child` writes on stderr; `name` labels its errors. */
export function watchLogs(child: ChildProcess, name: string): LoggingProcess {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  const pid = child.pid;
  let err = '';
  let partial = '';
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  child.stderr?.on('data', (b: Buffer) => {
    const text = b.toString();
    err += text;
    partial += text;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      try {
        const v = JSON.parse(p) as unknown;
        if (v !== null && typeof v === 'object' && typeof (v as { msg?: unknown }).msg === 'string') lines.push(v as LogLine);
      } catch {
        // not a log line (e.g. a usage error)
      }
    }
    for (const w of [...waiters]) w();
  });
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid,
    exited,
    logs: () => [...lines],
    stderr: () => err,
    waitForLog(pred, timeoutMs = 10_000, fromIndex = 0) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = lines.slice(fromIndex).find(pred);
          if (!hit) return false;
          finish();
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${name} ${pid}: no matching log line in ${timeoutMs} ms\n${err}`));
        }, timeoutMs);
        const onExit = (): void => {
          if (check()) return;
          finish();
          reject(new Error(`${name} ${pid} exited before the expected log line\n${err}`));
        };
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(listener);
          child.off('exit', onExit);
        };
        const listener = (): void => {
          check();
        };
        if (check()) return;
        waiters.add(listener);
        child.once('exit', onExit);
      });
    },
    signal(signal) {
      if (running()) process.kill(pid, signal);
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (running()) process.kill(pid, signal);
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<number | null>((resolve) => {
        timer = setTimeout(() => {
          if (running()) process.kill(pid, 'SIGKILL');
          resolve(-1);
        }, timeoutMs);
      });
      const code = await Promise.race([exited, killed]);
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined; rejects after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
