/**
 * Enrollment without copying keys by hand: `henge device add --enroll` makes a one-time token
 * (`hge_<id>_<secret>`) that expires; the device presents it once to get its key.
 *
 * The token is itself a DTLS pre-shared key: the device handshakes on coaps with the identity
 * `enroll.<id>` and the secret's text as PSK, and POSTs `/enroll` inside that session; the hub answers
 * with the device id, its key and the hub id (docs/protocol.md, "Enrollment"). So the key never crosses
 * the network in clear, and a token that was used or has expired fails the handshake.
 *
 * Tokens are kept like keys (the keystore's LevelDB, sealed under the master key), under `n!<id>`.
 */
import { randomBytes } from 'node:crypto';
import { ENROLL_IDENTITY_PREFIX } from '../../protocol/enroll.ts';
import type { Keystore, Sealed } from './keystore.ts';

const PREFIX = 'n!';
export const DEFAULT_ENROLL_HOURS = 24;

interface StoredEnrollment extends Sealed {
  readonly device: string;
  readonly expiresAt: number;
}

export interface EnrollmentToken {
  /** The token, shown once: `hge_<id>_<secret>`. */
  readonly token: string;
  readonly id: string;
  readonly device: string;
  readonly expiresAt: number;
}

export class Enrollments {
  private readonly open = new Map<string, { readonly device: string; readonly secret: Buffer; readonly expiresAt: number }>();

  private constructor(private readonly keystore: Keystore) {}

  static async load(keystore: Keystore): Promise<Enrollments> {
    const e = new Enrollments(keystore);
    for await (const [k, v] of keystore.db.iterator({ gte: PREFIX, lt: 'n"' })) {
      const id = k.slice(PREFIX.length);
      const stored = JSON.parse(v) as StoredEnrollment;
      e.open.set(id, { device: stored.device, secret: Buffer.from(keystore.unseal(ENROLL_IDENTITY_PREFIX + id, stored), 'ascii'), expiresAt: stored.expiresAt });
    }
    return e;
  }

  /** A one-time token for `device`, durable before it is returned. */
  async create(device: string, hours = DEFAULT_ENROLL_HOURS): Promise<EnrollmentToken> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const expiresAt = Date.now() + hours * 3_600_000;
    const stored: StoredEnrollment = { device, expiresAt, ...this.keystore.seal(ENROLL_IDENTITY_PREFIX + id, secret) };
    await this.keystore.db.batch([{ type: 'put', key: PREFIX + id, value: JSON.stringify(stored) }], { sync: true });
    this.open.set(id, { device, secret: Buffer.from(secret, 'ascii'), expiresAt });
    return { token: `hge_${id}_${secret}`, id, device, expiresAt };
  }

  /** The PSK of an enrollment identity, while its token is unused and unexpired; else null. */
  pskFor(identity: string): Buffer | null {
    if (!identity.startsWith(ENROLL_IDENTITY_PREFIX)) return null;
    const e = this.open.get(identity.slice(ENROLL_IDENTITY_PREFIX.length));
    return e && e.expiresAt > Date.now() ? e.secret : null;
  }

  /** Uses the token up (durably): the device it enrolls, or undefined when it is gone or expired. */
  async consume(id: string): Promise<string | undefined> {
    const e = this.open.get(id);
    if (!e) return undefined;
    // Gone from memory at once (a second try meanwhile finds nothing), durably before it counts as used.
    this.open.delete(id);
    try {
      await this.keystore.db.batch([{ type: 'del', key: PREFIX + id }], { sync: true });
    } catch (err) {
      this.open.set(id, e); // not used up after all: it would come back at the next start anyway
      throw err;
    }
    return e.expiresAt > Date.now() ? e.device : undefined;
  }

  /** Forgets every token of a removed device (and, by the way, the expired ones). */
  async removeDevice(device: string): Promise<void> {
    const now = Date.now();
    for (const [id, e] of [...this.open]) if (e.device === device || e.expiresAt <= now) await this.consume(id);
  }
}
