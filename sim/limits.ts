/** This process's limit on open files: a simulated device holds one UDP socket, so N devices need N of them. */
import { readFileSync } from 'node:fs';

/** The soft limit from /proc/self/limits; null when unknown or unlimited. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? null : Number(soft);
  } catch {
    return null;
  }
}

/** File descriptors a process needs besides the devices' sockets (stdio, the event loop, a few files). */
export const SPARE_FILES = 64;
