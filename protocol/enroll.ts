/**
 * Enrollment (docs/protocol.md, "Enrollment"): a device with a one-time token `hge_<id>_<secret>`
 * handshakes on coaps with the PSK identity `enroll.<id>` and the secret's text as PSK, and POSTs
 * `/enroll` (no payload). The hub answers 2.04 with a CBOR map: 1 device id, 2 the device's key (text),
 * 3 the hub id. The token is then used up.
 *
 * Fleet provisioning: with a fleet-wide token `hgp_<id>_<secret>` the identity is `provision.<id>` and the
 * POST carries a CBOR map: 1 the device id it asks for, 2 (optional) labels it reports (text to text). The
 * answer adds 4 `"pending"` when the device must wait for admission before its key works.
 */
import { Decoder } from 'cbor-x';
import { encodeDeterministic } from './cbor.ts';
import { DEVICE_ID_PATTERN } from './paths.ts';

export const ENROLL_PATH = 'enroll';
/** PSK identities of enrollment sessions: `enroll.<token id>` (a device id holds no dot). */
export const ENROLL_IDENTITY_PREFIX = 'enroll.';
/** PSK identities of fleet provisioning sessions: `provision.<token id>`. */
export const PROVISION_IDENTITY_PREFIX = 'provision.';

/** An identity that may only POST /enroll (a one-time or a fleet token), never a device's resources. */
export function isEnrollmentIdentity(identity: string): boolean {
  return identity.startsWith(ENROLL_IDENTITY_PREFIX) || identity.startsWith(PROVISION_IDENTITY_PREFIX);
}

export const EnrollKey = {
  device: 1,
  key: 2,
  hubId: 3,
  admission: 4,
} as const;

export const EnrollRequestKey = {
  device: 1,
  labels: 2,
} as const;

export interface Enrolled {
  readonly device: string;
  readonly key: string;
  readonly hubId: string;
  /** Set when the key works only once the device is admitted. */
  readonly admission?: 'pending';
}

/** What a device enrolling with a fleet token asks for. */
export interface EnrollRequest {
  readonly device: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** `device`: a one-time token for one device; `fleet`: a provisioning token any number of devices use. */
export type TokenKind = 'device' | 'fleet';

export interface ParsedToken {
  readonly kind: TokenKind;
  readonly id: string;
  readonly secret: string;
  /** The PSK identity of the enrollment session. */
  readonly identity: string;
}

const TOKEN_RE = /^hg([ep])_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** An enrollment token (`hge_<id>_<secret>`) or provisioning token (`hgp_…`), or undefined when the text is neither. */
export function parseEnrollmentToken(text: string): ParsedToken | undefined {
  const m = TOKEN_RE.exec(text.trim());
  if (!m?.[2] || !m[3]) return undefined;
  const kind: TokenKind = m[1] === 'p' ? 'fleet' : 'device';
  return { kind, id: m[2], secret: m[3], identity: (kind === 'fleet' ? PROVISION_IDENTITY_PREFIX : ENROLL_IDENTITY_PREFIX) + m[2] };
}

/** What a QR code carries: `henge:enroll?hub=<hub id>&t=<token>` (the hub id lets the device check who answers). */
export function enrollmentUri(token: string, hubId: string): string {
  return `henge:enroll?hub=${hubId}&t=${token}`;
}

/** A token, or an enrollment URI (then with the hub id it names); undefined for anything else. */
export function parseEnrollment(text: string): (ParsedToken & { readonly hubId?: string }) | undefined {
  const t = text.trim();
  if (!t.startsWith('henge:enroll?')) return parseEnrollmentToken(t);
  const q = new URLSearchParams(t.slice('henge:enroll?'.length));
  const token = parseEnrollmentToken(q.get('t') ?? '');
  const hubId = q.get('hub');
  if (!token || (hubId !== null && !/^[0-9a-f]{12}$/.test(hubId))) return undefined;
  return { ...token, ...(hubId !== null ? { hubId } : {}) };
}

export class EnrollDecodeError extends Error {
  readonly code = 'HENGE_E_ENROLL_DECODE';
}

export function encodeEnrolled(e: Enrolled): Uint8Array {
  const m = new Map<number, string>([[EnrollKey.device, e.device], [EnrollKey.key, e.key], [EnrollKey.hubId, e.hubId]]);
  if (e.admission) m.set(EnrollKey.admission, e.admission);
  return encodeDeterministic(m);
}

/** At most this many labels in an enroll request (the payload stays far below one datagram). */
export const MAX_REPORTED_LABELS = 16;

export function encodeEnrollRequest(r: EnrollRequest): Uint8Array {
  return encodeDeterministic(new Map<number, string | Map<string, string>>([[EnrollRequestKey.device, r.device], [EnrollRequestKey.labels, new Map(Object.entries(r.labels))]]));
}

/** Checks shape only (id syntax, text labels, at most MAX_REPORTED_LABELS); the hub checks label syntax as for any device. */
export function decodeEnrollRequest(bytes: Uint8Array): EnrollRequest {
  let m: unknown;
  try {
    m = decoder.decode(bytes);
  } catch (cause) {
    throw new EnrollDecodeError('the enroll request is not CBOR', { cause });
  }
  if (!(m instanceof Map)) throw new EnrollDecodeError('the enroll request is not a map');
  const device = m.get(EnrollRequestKey.device);
  if (typeof device !== 'string' || !DEVICE_ID_PATTERN.test(device)) throw new EnrollDecodeError(`the enroll request needs a device id matching ${DEVICE_ID_PATTERN.source}`);
  const raw = m.get(EnrollRequestKey.labels) ?? new Map();
  if (!(raw instanceof Map) || raw.size > MAX_REPORTED_LABELS) throw new EnrollDecodeError(`labels must be a map of at most ${MAX_REPORTED_LABELS} text labels`);
  const labels: Record<string, string> = {};
  for (const [k, v] of raw as Map<unknown, unknown>) {
    if (typeof k !== 'string' || typeof v !== 'string' || k === '__proto__') throw new EnrollDecodeError('labels must map text to text');
    labels[k] = v;
  }
  return { device, labels };
}

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

export function decodeEnrolled(bytes: Uint8Array): Enrolled {
  let m: unknown;
  try {
    m = decoder.decode(bytes);
  } catch (cause) {
    throw new EnrollDecodeError('the enrollment answer is not CBOR', { cause });
  }
  if (!(m instanceof Map)) throw new EnrollDecodeError('the enrollment answer is not a map');
  const [device, key, hubId] = [m.get(EnrollKey.device), m.get(EnrollKey.key), m.get(EnrollKey.hubId)];
  if (typeof device !== 'string' || !DEVICE_ID_PATTERN.test(device)) throw new EnrollDecodeError('the enrollment answer has no valid device id');
  if (typeof key !== 'string' || !/^[\x21-\x7e]{16,512}$/.test(key)) throw new EnrollDecodeError('the enrollment answer has no valid key');
  if (typeof hubId !== 'string' || !/^[0-9a-f]{12}$/.test(hubId)) throw new EnrollDecodeError('the enrollment answer has no valid hub id');
  const admission = m.get(EnrollKey.admission);
  if (admission !== undefined && admission !== 'pending') throw new EnrollDecodeError('the enrollment answer has an unknown admission state');
  return { device, key, hubId, ...(admission === 'pending' ? { admission } : {}) };
}
