/**
 * Fleet provisioning tokens (factory lines): one token (`hgp_<id>_<secret>`) that any number of devices use
 * to enroll themselves until it expires or is revoked. Like a one-time token (enrollment.ts), its secret is
 * the PSK of the session in which a device asks for its key, under the identity `provision.<id>`; unlike
 * one, the device names itself, and lands `pending` unless the token's rule (a label selector over the
 * labels it reports plus the token's own) accepts it at once (hub/domain/admission.ts).
 *
 * Kept in the keystore's LevelDB, the secret sealed under the master key, under `p!<id>`.
 */
import { randomBytes } from 'node:crypto';
import { PROVISION_IDENTITY_PREFIX } from '../../protocol/enroll.ts';
import type { Keystore, Sealed } from './keystore.ts';

const PREFIX = 'p!';
export const DEFAULT_PROVISION_DAYS = 30;
export const MAX_PROVISION_DAYS = 365;

export interface ProvisioningToken {
  readonly id: string;
  readonly name: string;
  readonly expiresAt: number;
  /** Labels every device enrolling with it gets (they win over labels the device reports). */
  readonly labels: Readonly<Record<string, string>>;
  readonly schema: string | null;
  /** null: a person admits each device; else a label selector whose matches are accepted at once. */
  readonly accept: string | null;
}

interface Stored extends Sealed, ProvisioningToken {}

export class Provisioning {
  private readonly open = new Map<string, { readonly token: ProvisioningToken; readonly secret: Buffer }>();

  private constructor(private readonly keystore: Keystore) {}

  static async load(keystore: Keystore): Promise<Provisioning> {
    const p = new Provisioning(keystore);
    for await (const [k, v] of keystore.db.iterator({ gte: PREFIX, lt: 'p"' })) {
      const { iv, data, tag, ...token } = JSON.parse(v) as Stored;
      const id = k.slice(PREFIX.length);
      p.open.set(id, { token, secret: Buffer.from(keystore.unseal(PROVISION_IDENTITY_PREFIX + id, { iv, data, tag }), 'ascii') });
    }
    return p;
  }

  /** A new fleet token, durable before it is returned; `token` is shown once. */
  async create(t: Omit<ProvisioningToken, 'id'>): Promise<ProvisioningToken & { readonly token: string }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const token: ProvisioningToken = { id, ...t };
    const stored: Stored = { ...token, ...this.keystore.seal(PROVISION_IDENTITY_PREFIX + id, secret) };
    await this.keystore.db.batch([{ type: 'put', key: PREFIX + id, value: JSON.stringify(stored) }], { sync: true });
    this.open.set(id, { token, secret: Buffer.from(secret, 'ascii') });
    return { ...token, token: `hgp_${id}_${secret}` };
  }

  /** The PSK of a provisioning identity while its token is valid; else null (the handshake fails). */
  pskFor(identity: string, now = Date.now()): Buffer | null {
    if (!identity.startsWith(PROVISION_IDENTITY_PREFIX)) return null;
    const e = this.open.get(identity.slice(PROVISION_IDENTITY_PREFIX.length));
    return e && e.token.expiresAt > now ? e.secret : null;
  }

  /** The token behind a provisioning identity, while valid. */
  tokenOf(identity: string, now = Date.now()): ProvisioningToken | undefined {
    if (!identity.startsWith(PROVISION_IDENTITY_PREFIX)) return undefined;
    const e = this.open.get(identity.slice(PROVISION_IDENTITY_PREFIX.length));
    return e && e.token.expiresAt > now ? e.token : undefined;
  }

  list(): ProvisioningToken[] {
    return [...this.open.values()].map((e) => e.token).sort((a, b) => a.expiresAt - b.expiresAt);
  }

  /** Revokes a token (durably): devices can no longer enroll with it; those that did are unaffected. */
  async revoke(id: string): Promise<boolean> {
    if (!this.open.has(id)) return false;
    await this.keystore.db.batch([{ type: 'del', key: PREFIX + id }], { sync: true });
    this.open.delete(id);
    return true;
  }
}
