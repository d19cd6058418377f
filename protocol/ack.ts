/** The ack a device POSTs to `/d/{id}/a`, and its telemetry to `/d/{id}/t` (docs/protocol.md). */
import { Decoder } from 'cbor-x';
import { encodeDeterministic } from './cbor.ts';
import type { ConfigValue } from './snapshot.ts';
import { HASH_BYTES, INCARNATION_BYTES } from './snapshot.ts';

export const AckStatus = {
  Applied: 0,
  Rejected: 1,
  Failed: 2,
  Reverted: 3,
} as const;
export type AckStatus = (typeof AckStatus)[keyof typeof AckStatus];

export const ACK_STATUS_NAMES = ['applied', 'rejected', 'failed', 'reverted'] as const;
export type AckStatusName = (typeof ACK_STATUS_NAMES)[number];

export const AckKey = {
  version: 1,
  status: 2,
  message: 3,
  hash: 4,
  incarnation: 5,
} as const;

export const MAX_ACK_MESSAGE = 256;
export const MAX_TELEMETRY_ENTRIES = 64;

export interface Ack {
  readonly version: number;
  readonly status: AckStatus;
  readonly message?: string;
  readonly hash?: Uint8Array;
  readonly incarnation?: Uint8Array;
}

export class PayloadDecodeError extends Error {
  readonly code = 'HENGE_E_PAYLOAD_DECODE';
}

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

function decodeMap(bytes: Uint8Array, what: string): Map<unknown, unknown> {
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (cause) {
    throw new PayloadDecodeError(`${what} is not valid CBOR`, { cause });
  }
  if (!(raw instanceof Map)) throw new PayloadDecodeError(`${what} must be a CBOR map`);
  return raw;
}

function asUint(v: unknown): number | undefined {
  if (typeof v === 'bigint') return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

const utf8 = new TextEncoder();

/** The longest prefix of `text` whose UTF-8 form fits `maxBytes`, never cutting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const room = new Uint8Array(maxBytes);
  const { read } = utf8.encodeInto(text, room);
  return text.slice(0, read);
}

export function encodeAck(ack: Ack): Uint8Array {
  const m = new Map<number, number | string | Uint8Array>([
    [AckKey.version, ack.version],
    [AckKey.status, ack.status],
  ]);
  if (ack.message !== undefined) m.set(AckKey.message, truncateUtf8(ack.message, MAX_ACK_MESSAGE));
  if (ack.hash) m.set(AckKey.hash, ack.hash);
  if (ack.incarnation) m.set(AckKey.incarnation, ack.incarnation);
  return encodeDeterministic(m);
}

function fixedBytes(v: unknown, size: number, name: string): Uint8Array | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array) || v.length !== size) throw new PayloadDecodeError(`ack ${name} must be ${size} bytes`);
  return new Uint8Array(v);
}

/**
 * The common ack read in place: a definite map of 2 to 4 entries with integer keys 1, 2, 4, 5 (no
 * message), each once, as devices encode it. Anything else (a message, another layout, an error) gives
 * undefined and is left to the full decoder, which decides; ack.test.ts compares the two.
 */
export function scanAck(b: Uint8Array): Ack | undefined {
  const n = b.length;
  const head = b[0] ?? 0;
  if (head >> 5 !== 5) return undefined;
  const count = head & 0x1f;
  if (count < 2 || count > 4) return undefined;
  let at = 1;
  let seen = 0;
  let version = -1;
  let status = -1;
  let hash: Uint8Array | undefined;
  let incarnation: Uint8Array | undefined;
  for (let i = 0; i < count; i++) {
    const key = b[at++];
    if (key === undefined || key < 1 || key > 5 || key === AckKey.message || seen & (1 << key)) return undefined;
    seen |= 1 << key;
    const h = b[at] ?? 0xff;
    if (key === AckKey.version || key === AckKey.status) {
      if (h >> 5 !== 0) return undefined;
      const ai = h & 0x1f;
      let v: number;
      if (ai < 24) {
        v = ai;
        at += 1;
      } else if (ai === 24 && at + 1 < n) {
        v = b[at + 1] ?? 0;
        at += 2;
      } else if (ai === 25 && at + 2 < n) {
        v = ((b[at + 1] ?? 0) << 8) | (b[at + 2] ?? 0);
        at += 3;
      } else if (ai === 26 && at + 4 < n) {
        v = (b[at + 1] ?? 0) * 0x100_0000 + (((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 8) | (b[at + 4] ?? 0));
        at += 5;
      } else return undefined;
      if (key === AckKey.version) version = v;
      else status = v;
    } else {
      if (h !== (0x40 | HASH_BYTES) || at + 1 + HASH_BYTES > n) return undefined;
      // A copy, as a plain Uint8Array: never a view of the datagram.
      const bytes = new Uint8Array(b.subarray(at + 1, at + 1 + HASH_BYTES));
      if (key === AckKey.hash) hash = bytes;
      else incarnation = bytes;
      at += 1 + HASH_BYTES;
    }
  }
  if (at !== n || version < 0 || status < 0 || status > AckStatus.Reverted) return undefined;
  const ack: { version: number; status: AckStatus; hash?: Uint8Array; incarnation?: Uint8Array } = { version, status: status as AckStatus };
  if (hash) ack.hash = hash;
  if (incarnation) ack.incarnation = incarnation;
  return ack;
}

export function decodeAck(bytes: Uint8Array): Ack {
  return scanAck(bytes) ?? decodeAckGeneral(bytes);
}

/** The full decoder (cbor-x, then the checks): every layout, and the errors. */
export function decodeAckGeneral(bytes: Uint8Array): Ack {
  const m = decodeMap(bytes, 'ack');
  const version = asUint(m.get(AckKey.version));
  if (version === undefined) throw new PayloadDecodeError('ack version must be an unsigned integer');
  const status = asUint(m.get(AckKey.status));
  if (status === undefined || status > AckStatus.Reverted) throw new PayloadDecodeError('ack status must be 0..3');
  const message = m.get(AckKey.message);
  if (message !== undefined && (typeof message !== 'string' || Buffer.byteLength(message) > MAX_ACK_MESSAGE)) {
    throw new PayloadDecodeError(`ack message must be text of at most ${MAX_ACK_MESSAGE} bytes`);
  }
  const hash = fixedBytes(m.get(AckKey.hash), HASH_BYTES, 'hash');
  const incarnation = fixedBytes(m.get(AckKey.incarnation), INCARNATION_BYTES, 'incarnation');
  return {
    version,
    status: status as AckStatus,
    ...(typeof message === 'string' ? { message } : {}),
    ...(hash ? { hash } : {}),
    ...(incarnation ? { incarnation } : {}),
  };
}

const TELEMETRY_KEY = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export function encodeTelemetry(values: Readonly<Record<string, ConfigValue>>): Uint8Array {
  return encodeDeterministic(values);
}

export function decodeTelemetry(bytes: Uint8Array): Record<string, ConfigValue> {
  const m = decodeMap(bytes, 'telemetry');
  if (m.size > MAX_TELEMETRY_ENTRIES) throw new PayloadDecodeError(`telemetry has more than ${MAX_TELEMETRY_ENTRIES} entries`);
  const out: Record<string, ConfigValue> = {};
  for (const [k, v] of m) {
    if (typeof k !== 'string' || !TELEMETRY_KEY.test(k) || k === '__proto__') throw new PayloadDecodeError(`telemetry key ${String(k)} is not a valid key`);
    const value = typeof v === 'bigint' ? asUint(v) : v;
    if (typeof value === 'string' ? value.length > 1024 : typeof value === 'number' ? !Number.isFinite(value) : typeof value !== 'boolean') {
      throw new PayloadDecodeError(`telemetry value ${k} must be a scalar`);
    }
    out[k] = value as ConfigValue;
  }
  return out;
}
