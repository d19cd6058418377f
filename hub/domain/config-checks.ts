/**
 * Whether devices' effective configs stay valid under a change: their schema's rules, or, without a
 * schema, the wire's limit of values (docs/decisions.md 6, docs/protocol.md "Limits"). Every command that
 * changes an effective config asks here before anything is written.
 */
import { MAX_SNAPSHOT_FIELDS } from '../../protocol/snapshot.ts';
import type { ConfigValue } from '../../protocol/snapshot.ts';
import type { Violation } from '../errors.ts';
import { compareGroupsForMerge, effectiveValues } from './config.ts';
import type { DeviceRecord, GroupRecord } from './config.ts';
import { checkValue, validateConfig } from './schema.ts';
import type { SchemaRecord } from './schema.ts';
import type { HubState } from './state.ts';

function unknownDeviceKeys(values: Readonly<Record<string, ConfigValue>>, schema: SchemaRecord | undefined, device: string): Violation[] {
  if (!schema) return [];
  const known = new Set(schema.fields.map((f) => f.name));
  return Object.keys(values)
    .filter((k) => !known.has(k))
    .map((k) => ({ field: `values.${k}`, rule: 'unknown', message: `${k} is not a field of schema ${schema.name}`, device }));
}

/** The device's layers as they are now, before the change checked: a device over the limit may shrink. */
export interface CurrentLayers {
  readonly values: DeviceRecord['values'];
  readonly groups: readonly GroupRecord[];
}

/**
 * The violations of a device with these layers. Without a schema only the wire's limit of values counts,
 * and a change that leaves a device over it is refused only when it adds to the count it has `now` (a
 * device that got there before the limit was enforced can still be cut back step by step).
 */
export function checkDevice(device: Pick<DeviceRecord, 'id' | 'values'>, groups: readonly GroupRecord[], schema: SchemaRecord | undefined, now?: CurrentLayers): Violation[] {
  if (!schema) {
    // Every key of every layer reaches the device: the wire's limit is all there is to check.
    const n = Object.keys(effectiveValues(device, groups, undefined)).length;
    if (n <= MAX_SNAPSHOT_FIELDS) return [];
    if (now && n <= Object.keys(effectiveValues(now, now.groups, undefined)).length) return [];
    return [{ field: 'values', rule: 'maxFields', message: `device ${device.id} would have ${n} config values; a snapshot holds at most ${MAX_SNAPSHOT_FIELDS}`, device: device.id }];
  }
  const effective = effectiveValues(device, groups, schema);
  const out = validateConfig(schema, effective, device.id).filter((v) => v.rule !== 'unknown');
  return [...unknownDeviceKeys(device.values, schema, device.id), ...out];
}

/** Validates member devices with group `name` replaced by `proposed` (or removed when null). */
export function checkMembers(s: HubState, members: readonly string[], name: string, proposed: GroupRecord | null): Violation[] {
  const out: Violation[] = [];
  for (const id of members) {
    const device = s.devices.get(id);
    if (!device) continue;
    const schema = s.schemaOf(device);
    const groups = s.groupsOf(id).filter((g) => g.name !== name);
    if (proposed) {
      groups.push(proposed);
      groups.sort(compareGroupsForMerge);
    }
    out.push(...checkDevice(device, groups, schema, { values: device.values, groups: s.groupsOf(id) }));
  }
  return out;
}

/**
 * A group value change can only break the keys it changes: checks just those, for every member, with
 * the group's values replaced by `proposed` (same result as checkMembers, without a full merge each).
 * A member without a schema can only break the field limit, and only when the group gains a key (`grows`).
 */
export function checkMembersForKeys(s: HubState, members: readonly string[], proposed: GroupRecord, keys: readonly string[], grows: boolean): Violation[] {
  const out: Violation[] = [];
  for (const id of members) {
    const device = s.devices.get(id);
    if (!device) continue;
    const schema = s.schemaOf(device);
    if (!schema) {
      if (grows) out.push(...checkMembers(s, [id], proposed.name, proposed));
      continue;
    }
    const groups = s.groupsOf(id);
    for (const key of keys) {
      const field = schema.fields.find((f) => f.name === key);
      if (!field || Object.hasOwn(device.values, key)) continue;
      let v: ConfigValue | undefined;
      for (let i = groups.length - 1; i >= 0 && v === undefined; i--) {
        const g = groups[i];
        const values = g?.name === proposed.name ? proposed.values : g?.values;
        if (values && Object.hasOwn(values, key)) v = values[key];
      }
      v ??= field.default;
      if (v === undefined) {
        if (field.required) out.push({ field: `values.${key}`, rule: 'required', message: `${key} is required and has no value`, device: id });
        continue;
      }
      const p = checkValue(field, v);
      if (p) out.push({ field: `values.${key}`, rule: p.rule, message: `${key} ${p.message}`, device: id });
    }
  }
  return out;
}
