/**
 * Device keys (DTLS pre-shared keys), kept apart from the event log: the log and its views are history
 * anyone with the data folder may read and replicate; keys are secrets. They live in their own LevelDB
 * (`<data>/keys`), each encrypted with AES-256-GCM under the hub's master key (`<data>/master.key`, 32
 * random bytes, mode 0600, made on first start), the device id bound as additional data. In memory the
 * hub holds the decrypted keys it needs for handshakes.
 *
 * A key is 256 random bits written as base64url (43 characters). The PSK on the wire is that text's ASCII
 * bytes: libcoap's `-k` and firmware config files take keys as text (docs/security.md).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { KeystoreError } from '../errors.ts';

export const KEY_BYTES = 32;
const MASTER_BYTES = 32;
const IV_BYTES = 12;
const PREFIX = 'k!';

/** A secret encrypted under the master key (AES-256-GCM), bound to its owner as additional data. */
export interface Sealed {
  readonly iv: string;
  readonly data: string;
  readonly tag: string;
}

interface StoredKey extends Sealed {
  /** Random id naming this key in events and logs (never derived from the key). */
  readonly keyId: string;
  readonly issuedAt: number;
  /** The key this one replaced, still valid until `until` (rotation with a grace period). */
  readonly previous?: Sealed & { readonly keyId: string; readonly until: number };
}

interface KeyEntry {
  readonly stored: StoredKey;
  readonly current: Buffer;
  readonly previous: { readonly key: Buffer; readonly keyId: string; readonly until: number } | null;
}

/** The key a handshake is tried with, and whether it is the previous one (rotation grace period). */
export interface KeyChoice {
  readonly key: Buffer;
  readonly previous: boolean;
}

export interface IssuedKey {
  /** The key, shown once: base64url text; its ASCII bytes are the PSK. */
  readonly key: string;
  readonly keyId: string;
  /** The key it replaced, when that one stays valid for a grace period. */
  readonly previous?: { readonly keyId: string; readonly until: number };
}

/** Reads the master key, or makes it (0600) when the data folder has none; refuses one others can read. */
async function masterKey(file: string): Promise<Buffer> {
  try {
    const s = await stat(file);
    if ((s.mode & 0o077) !== 0) {
      throw new KeystoreError(`${file} can be read by others (mode ${(s.mode & 0o777).toString(8)}): chmod 600 it`, { file });
    }
    const key = await readFile(file);
    if (key.length !== MASTER_BYTES) throw new KeystoreError(`${file} is not a ${MASTER_BYTES}-byte master key`, { file });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(MASTER_BYTES);
  const fh = await open(file, 'wx', 0o600);
  try {
    await fh.writeFile(key);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(file, 0o600);
  return key;
}

export class Keystore {
  private readonly keys = new Map<string, KeyEntry>();
  /** Key changes run one at a time: each reads the entry it replaces, so none may overwrite a newer one. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Called once a device's key was replaced or removed: its open sessions must end (they proved the old key). */
  onKeyChanged: (device: string) => void = () => undefined;
  /** Called once a previous key stopped working, durably (grace over, or the device used its new key). */
  onKeyRetired: (device: string, keyId: string, reason: string) => void = () => undefined;

  private constructor(
    readonly db: Level<string, string>,
    private readonly master: Buffer,
  ) {}

  /** Opens (or creates) the keystore of a data folder and decrypts every key into memory. */
  static async open(dataDir: string): Promise<Keystore> {
    const master = await masterKey(join(dataDir, 'master.key'));
    await mkdir(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
    const db = new Level<string, string>(join(dataDir, 'keys'), { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    const ks = new Keystore(db, master);
    try {
      for await (const [k, v] of db.iterator({ gte: PREFIX, lt: 'k"' })) {
        const device = k.slice(PREFIX.length);
        ks.keys.set(device, ks.entry(device, JSON.parse(v) as StoredKey));
      }
    } catch (err) {
      await db.close();
      if (err instanceof KeystoreError) throw err;
      throw new KeystoreError(`cannot read the keystore in ${dataDir}: ${(err as Error).message}`, { dataDir }, { cause: err });
    }
    return ks;
  }

  private entry(device: string, stored: StoredKey): KeyEntry {
    const p = stored.previous;
    return {
      stored,
      current: Buffer.from(this.unseal(device, stored), 'ascii'),
      previous: p ? { key: Buffer.from(this.unseal(device, p), 'ascii'), keyId: p.keyId, until: p.until } : null,
    };
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /**
   * The key to try for a device's handshake. In a grace period both keys are valid but a handshake can
   * prove only one: the previous one unless `previousFirst` is false (the caller flips it for a peer whose
   * handshake failed on the key; hub/security/credentials.ts).
   */
  choose(device: string, previousFirst = true, now = Date.now()): KeyChoice | null {
    const e = this.keys.get(device);
    if (!e) return null;
    if (previousFirst && e.previous && e.previous.until > now) return { key: e.previous.key, previous: true };
    return { key: e.current, previous: false };
  }

  /** Whether the device has a previous key still in its grace period. */
  inGrace(device: string, now = Date.now()): boolean {
    const p = this.keys.get(device)?.previous;
    return p !== null && p !== undefined && p.until > now;
  }

  /**
   * A handshake of `device` completed with its new key: the device has it, so the previous one is retired
   * at once rather than at the end of the grace period. Its sessions stay (the one that just proved the
   * new key among them).
   */
  async proved(device: string): Promise<void> {
    if (this.keys.get(device)?.previous) await this.retire(device, 'the device used its new key', false);
  }

  /** Drops every previous key whose grace period is over (durably); the hub runs it every minute. */
  async retireExpired(now = Date.now()): Promise<number> {
    let n = 0;
    for (const [device, e] of [...this.keys]) {
      if (e.previous && e.previous.until <= now) {
        // The device never used its new key: every session it has proved the old one, and ends.
        await this.retire(device, 'its grace period ended', true);
        n++;
      }
    }
    return n;
  }

  /** Runs `change` after every change queued before it (a failed one does not stop the queue). */
  private serial<T>(change: () => Promise<T>): Promise<T> {
    const run = this.queue.then(change, change);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private retire(device: string, reason: string, endSessions: boolean): Promise<void> {
    return this.serial(() => this.retireNow(device, reason, endSessions));
  }

  private async retireNow(device: string, reason: string, endSessions: boolean): Promise<void> {
    const e = this.keys.get(device);
    if (!e?.previous) return;
    const { previous: old, ...rest } = e.stored;
    await this.db.batch([{ type: 'put', key: PREFIX + device, value: JSON.stringify(rest) }], { sync: true });
    this.keys.set(device, { stored: rest, current: e.current, previous: null });
    if (old) {
      if (endSessions) this.onKeyChanged(device);
      this.onKeyRetired(device, old.keyId, reason);
    }
  }

  /**
   * A new key for the device, durable before it is returned. Without a grace period the key it had stops
   * working at once (and its sessions end); with one, the old key stays valid until then.
   */
  issue(device: string, graceMs = 0): Promise<IssuedKey> {
    return this.serial(() => this.issueNow(device, graceMs));
  }

  private async issueNow(device: string, graceMs: number): Promise<IssuedKey> {
    const key = randomBytes(KEY_BYTES).toString('base64url');
    const keyId = randomBytes(6).toString('hex');
    const had = this.keys.get(device);
    const until = Date.now() + graceMs;
    const previous = graceMs > 0 && had ? { ...this.seal(device, had.current.toString('ascii')), keyId: had.stored.keyId, until } : undefined;
    const stored: StoredKey = { keyId, ...this.seal(device, key), issuedAt: Date.now(), ...(previous ? { previous } : {}) };
    await this.db.batch([{ type: 'put', key: PREFIX + device, value: JSON.stringify(stored) }], { sync: true });
    this.keys.set(device, {
      stored,
      current: Buffer.from(key, 'ascii'),
      previous: previous && had ? { key: had.current, keyId: had.stored.keyId, until } : null,
    });
    // Sessions end when the key they proved stops working: at once without a grace period, and also when
    // a rotation within a grace period drops the key before the previous one (the device reconnects).
    if (!previous || had?.previous) this.onKeyChanged(device);
    if (had?.previous) this.onKeyRetired(device, had.previous.keyId, 'a newer key was issued');
    return { key, keyId, ...(previous ? { previous: { keyId: previous.keyId, until } } : {}) };
  }

  /** Forgets the device's keys (removed or rejected devices fail the handshake). */
  remove(device: string): Promise<void> {
    return this.serial(async () => {
      await this.db.batch([{ type: 'del', key: PREFIX + device }], { sync: true });
      this.keys.delete(device);
      this.onKeyChanged(device);
    });
  }

  /** Encrypts ASCII `text` under the master key, bound to `owner`. */
  seal(owner: string, text: string): Sealed {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.master, iv);
    cipher.setAAD(Buffer.from(owner));
    const data = Buffer.concat([cipher.update(text, 'ascii'), cipher.final()]);
    return { iv: iv.toString('base64'), data: data.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }

  unseal(owner: string, s: Sealed): string {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.master, Buffer.from(s.iv, 'base64'));
      decipher.setAAD(Buffer.from(owner));
      decipher.setAuthTag(Buffer.from(s.tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(s.data, 'base64')), decipher.final()]).toString('ascii');
    } catch (cause) {
      throw new KeystoreError(`the secret of ${owner} does not decrypt with this hub's master key`, { owner }, { cause });
    }
  }
}
