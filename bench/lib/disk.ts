/** How long an fdatasync takes right now on the disk holding the data: the floor of every durable write. */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { round, summarize } from './stats.ts';

export interface FsyncProbe {
  readonly what: string;
  readonly p50: number;
  readonly p90: number;
  readonly max: number;
}

export function fsyncProbe(dir: string, samples = 50): FsyncProbe {
  const path = resolve(dir, `fsync-probe-${process.pid}`);
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096, 0x5a);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      writeSync(fd, block);
      const t0 = performance.now();
      fdatasyncSync(fd);
      times.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  const s = summarize(times, 3);
  return { what: `append 4 KiB + fdatasync, ${samples} times, ms`, p50: round(s.p50, 3), p90: round(s.p90, 3), max: round(s.max, 3) };
}
