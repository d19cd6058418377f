/** What the benchmark ran on: printed first and kept in the JSON result. */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, platform } from 'node:os';
import { resolve } from 'node:path';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly totalMemoryGiB: number;
  readonly os: string;
  /** File system holding the benchmark's data (fsync cost depends on it). */
  readonly dataFs: string;
  readonly loadAvgAtStart: readonly number[];
}

/** The mount that holds `path` (longest matching mount point in /proc/mounts), e.g. "ext4 on /". */
export function fileSystemOf(path: string): string {
  try {
    const abs = resolve(path);
    let best: { point: string; type: string; device: string } | undefined;
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, point, type] = line.split(' ');
      if (!device || !point || !type) continue;
      const inside = abs === point || abs.startsWith(point.endsWith('/') ? point : `${point}/`);
      if (inside && (!best || point.length > best.point.length)) best = { point, type, device };
    }
    return best ? `${best.type} (${best.device} on ${best.point})` : 'unknown';
  } catch {
    return 'unknown';
  }
}

export function machineInfo(dataDir: string): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    node: process.version,
    totalMemoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    dataFs: fileSystemOf(dataDir),
    loadAvgAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}
