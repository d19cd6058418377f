/** A CPU profile of this process over a chosen window (BENCH_*_PROFILE), through the inspector. */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

export class WindowProfiler {
  private session: Session | undefined;

  /** @param intervalUs sampling interval; undefined keeps V8's default */
  async start(intervalUs?: number): Promise<void> {
    const s = new Session();
    s.connect();
    await s.post('Profiler.enable');
    if (intervalUs !== undefined) await s.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await s.post('Profiler.start');
    this.session = s;
  }

  /** Writes the profile to `file`; false when no profile was running. */
  async stop(file: string): Promise<boolean> {
    const s = this.session;
    if (!s) return false;
    const { profile } = await s.post('Profiler.stop');
    s.disconnect();
    this.session = undefined;
    await writeFile(file, JSON.stringify(profile));
    return true;
  }
}
