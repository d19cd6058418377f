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
}

export interface IssuedKey {
  /** The key, shown once: base64url text; its ASCII bytes are the PSK. */
  readonly key: string;
  readonly keyId: string;
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
  private readonly keys = new Map<string, Buffer>();
  /** Called once a device's key was replaced or removed: its open sessions must end (they proved the old key). */
  onKeyChanged: (device: string) => void = () => undefined;

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
        const stored = JSON.parse(v) as StoredKey;
        ks.keys.set(device, Buffer.from(ks.unseal(device, stored), 'ascii'));
      }
    } catch (err) {
      await db.close();
      if (err instanceof KeystoreError) throw err;
      throw new KeystoreError(`cannot read the keystore in ${dataDir}: ${(err as Error).message}`, { dataDir }, { cause: err });
    }
    return ks;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /** The PSK for an identity (a device id), or null. What the DTLS handshake asks. */
  pskFor(device: string): Buffer | null {
    return this.keys.get(device) ?? null;
  }

  /** A new key for the device, durable before it is returned; the one it had stops working. */
  async issue(device: string): Promise<IssuedKey> {
    const key = randomBytes(KEY_BYTES).toString('base64url');
    const keyId = randomBytes(6).toString('hex');
    const stored: StoredKey = { keyId, ...this.seal(device, key), issuedAt: Date.now() };
    await this.db.batch([{ type: 'put', key: PREFIX + device, value: JSON.stringify(stored) }], { sync: true });
    this.keys.set(device, Buffer.from(key, 'ascii'));
    this.onKeyChanged(device);
    return { key, keyId };
  }

  /** Forgets the device's key (removed or decommissioned devices fail the handshake). */
  async remove(device: string): Promise<void> {
    await this.db.batch([{ type: 'del', key: PREFIX + device }], { sync: true });
    this.keys.delete(device);
    this.onKeyChanged(device);
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
