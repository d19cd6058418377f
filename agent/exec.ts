/**
 * The `--exec` hook: a command run through /bin/sh after a config file was written, with
 * HENGE_CONFIG_FILE, HENGE_CONFIG_VERSION and HENGE_DEVICE in its environment (and never HENGE_DEVICE_KEY). A non-zero exit, a signal
 * or a timeout is an ExecError carrying the exit code and the tail of its stderr.
 */
import { spawn } from 'node:child_process';
import { ExecError } from './errors.ts';

const TAIL_BYTES = 4096;

export interface HookResult {
  readonly stdoutTail: string;
  readonly stderrTail: string;
  readonly ms: number;
}

export interface HookEnv {
  readonly file: string;
  readonly version: number;
  readonly device: string;
}

function tailOf(chunks: Buffer[]): string {
  const all = Buffer.concat(chunks);
  return all.subarray(Math.max(0, all.length - TAIL_BYTES)).toString('utf8');
}

function keepTail(chunks: Buffer[], b: Buffer): void {
  chunks.push(b);
  let total = chunks.reduce((n, c) => n + c.length, 0);
  while (chunks.length > 1 && total - (chunks[0]?.length ?? 0) >= TAIL_BYTES) total -= chunks.shift()?.length ?? 0;
}

/**
 * Runs the hook; `drainMs` is how long output still in the pipes is read after the shell exited (while a
 * background process it started may keep them open).
 */
export function runHook(command: string, env: HookEnv, timeoutMs: number, drainMs = 100, signal?: AbortSignal): Promise<HookResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ExecError('--exec was not run: the agent is stopping', null, ''));
      return;
    }
    // The agent's environment without the device key (a hook needs none, and must not leak it), plus the three.
    const { HENGE_DEVICE_KEY: _key, ...inherited } = process.env;
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...inherited, HENGE_CONFIG_FILE: env.file, HENGE_CONFIG_VERSION: String(env.version), HENGE_DEVICE: env.device },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a timeout ends the command and whatever it started.
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => keepTail(out, b));
    child.stderr.on('data', (b: Buffer) => keepTail(err, b));
    let timedOut = false;
    let stopped = false;
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    // Stopping the agent: the hook and whatever it started end now (the caller puts the previous file back).
    const onAbort = (): void => {
      stopped = true;
      killGroup();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new ExecError(`--exec could not start: ${e.message}`, null, ''));
    });
    let settled = false;
    const settle = (code: number | null, killedBy: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // A background process the hook started may still hold the pipes: stop reading them.
      child.stdout.destroy();
      child.stderr.destroy();
      const stderrTail = tailOf(err);
      if (code === 0 && !timedOut && !stopped) {
        resolve({ stdoutTail: tailOf(out), stderrTail, ms: performance.now() - started });
        return;
      }
      const why = stopped ? 'was stopped: the agent is stopping' : timedOut ? `timed out after ${timeoutMs} ms` : killedBy ? `was killed by ${killedBy}` : `exited with ${String(code)}`;
      reject(new ExecError(`--exec ${why}`, timedOut || stopped ? null : code, stderrTail));
    };
    // The hook is done when its shell exits, not when every process that inherited its pipes has
    // ('close' waits for those: `mydaemon &` would look like a timeout). Output already in the pipes
    // gets a moment to be read.
    child.once('close', (code, signal) => settle(code, signal));
    child.once('exit', (code, signal) => {
      // The hook is over: a timeout that fires while its last output is read must not turn it into a failure.
      clearTimeout(timer);
      setTimeout(() => settle(code, signal), drainMs).unref();
    });
  });
}
