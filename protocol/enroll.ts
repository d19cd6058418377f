/**
 * Enrollment (docs/protocol.md, "Enrollment"): a device with a one-time token `hge_<id>_<secret>`
 * handshakes on coaps with the PSK identity `enroll.<id>` and the secret's text as PSK, and POSTs
 * `/enroll` (no payload). The hub answers 2.04 with a CBOR map: 1 device id, 2 the device's key (text),
 * 3 the hub id. The token is then used up.
 */
import { Decoder } from 'cbor-x';
import { encodeDeterministic } from './cbor.ts';
import { DEVICE_ID_PATTERN } from './paths.ts';

export const ENROLL_PATH = 'enroll';
/** PSK identities of enrollment sessions: `enroll.<token id>` (a device id holds no dot). */
export const ENROLL_IDENTITY_PREFIX = 'enroll.';

export const EnrollKey = {
  device: 1,
  key: 2,
  hubId: 3,
} as const;

export interface Enrolled {
  readonly device: string;
  readonly key: string;
  readonly hubId: string;
}

const TOKEN_RE = /^hge_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** The id and secret of an enrollment token (`hge_<id>_<secret>`), or undefined when the text is not one. */
export function parseEnrollmentToken(text: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(text.trim());
  return m?.[1] && m[2] ? { id: m[1], secret: m[2] } : undefined;
}

/** What a QR code carries: `henge:enroll?hub=<hub id>&t=<token>` (the hub id lets the device check who answers). */
export function enrollmentUri(token: string, hubId: string): string {
  return `henge:enroll?hub=${hubId}&t=${token}`;
}

/** A token, or an enrollment URI (then with the hub id it names); undefined for anything else. */
export function parseEnrollment(text: string): { id: string; secret: string; hubId?: string } | undefined {
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
  return encodeDeterministic(new Map<number, string>([[EnrollKey.device, e.device], [EnrollKey.key, e.key], [EnrollKey.hubId, e.hubId]]));
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
  return { device, key, hubId };
}
