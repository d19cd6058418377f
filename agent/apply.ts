/**
 * Atomic apply of a snapshot to `--out`: render, write a temp file in the same folder, fsync it, read it
 * back and verify it (the snapshot hash for JSON and YAML, the exact bytes for every format), rename it
 * over the target, fsync the folder. A reader of `--out` sees the old file or the new one, never a mix,
 * and after a crash the file is one of the two.
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { encodeValues, hashValues } from '../protocol/snapshot.ts';
import type { ConfigValue, Snapshot } from '../protocol/snapshot.ts';
import { ApplyError, SnapshotIntegrityError } from './errors.ts';
import { readBack, render } from './formats.ts';
import type { OutputFormat } from './formats.ts';

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Throws SnapshotIntegrityError unless `snapshot.hash` is the hash of the deterministic CBOR of its values. */
export function verifySnapshotHash(snapshot: Snapshot): void {
  const actual = hashValues(encodeValues(snapshot.values));
  if (!sameBytes(actual, snapshot.hash)) {
    throw new SnapshotIntegrityError(`snapshot v${snapshot.version}: hash ${hex(snapshot.hash)} is not the hash of its values (${hex(actual)})`);
  }
}

function isConfigValue(v: unknown): v is ConfigValue {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** The file for a snapshot, and the check its read-back bytes must pass. */
export interface PreparedFile {
  readonly bytes: Buffer;
  verify(readBackBytes: Buffer): void;
}

export function prepareFile(format: OutputFormat, snapshot: Snapshot): PreparedFile {
  const bytes = Buffer.from(render(format, snapshot.values), 'utf8');
  return {
    bytes,
    verify(read: Buffer): void {
      if (!sameBytes(read, bytes)) throw new ApplyError(`read back ${read.length} bytes that differ from the ${bytes.length} written`);
      const parsed = readBack(format, read.toString('utf8'));
      if (parsed === undefined) return; // env: names and types are not kept, the bytes were compared
      const values: Record<string, ConfigValue> = {};
      for (const [k, v] of Object.entries(parsed)) {
        if (!isConfigValue(v)) throw new ApplyError(`read back a ${typeof v} for ${k}`);
        values[k] = v;
      }
      const h = hashValues(encodeValues(values));
      if (!sameBytes(h, snapshot.hash)) throw new ApplyError(`the ${format} file read back hashes to ${hex(h)}, not the snapshot's ${hex(snapshot.hash)}`);
    },
  };
}

/** The file's bytes, or null when it does not exist. */
export async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function modeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mode & 0o7777;
  } catch {
    return undefined;
  }
}

export interface AtomicWriteOptions {
  /** Called with the temp file's bytes as read back after fsync; throw to abandon the write. */
  readonly verify?: (read: Buffer) => void;
  /** Mode of a new file (an existing file keeps its own). */
  readonly mode?: number;
  /** This mode, whatever an existing file had (secrets: 0o600). */
  readonly exactMode?: number;
}

/** Writes `bytes` to `path` atomically and durably (temp file, fsync, verify, rename, fsync folder). */
export async function writeFileAtomic(path: string, bytes: Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = opts.exactMode ?? (await modeOf(path)) ?? opts.mode ?? 0o644;
  let renamed = false;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, mode);
    if (opts.verify) opts.verify(await readFile(tmp));
    await rename(tmp, path);
    renamed = true;
    await fsyncDir(dir);
  } catch (err) {
    if (!renamed) await unlink(tmp).catch(() => undefined);
    if (err instanceof ApplyError) throw err;
    throw new ApplyError(`writing ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Writes a snapshot to `out` in `format`; returns the file it replaced (null if there was none). */
export async function applySnapshotFile(out: string, format: OutputFormat, snapshot: Snapshot): Promise<{ previous: Buffer | null; bytes: Buffer }> {
  const file = prepareFile(format, snapshot);
  let previous: Buffer | null;
  try {
    previous = await readIfExists(out);
  } catch (err) {
    throw new ApplyError(`cannot read the current ${out}: ${(err as Error).message}`, { cause: err });
  }
  await writeFileAtomic(out, file.bytes, { verify: (read) => file.verify(read) });
  return { previous, bytes: file.bytes };
}

/** Puts back the file `applySnapshotFile` replaced: its bytes atomically, or no file if there was none. */
export async function restoreFile(out: string, previous: Buffer | null): Promise<void> {
  if (previous === null) {
    await unlink(out).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
    await fsyncDir(dirname(out));
    return;
  }
  await writeFileAtomic(out, previous, { verify: (read) => {
    if (!sameBytes(read, previous)) throw new ApplyError('the restored file read back differs from the previous one');
  } });
}
