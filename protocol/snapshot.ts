/**
 * The config snapshot a device receives: envelope keys and codec (docs/protocol.md, "Snapshot").
 */
import { hash as oneShotHash } from 'node:crypto';
import { Decoder } from 'cbor-x';
import { EncodedCbor, encodeDeterministic } from './cbor.ts';

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
  return new Uint8Array((oneShotHash('sha256', encodedValues, 'buffer') as Buffer).subarray(0, HASH_BYTES));
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
  return { snapshot, bytes: encodeEnvelope(snapshot, new EncodedCbor(prepared.encoded)) };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return encodeEnvelope(s, s.values);
}

function encodeEnvelope(s: Snapshot, values: ConfigValues | EncodedCbor): Uint8Array {
  return encodeDeterministic(
    new Map<number, number | Uint8Array | ConfigValues | EncodedCbor>([
      [SnapshotKey.protocol, PROTOCOL_VERSION],
      [SnapshotKey.version, s.version],
      [SnapshotKey.hash, s.hash],
      [SnapshotKey.values, values],
      [SnapshotKey.incarnation, s.incarnation],
    ]),
  );
}

/** Maps decode as Map (never as objects), so keys keep their CBOR type and arrays cannot pass as maps. */
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

const MAX_SNAPSHOT_FIELDS = 256;

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
    if (typeof k !== 'number') throw new SnapshotDecodeError('snapshot envelope keys must be unsigned integers');
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
    if (typeof k !== 'string' || k === '__proto__') throw new SnapshotDecodeError(`snapshot value key ${String(k)} is not a config key`);
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
