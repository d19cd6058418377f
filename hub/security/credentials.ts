/**
 * Who may complete a coaps handshake, with which key, and what an enrollment session gets. The DTLS
 * transport asks `pskLookup` (synchronously, inside the handshake) and reports each handshake's outcome;
 * the CoAP endpoint hands `enroll` the POST /enroll of an enrollment session.
 *
 * - A device identity gets its key only while the device exists and is admitted: pending, rejected and
 *   removed devices fail at the handshake.
 * - During a key rotation's grace period both keys are valid; a handshake can prove only one. The old key
 *   is tried first; a wrong-key outcome flips the choice for the next handshake of that device from that
 *   IP address only (so a stranger claiming the device's identity flips nothing for the device). A
 *   handshake that proves the new key retires the old one.
 * - Enrollment identities (`enroll.<id>`, `provision.<id>`) get at most `enrollPerMinute` handshakes per
 *   address per minute (each costs a PSK lookup and, when it succeeds, a key): guessing tokens stays slow.
 */
import type { Enrolled } from '../../protocol/enroll.ts';
import { ENROLL_IDENTITY_PREFIX, EnrollDecodeError, PROVISION_IDENTITY_PREFIX, decodeEnrollRequest, isEnrollmentIdentity } from '../../protocol/enroll.ts';
import { HengeError } from '../errors.ts';
import { addDevice, recordKeyIssued, ruleAccepts } from '../domain/index.ts';
import type { HubCore } from '../domain/index.ts';
import { peerKey } from '../coap/transport.ts';
import type { Peer } from '../coap/transport.ts';
import type { Enrollments } from './enrollment.ts';
import { FailureBudget } from './failure-budget.ts';
import type { Keystore } from './keystore.ts';
import type { Provisioning } from './provisioning.ts';

export const DEFAULT_ENROLL_PER_MINUTE = 10;

/** What the endpoint answers an enrollment session: the key, or a refusal with its CoAP code and reason. */
export type EnrollOutcome = Enrolled | { readonly refuse: '4.00' | '4.03'; readonly message: string };

export type HandshakeOutcome = 'open' | 'wrong-key' | 'unknown-identity' | 'timeout' | 'failed';

export interface CredentialsLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CredentialCounters {
  /** Handshakes refused because the device is pending or rejected. */
  notAdmitted: number;
  /** Enrollment handshakes refused because their address used its budget for the minute. */
  enrollRateLimited: number;
  enrolled: number;
}

export class DeviceCredentials {
  readonly counters: CredentialCounters = { notAdmitted: 0, enrollRateLimited: 0, enrolled: 0 };
  private readonly enrollBudget: FailureBudget;
  /** Which key each handshake in progress was given (peer key -> whether it was a previous key). */
  private readonly tried = new Map<string, { readonly device: string; readonly previous: boolean }>();
  /** `<device> <ip>` pairs whose next handshake tries the new key first (their last one failed on the old). */
  private readonly newFirst = new Set<string>();

  constructor(
    private readonly core: HubCore,
    private readonly keystore: Keystore,
    private readonly enrollments: Enrollments,
    private readonly provisioning: Provisioning,
    private readonly log?: CredentialsLog,
    enrollPerMinute = DEFAULT_ENROLL_PER_MINUTE,
  ) {
    this.enrollBudget = new FailureBudget(enrollPerMinute);
  }

  /** The PSK for a handshake's identity, or null (the handshake fails). Never logs a key. */
  pskLookup(identity: string, peer?: Peer): Buffer | null {
    if (isEnrollmentIdentity(identity)) {
      const address = peer?.address ?? '';
      if (this.enrollBudget.waitMs(address) > 0) {
        this.counters.enrollRateLimited++;
        return null;
      }
      this.enrollBudget.fail(address);
      return this.enrollments.pskFor(identity) ?? this.provisioning.pskFor(identity);
    }
    const device = this.core.state.devices.get(identity);
    if (!device) return null; // a removed device's key is gone from the keystore too
    if (device.admission !== undefined) {
      this.counters.notAdmitted++;
      return null;
    }
    const choice = this.keystore.choose(identity, !(peer && this.newFirst.has(`${identity} ${peer.address}`)));
    if (!choice) return null;
    if (peer && this.keystore.inGrace(identity)) {
      if (this.tried.size >= 10_000) this.tried.clear(); // outcomes never reported (a bounded map, not a leak)
      this.tried.set(peerKey(peer), { device: identity, previous: choice.previous });
    }
    return choice.key;
  }

  /** A handshake ended: feeds key rotation (which key to try next, when to retire the old one). */
  handshakeDone(identity: string | null, peer: Peer, outcome: HandshakeOutcome): void {
    const key = peerKey(peer);
    const tried = this.tried.get(key);
    this.tried.delete(key);
    if (!tried || (identity !== null && identity !== tried.device)) return;
    const pair = `${tried.device} ${peer.address}`;
    if (outcome === 'wrong-key') {
      if (this.newFirst.has(pair)) this.newFirst.delete(pair);
      else {
        if (this.newFirst.size >= 10_000) this.newFirst.clear();
        this.newFirst.add(pair);
      }
    } else if (outcome === 'open' && !tried.previous) {
      this.newFirst.delete(pair);
      this.keystore.proved(tried.device).catch((err: unknown) => this.log?.error({ err, device: tried.device }, 'retiring the previous key failed'));
    }
  }

  /** POST /enroll of an enrollment session: the device's key, or why not. */
  async enroll(identity: string, payload: Buffer): Promise<EnrollOutcome> {
    const hubId = this.core.state.meta?.hubId;
    if (hubId === undefined) return { refuse: '4.03', message: 'hub not initialized' };
    if (identity.startsWith(ENROLL_IDENTITY_PREFIX)) {
      const id = identity.slice(ENROLL_IDENTITY_PREFIX.length);
      // The token is used up first: a second try with it fails even if the rest does.
      const device = await this.enrollments.consume(id);
      if (device === undefined || !this.core.state.devices.has(device)) return { refuse: '4.03', message: 'token used, expired or its device removed' };
      const issued = await this.keystore.issue(device);
      await recordKeyIssued(this.core, { actor: `device:${device}`, reason: `enrolled with token ${id}` }, device, issued.keyId);
      this.counters.enrolled++;
      this.log?.info({ device, enrollment: id, keyId: issued.keyId }, 'device enrolled');
      return { device, key: issued.key, hubId };
    }
    if (identity.startsWith(PROVISION_IDENTITY_PREFIX)) return this.provision(identity, payload, hubId);
    return { refuse: '4.03', message: 'not an enrollment identity' };
  }

  private async provision(identity: string, payload: Buffer, hubId: string): Promise<EnrollOutcome> {
    const token = this.provisioning.tokenOf(identity);
    if (!token) return { refuse: '4.03', message: 'provisioning token revoked or expired' };
    let request;
    try {
      request = decodeEnrollRequest(payload);
    } catch (err) {
      if (err instanceof EnrollDecodeError) return { refuse: '4.00', message: err.message };
      throw err;
    }
    const device = request.device;
    // A fleet token never takes over a device that exists, whatever its state: its key stays its own.
    if (this.core.state.devices.has(device)) return { refuse: '4.03', message: `device id ${device} is taken` };
    const labels = { ...request.labels, ...token.labels };
    const accepted = ruleAccepts(token.accept, labels);
    try {
      // Added first (addDevice checks the labels too): of two devices racing for one id, the second fails here, before any key is issued.
      await addDevice(
        this.core,
        { actor: `provisioning:${token.id}`, reason: `enrolled with provisioning token ${token.name}` },
        { id: device, labels, schema: token.schema, enrolledWith: { provisioning: token.id, acceptedByRule: accepted } },
      );
    } catch (err) {
      if (err instanceof HengeError && err.status < 500) return { refuse: err.status === 409 ? '4.03' : '4.00', message: err.message };
      throw err;
    }
    const issued = await this.keystore.issue(device);
    await recordKeyIssued(this.core, { actor: `device:${device}`, reason: `enrolled with provisioning token ${token.id}` }, device, issued.keyId);
    this.counters.enrolled++;
    this.log?.info({ device, provisioning: token.id, admission: accepted ? 'accepted' : 'pending' }, 'device enrolled itself');
    return { device, key: issued.key, hubId, ...(accepted ? {} : { admission: 'pending' as const }) };
  }
}
