/**
 * An independent model of the hub's config rules (docs/protocol.md "Limits", docs/decisions.md 6), for
 * the property tests of the admin API (fault scenario 5): which edits the hub must accept, and what the
 * layers and effective configs are afterwards. Written from the docs, not from hub/domain, so that a rule
 * the two disagree on shows up as a failed property.
 */

export type Value = string | number | boolean;
export type Values = Record<string, Value>;

export interface Field {
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'enum';
  readonly required?: boolean;
  readonly default?: Value;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly enum?: readonly string[];
}

export interface ModelDevice {
  readonly schema: Readonly<Record<string, Field>> | null;
  /** Its groups, lowest priority first. */
  readonly groups: readonly string[];
}

export interface ModelState {
  readonly devices: Record<string, Values>;
  readonly groups: Record<string, Values>;
}

/** Config keys and text limits every value must meet, schema or not. */
export const KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
export const MAX_TEXT_BYTES = 4096;
export const MAX_FIELDS = 256;

/** True when `s` is well-formed UTF-16 (no lone surrogate), so it has a UTF-8 form. */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/** Why a key or value can never be stored, or undefined. */
export function generalProblem(key: string, v: Value | null): string | undefined {
  if (!KEY_PATTERN.test(key) || key === '__proto__') return `key ${JSON.stringify(key)}`;
  if (typeof v === 'string' && (!wellFormed(v) || Buffer.byteLength(v, 'utf8') > MAX_TEXT_BYTES)) return `text of ${key}`;
  if (typeof v === 'number' && !Number.isFinite(v)) return `number of ${key}`;
  return undefined;
}

function fieldProblem(f: Field, v: Value): boolean {
  switch (f.type) {
    case 'boolean':
      return typeof v !== 'boolean';
    case 'enum':
      return typeof v !== 'string' || !(f.enum ?? []).includes(v);
    case 'integer':
    case 'number':
      if (typeof v !== 'number' || (f.type === 'integer' && !Number.isSafeInteger(v))) return true;
      return (f.minimum !== undefined && v < f.minimum) || (f.maximum !== undefined && v > f.maximum);
    case 'string': {
      if (typeof v !== 'string') return true;
      const n = [...v].length; // characters are code points
      if ((f.minLength !== undefined && n < f.minLength) || (f.maxLength !== undefined && n > f.maxLength)) return true;
      return f.pattern !== undefined && !new RegExp(f.pattern, 'u').test(v);
    }
  }
}

/** The effective config: schema defaults < groups (lowest priority first) < device; with a schema, only its fields. */
export function effective(state: ModelState, device: ModelDevice, id: string): Values {
  const out: Values = {};
  const take = (k: string): boolean => device.schema === null || Object.hasOwn(device.schema, k);
  if (device.schema) for (const [k, f] of Object.entries(device.schema)) if (f.default !== undefined) out[k] = f.default;
  for (const g of device.groups) for (const [k, v] of Object.entries(state.groups[g] ?? {})) if (take(k)) out[k] = v;
  for (const [k, v] of Object.entries(state.devices[id] ?? {})) out[k] = v;
  return out;
}

/** True when the device's layers make a config its schema accepts (and within the field count). */
export function deviceValid(state: ModelState, device: ModelDevice, id: string): boolean {
  const eff = effective(state, device, id);
  if (Object.keys(eff).length > MAX_FIELDS) return false;
  if (!device.schema) return true;
  for (const k of Object.keys(state.devices[id] ?? {})) if (!Object.hasOwn(device.schema, k)) return false;
  for (const [k, f] of Object.entries(device.schema)) {
    const v = eff[k];
    if (v === undefined) {
      if (f.required) return false;
    } else if (fieldProblem(f, v)) return false;
  }
  return true;
}

/** A layer after a PATCH (null unsets) or a PUT (replace). */
export function applyEdit(layer: Values, patch: Readonly<Record<string, Value | null>>, replace: boolean): Values {
  const out: Values = replace ? {} : { ...layer };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}
