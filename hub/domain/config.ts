/**
 * Layered config: schema defaults < groups (ascending priority) < device values.
 * Pure functions of their inputs, so commands can evaluate a proposed change before it is made.
 */
import type { ConfigValue, ConfigValues } from '../../protocol/snapshot.ts';
import { fieldsInCborOrder } from './schema.ts';
import type { SchemaRecord } from './schema.ts';

export const Layer = {
  Default: 'default',
  Group: 'group',
  Device: 'device',
} as const;
export type Layer = (typeof Layer)[keyof typeof Layer];

export interface DeviceRecord {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly schema: string | null;
  readonly values: Readonly<Record<string, ConfigValue>>;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Absent: accepted. A device that enrolled itself is `pending` until a person or a rule admits it. */
  readonly admission?: 'pending' | 'rejected';
  /** The provisioning token a self-enrolled device used. */
  readonly provisioning?: string;
}

export interface GroupRecord {
  readonly name: string;
  /** Canonical selector text (see selector.ts). */
  readonly selector: string;
  /** Higher wins. Equal priorities: the group whose name sorts first wins. */
  readonly priority: number;
  readonly values: Readonly<Record<string, ConfigValue>>;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface Provenance {
  readonly value: ConfigValue;
  readonly layer: Layer;
  /** The group that set it, for the group layer. */
  readonly group?: string;
}

/** Orders groups so that applying them in turn lets the winner write last. */
export function compareGroupsForMerge(a: GroupRecord, b: GroupRecord): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.name < b.name ? 1 : a.name > b.name ? -1 : 0;
}

/**
 * The device's effective values. `groups` must already be sorted with compareGroupsForMerge.
 * With a schema, only its fields take part, from every layer (validation refuses device-layer keys
 * outside the schema, so none should exist); without one, every key does.
 */
export function effectiveValues(
  device: Pick<DeviceRecord, 'values'>,
  groups: readonly GroupRecord[],
  schema: SchemaRecord | undefined,
): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = {};
  if (!schema) {
    for (const g of groups) Object.assign(out, g.values);
    Object.assign(out, device.values);
    return out;
  }
  // One pass per field, top layer first, in the snapshot's key order (the encoder then needs no sort).
  const dv = device.values;
  for (const f of fieldsInCborOrder(schema)) {
    const k = f.name;
    let v: ConfigValue | undefined;
    if (Object.hasOwn(dv, k)) v = dv[k];
    else {
      for (let i = groups.length - 1; i >= 0; i--) {
        const gv = (groups[i] as GroupRecord).values;
        if (Object.hasOwn(gv, k)) {
          v = gv[k];
          break;
        }
      }
      if (v === undefined) v = f.default;
    }
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Like effectiveValues, and names the layer (and group) that set each key. */
export function effectiveWithProvenance(
  device: Pick<DeviceRecord, 'values'>,
  groups: readonly GroupRecord[],
  schema: SchemaRecord | undefined,
): Record<string, Provenance> {
  const out: Record<string, Provenance> = {};
  const known = schema ? new Set(schema.fields.map((f) => f.name)) : undefined;
  if (schema) for (const f of schema.fields) if (f.default !== undefined) out[f.name] = { value: f.default, layer: Layer.Default };
  for (const g of groups) {
    for (const [k, v] of Object.entries(g.values)) {
      if (!known || known.has(k)) out[k] = { value: v, layer: Layer.Group, group: g.name };
    }
  }
  for (const [k, v] of Object.entries(device.values)) if (!known || known.has(k)) out[k] = { value: v, layer: Layer.Device };
  return out;
}

/** Applies a set/unset map to a value layer; returns the new layer and the changes actually made. */
export function applyPatch(
  current: Readonly<Record<string, ConfigValue>>,
  patch: Readonly<Record<string, ConfigValue | null>>,
  replace: boolean,
): { next: Record<string, ConfigValue>; changes: Array<{ key: string; from?: ConfigValue; to?: ConfigValue }> } {
  const next: Record<string, ConfigValue> = replace ? {} : { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  const changes: Array<{ key: string; from?: ConfigValue; to?: ConfigValue }> = [];
  const keys = new Set([...Object.keys(current), ...Object.keys(next)]);
  for (const key of [...keys].sort()) {
    const from = Object.hasOwn(current, key) ? current[key] : undefined;
    const to = Object.hasOwn(next, key) ? next[key] : undefined;
    if (from === to) continue;
    changes.push({ key, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });
  }
  return { next, changes };
}

export type { ConfigValues };
