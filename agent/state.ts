/**
 * The agent's state folder (`--state`): the last applied snapshot's bytes (with its version, hash and
 * incarnation, readable without CBOR), whether the hub acknowledged it, and the pinned hub id. One JSON
 * file written atomically, and a lock file so that two agents never share a folder.
 */
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeSnapshot } from '../protocol/snapshot.ts';
import type { Snapshot } from '../protocol/snapshot.ts';
import { hex, sameBytes, writeFileAtomic } from './apply.ts';
import { StateError, StateLockedError } from './errors.ts';

export const STATE_FILE = 'state.json';
export const LOCK_FILE = 'agent.lock';
/** Where `henge agent enroll` keeps the device key (0600). */
export const KEY_FILE = 'key';

/** The device key kept in a state folder, or undefined when there is none. */
export async function readStoredKey(dir: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, KEY_FILE), 'utf8')).split('\n')[0];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateError(`cannot read the device key ${join(dir, KEY_FILE)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Keeps the device key in the state folder: 0700 folder, 0600 file written atomically. */
export async function storeKey(dir: string, key: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, KEY_FILE), Buffer.from(`${key}\n`), { exactMode: 0o600 });
}
const STATE_FORMAT = 1;

export interface AppliedRecord {
  /** The snapshot exactly as received (CBOR). */
  readonly bytes: Uint8Array;
  readonly snapshot: Snapshot;
  /** The hub answered 2.04 to the `applied` ack of this version. */
  readonly acked: boolean;
  readonly appliedAt: number;
}

export interface AgentState {
  readonly applied: AppliedRecord | null;
  /** The hub this device first used (from discovery); null until one is known. */
  readonly hubId: string | null;
}

/** Folders locked by this process (a lock file with our own pid is otherwise a stale one, e.g. pid 1 in a container). */
const lockedHere = new Set<string>();

export const EMPTY_STATE: AgentState = { applied: null, hubId: null };

interface StateFileV1 {
  format: 1;
  device: string;
  hubId: string | null;
  applied: { version: number; hash: string; incarnation: string; acked: boolean; appliedAt: number; snapshot: string } | null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export class StateStore {
  readonly file: string;
  private readonly lockFile: string;
  private locked = false;

  constructor(
    readonly dir: string,
    private readonly device: string,
  ) {
    this.file = join(dir, STATE_FILE);
    this.lockFile = join(dir, LOCK_FILE);
  }

  /** Creates the folder and takes its lock (a stale lock of a dead process is taken over). */
  async open(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StateError(`cannot create state folder ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    if (lockedHere.has(this.lockFile)) throw new StateLockedError(`state folder ${this.dir} is in use by this process`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(this.lockFile, 'wx', 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        this.locked = true;
        lockedHere.add(this.lockFile);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StateError(`cannot lock ${this.lockFile}: ${(err as Error).message}`, { cause: err });
      }
      const pid = Number((await readFile(this.lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new StateLockedError(`state folder ${this.dir} is in use by process ${pid} (another agent for this device?)`);
      }
      await unlink(this.lockFile).catch(() => undefined);
    }
    throw new StateLockedError(`cannot take the lock ${this.lockFile}`);
  }

  async close(): Promise<void> {
    if (!this.locked) return;
    this.locked = false;
    lockedHere.delete(this.lockFile);
    await unlink(this.lockFile).catch(() => undefined);
  }

  /** The saved state; EMPTY_STATE when there is none. Throws StateError when the file is damaged. */
  async load(): Promise<AgentState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_STATE;
      throw new StateError(`cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return this.parse(JSON.parse(text));
    } catch (err) {
      if (err instanceof StateError) throw err;
      throw new StateError(`${this.file} is damaged: ${(err as Error).message}`, { cause: err });
    }
  }

  private parse(raw: unknown): AgentState {
    if (!isRecord(raw) || raw['format'] !== STATE_FORMAT) throw new StateError(`${this.file}: unknown format`);
    if (raw['device'] !== this.device) throw new StateError(`${this.file} belongs to device ${String(raw['device'])}, not ${this.device}`);
    const hubId = typeof raw['hubId'] === 'string' ? raw['hubId'] : null;
    const a = raw['applied'];
    if (a === null || a === undefined) return { applied: null, hubId };
    if (!isRecord(a) || typeof a['snapshot'] !== 'string') throw new StateError(`${this.file}: applied snapshot missing`);
    const bytes = new Uint8Array(Buffer.from(a['snapshot'], 'base64'));
    const snapshot = decodeSnapshot(bytes);
    if (a['version'] !== snapshot.version || a['hash'] !== hex(snapshot.hash) || a['incarnation'] !== hex(snapshot.incarnation)) {
      throw new StateError(`${this.file}: the recorded version, hash or incarnation differ from the snapshot's`);
    }
    return {
      hubId,
      applied: { bytes, snapshot, acked: a['acked'] === true, appliedAt: typeof a['appliedAt'] === 'number' ? a['appliedAt'] : 0 },
    };
  }

  async save(state: AgentState): Promise<void> {
    const a = state.applied;
    const doc: StateFileV1 = {
      format: STATE_FORMAT,
      device: this.device,
      hubId: state.hubId,
      applied: a
        ? {
            version: a.snapshot.version,
            hash: hex(a.snapshot.hash),
            incarnation: hex(a.snapshot.incarnation),
            acked: a.acked,
            appliedAt: a.appliedAt,
            snapshot: Buffer.from(a.bytes).toString('base64'),
          }
        : null,
    };
    const bytes = Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
    try {
      await writeFileAtomic(this.file, bytes, {
        mode: 0o600,
        verify: (read) => {
          if (!sameBytes(read, bytes)) throw new StateError('state file read back differs');
        },
      });
    } catch (err) {
      throw new StateError(`cannot write ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
