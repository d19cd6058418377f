/**
 * The config snapshot a device receives: envelope keys and codec (docs/protocol.md, "Snapshot").
 */
import { hash as oneShotHash } from 'node:crypto';
import { Decoder } from 'cbor-x';
import { encodeDeterministic, encodeView } from './cbor.ts';

/** A config value: the scalar types a schema field can hold. */
export type ConfigValue = string | number | boolean;
export type ConfigValues = Readonly<Record<string, ConfigValue>>;

/** Version of this wire format; travels in every snapshot. */
export const PROTOCOL_VERSION = 1;

/** CBOR map keys of the snapshot envelope. Config fields use text keys inside `values`. */
export const SnapshotKey = {
  protocol: 0,
  version: 1,
  hash: 2,
  values: 3,
  incarnation: 4,
} as const;

/** Bytes of the truncated SHA-256 used as hash and CoAP ETag. */
export const HASH_BYTES = 8;
export const INCARNATION_BYTES = 8;

export interface Snapshot {
  /** Log sequence number of the last event that changed this device's effective config. */
  readonly version: number;
  /** SHA-256 of the deterministic CBOR of `values`, first 8 bytes. */
  readonly hash: Uint8Array;
  readonly values: ConfigValues;
  /** Random id of the hub's store; changes only when the hub is rebuilt from scratch. */
  readonly incarnation: Uint8Array;
}

export class SnapshotDecodeError extends Error {
  readonly code = 'HENGE_E_SNAPSHOT_DECODE';
}

export function encodeValues(values: ConfigValues): Uint8Array {
  return encodeDeterministic(values);
}

export function hashValues(encodedValues: Uint8Array): Uint8Array {
  const digest = oneShotHash('sha256', encodedValues, 'buffer') as Buffer;
  // A plain Uint8Array view of the first 8 bytes: no copy, and not a Buffer (callers compare types).
  return new Uint8Array(digest.buffer, digest.byteOffset, HASH_BYTES);
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < HASH_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The hot path of a change: encodes `values` once, hashes those bytes, and only when the hash differs
 * from `previousHash` builds the envelope around the same bytes. Undefined means "config unchanged".
 */
export function buildSnapshotIfChanged(
  previousHash: Uint8Array | undefined,
  version: number,
  values: ConfigValues,
  incarnation: Uint8Array,
): { snapshot: Snapshot; bytes: Uint8Array } | undefined {
  const view = encodeView(values);
  const hash = hashValues(view);
  if (previousHash && sameHash(previousHash, hash)) return undefined;
  const snapshot: Snapshot = { version, hash, values, incarnation };
  return { snapshot, bytes: encodeEnvelope(snapshot, view) };
}

/** Encoded values and their hash: enough to tell whether a config changed before building an envelope. */
export interface PreparedValues {
  readonly encoded: Uint8Array;
  readonly hash: Uint8Array;
}

export function prepareValues(values: ConfigValues): PreparedValues {
  const encoded = encodeValues(values);
  return { encoded, hash: hashValues(encoded) };
}

/** Builds a snapshot and its wire bytes; the values are encoded once and hashed from those bytes. */
export function buildSnapshot(
  version: number,
  values: ConfigValues,
  incarnation: Uint8Array,
  prepared: PreparedValues = prepareValues(values),
): { snapshot: Snapshot; bytes: Uint8Array } {
  const snapshot: Snapshot = { version, hash: prepared.hash, values, incarnation };
  return { snapshot, bytes: encodeEnvelope(snapshot, prepared.encoded) };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return encodeEnvelope(s, encodeValues(s.values));
}

/**
 * The envelope, laid out directly: its keys are the fixed integers 0..4, so canonical order is known
 * and the already-encoded values are copied in once.
 */
function encodeEnvelope(s: Snapshot, values: Uint8Array): Uint8Array {
  if (s.hash.length !== HASH_BYTES || s.incarnation.length !== INCARNATION_BYTES) throw new RangeError('snapshot hash and incarnation are 8 bytes');
  const v = s.version;
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('snapshot version must be an unsigned integer');
  const versionLength = v < 24 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffff ? 5 : 9;
  const out = new Uint8Array(1 + 2 + 1 + versionLength + 2 + HASH_BYTES + 1 + values.length + 2 + INCARNATION_BYTES);
  let at = 0;
  out[at++] = 0xa5; // map(5)
  out[at++] = SnapshotKey.protocol;
  out[at++] = PROTOCOL_VERSION;
  out[at++] = SnapshotKey.version;
  if (versionLength === 1) out[at++] = v;
  else {
    // unsigned integer head: 0x18..0x1b then the value, big-endian, in 1, 2, 4 or 8 bytes
    const n = versionLength - 1;
    out[at++] = 0x18 + Math.log2(n);
    let rest = v;
    for (let i = n - 1; i >= 0; i--) {
      out[at + i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
    at += n;
  }
  out[at++] = SnapshotKey.hash;
  out[at++] = 0x40 | HASH_BYTES; // bytes(8)
  out.set(s.hash, at);
  at += HASH_BYTES;
  out[at++] = SnapshotKey.values;
  out.set(values, at);
  at += values.length;
  out[at++] = SnapshotKey.incarnation;
  out[at++] = 0x40 | INCARNATION_BYTES;
  out.set(s.incarnation, at);
  return out;
}

/** Maps decode as Map (never as objects), so keys keep their CBOR type and arrays cannot pass as maps. */
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

/** docs/protocol.md, "Limits": at most 256 values in a snapshot, each text at most 4,096 bytes of valid UTF-8. */
export const MAX_SNAPSHOT_FIELDS = 256;
export const MAX_TEXT_BYTES = 4096;
/** Config keys (docs/protocol.md, "Limits"): a letter or `_` first, then letters, digits, `_` and `-`; up to 64. */
export const CONFIG_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** A decoded CBOR integer as a JS number, when it is one and fits exactly. */
function asInteger(v: unknown): number | undefined {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}

function asConfigValue(v: unknown): ConfigValue | undefined {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  return asInteger(v);
}

function toBytes(v: unknown, field: string, size: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== size) {
    throw new SnapshotDecodeError(`snapshot ${field} must be a ${size}-byte string`);
  }
  return new Uint8Array(v);
}

/** Decodes and checks a snapshot; throws SnapshotDecodeError on anything out of shape. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (cause) {
    throw new SnapshotDecodeError('snapshot is not valid CBOR', { cause });
  }
  if (!(raw instanceof Map)) throw new SnapshotDecodeError('snapshot must be a CBOR map');
  for (const k of raw.keys()) {
    if (typeof k !== 'number' || k < 0) throw new SnapshotDecodeError('snapshot envelope keys must be unsigned integers');
  }
  const protocol = raw.get(SnapshotKey.protocol);
  if (protocol !== PROTOCOL_VERSION) throw new SnapshotDecodeError(`unsupported protocol version ${String(protocol)}`);
  const version = asInteger(raw.get(SnapshotKey.version));
  if (version === undefined || version < 0) throw new SnapshotDecodeError('snapshot version must be an unsigned integer');
  const rawValues: unknown = raw.get(SnapshotKey.values);
  if (!(rawValues instanceof Map)) throw new SnapshotDecodeError('snapshot values must be a map');
  if (rawValues.size > MAX_SNAPSHOT_FIELDS) throw new SnapshotDecodeError(`snapshot has more than ${MAX_SNAPSHOT_FIELDS} values`);
  const values: Record<string, ConfigValue> = {};
  for (const [k, v] of rawValues as Map<unknown, unknown>) {
    const value = asConfigValue(v);
    if (typeof k !== 'string' || k === '__proto__' || !CONFIG_KEY_PATTERN.test(k)) throw new SnapshotDecodeError(`snapshot value key ${String(k)} is not a config key`);
    if (value === undefined) throw new SnapshotDecodeError(`snapshot value ${k} is not a scalar`);
    values[k] = value;
  }
  return {
    version,
    hash: toBytes(raw.get(SnapshotKey.hash), 'hash', HASH_BYTES),
    values,
    incarnation: toBytes(raw.get(SnapshotKey.incarnation), 'incarnation', INCARNATION_BYTES),
  };
}
