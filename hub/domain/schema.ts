/**
 * Config schemas: named, versioned lists of typed fields. JSON Schema is the exchange form; only the
 * keywords below are accepted, so that every rule the hub enforces is one the firmware can enforce too.
 */
import type { ConfigValue, ConfigValues } from '../../protocol/snapshot.ts';
import { InvalidSchemaError } from '../errors.ts';
import type { Violation } from '../errors.ts';
import { compareTextKeys } from '../../protocol/cbor.ts';
import { CONFIG_KEY_PATTERN, isConfigKey, textProblem } from './ids.ts';

export const FieldType = {
  String: 'string',
  Integer: 'integer',
  Number: 'number',
  Boolean: 'boolean',
  Enum: 'enum',
} as const;
export type FieldType = (typeof FieldType)[keyof typeof FieldType];

export interface FieldDef {
  readonly name: string;
  readonly type: FieldType;
  readonly description?: string;
  readonly required: boolean;
  readonly default?: ConfigValue;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly enum?: readonly string[];
}

export interface SchemaRecord {
  readonly name: string;
  readonly version: number;
  readonly description?: string;
  readonly fields: readonly FieldDef[];
  readonly publishedAt: number;
}

/** A JSON Schema document as exchanged with users. */
export type JsonSchemaDocument = Record<string, unknown>;

const TOP_KEYWORDS = new Set(['$schema', '$id', 'title', 'description', 'type', 'properties', 'required', 'additionalProperties', 'x-henge-version']);
const FIELD_KEYWORDS = new Set(['type', 'enum', 'description', 'title', 'default', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern']);
const MAX_FIELDS = 256;

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses a JSON Schema document into field definitions; every problem is reported, not just the first. */
export function parseSchemaDocument(doc: unknown): { description?: string; fields: FieldDef[] } {
  const violations: Violation[] = [];
  const bad = (field: string, rule: string, message: string): void => {
    violations.push({ field, rule, message });
  };
  if (!isPlainObject(doc)) {
    throw new InvalidSchemaError('a schema must be a JSON object', { violations: [{ field: '', rule: 'type', message: 'expected an object' }] });
  }
  for (const k of Object.keys(doc)) if (!TOP_KEYWORDS.has(k)) bad(k, 'unsupported-keyword', `keyword ${k} is not supported`);
  if (doc['type'] !== undefined && doc['type'] !== 'object') bad('type', 'const', 'type must be "object"');
  if (doc['additionalProperties'] !== undefined && doc['additionalProperties'] !== false) {
    bad('additionalProperties', 'const', 'additionalProperties must be false (unknown keys are always refused)');
  }
  const description = doc['description'];
  if (description !== undefined && typeof description !== 'string') bad('description', 'type', 'description must be a string');
  const props = doc['properties'] ?? {};
  if (!isPlainObject(props)) {
    bad('properties', 'type', 'properties must be an object');
    throw new InvalidSchemaError('invalid schema', { violations });
  }
  const required = doc['required'] ?? [];
  const requiredSet = new Set<string>();
  if (!Array.isArray(required) || !required.every((r): r is string => typeof r === 'string')) {
    bad('required', 'type', 'required must be an array of field names');
  } else {
    for (const r of required) {
      if (!Object.hasOwn(props, r)) bad(`required.${r}`, 'unknown', `required field ${r} is not in properties`);
      requiredSet.add(r);
    }
  }
  const entries = Object.entries(props);
  if (entries.length > MAX_FIELDS) bad('properties', 'maxProperties', `at most ${MAX_FIELDS} fields`);
  const fields: FieldDef[] = [];
  for (const [name, spec] of entries) {
    const at = `properties.${name}`;
    if (!isConfigKey(name)) bad(at, 'pattern', `field name must match ${CONFIG_KEY_PATTERN.source} and not be __proto__`);
    if (!isPlainObject(spec)) {
      bad(at, 'type', 'a field must be an object');
      continue;
    }
    const field = parseField(name, spec, requiredSet.has(name), at, bad);
    if (field) fields.push(field);
  }
  if (violations.length > 0) {
    throw new InvalidSchemaError(`invalid schema: ${violations.map((v) => `${v.field} (${v.rule})`).join(', ')}`, { violations });
  }
  fields.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return typeof description === 'string' ? { description, fields } : { fields };
}

type Bad = (field: string, rule: string, message: string) => void;

function parseField(name: string, spec: Record<string, unknown>, required: boolean, at: string, bad: Bad): FieldDef | undefined {
  for (const k of Object.keys(spec)) if (!FIELD_KEYWORDS.has(k)) bad(`${at}.${k}`, 'unsupported-keyword', `keyword ${k} is not supported`);
  let type: FieldType;
  const enumValues = spec['enum'];
  if (enumValues !== undefined) {
    if (!Array.isArray(enumValues) || enumValues.length === 0 || !enumValues.every((e): e is string => typeof e === 'string')) {
      bad(`${at}.enum`, 'type', 'enum must be a non-empty array of strings');
      return undefined;
    }
    if (spec['type'] !== undefined && spec['type'] !== 'string') bad(`${at}.type`, 'const', 'an enum field has type "string"');
    // Each one may become a value on the wire.
    for (const e of enumValues) {
      const p = textProblem(e);
      if (p) bad(`${at}.enum`, p.rule, `enum value ${JSON.stringify(e.slice(0, 20))} ${p.message}`);
    }
    type = FieldType.Enum;
  } else {
    const t = spec['type'];
    if (t !== 'string' && t !== 'integer' && t !== 'number' && t !== 'boolean') {
      bad(`${at}.type`, 'enum', 'type must be one of string, integer, number, boolean (or give enum)');
      return undefined;
    }
    type = t;
  }
  const num = (k: 'minimum' | 'maximum'): number | undefined => {
    const v = spec[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${at}.${k}`, 'type', `${k} must be a number`);
    else if (type !== FieldType.Integer && type !== FieldType.Number) bad(`${at}.${k}`, 'applies-to', `${k} applies to integer and number fields`);
    else return v;
    return undefined;
  };
  const len = (k: 'minLength' | 'maxLength'): number | undefined => {
    const v = spec[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${at}.${k}`, 'type', `${k} must be a non-negative integer`);
    else if (type !== FieldType.String) bad(`${at}.${k}`, 'applies-to', `${k} applies to string fields`);
    else return v;
    return undefined;
  };
  const minimum = num('minimum');
  const maximum = num('maximum');
  const minLength = len('minLength');
  const maxLength = len('maxLength');
  if (minimum !== undefined && maximum !== undefined && minimum > maximum) bad(`${at}.minimum`, 'range', 'minimum is greater than maximum');
  if (minLength !== undefined && maxLength !== undefined && minLength > maxLength) bad(`${at}.minLength`, 'range', 'minLength is greater than maxLength');
  let pattern: string | undefined;
  if (spec['pattern'] !== undefined) {
    const p = spec['pattern'];
    if (typeof p !== 'string') bad(`${at}.pattern`, 'type', 'pattern must be a string');
    else if (type !== FieldType.String) bad(`${at}.pattern`, 'applies-to', 'pattern applies to string fields');
    else {
      try {
        new RegExp(p, 'u');
        pattern = p;
      } catch {
        bad(`${at}.pattern`, 'syntax', `pattern is not a valid regular expression`);
      }
    }
  }
  const description = spec['description'];
  if (description !== undefined && typeof description !== 'string') bad(`${at}.description`, 'type', 'description must be a string');
  const field: FieldDef = {
    name,
    type,
    required,
    ...(typeof description === 'string' ? { description } : {}),
    ...(minimum !== undefined ? { minimum } : {}),
    ...(maximum !== undefined ? { maximum } : {}),
    ...(minLength !== undefined ? { minLength } : {}),
    ...(maxLength !== undefined ? { maxLength } : {}),
    ...(pattern !== undefined ? { pattern } : {}),
    ...(type === FieldType.Enum ? { enum: [...(enumValues as string[])] } : {}),
  };
  if (spec['default'] !== undefined) {
    const d = spec['default'];
    const problem = checkValue(field, d) ?? (typeof d === 'string' ? textProblem(d) : undefined);
    if (problem) bad(`${at}.default`, problem.rule, `default ${problem.message}`);
    else return { ...field, default: Object.is(d, -0) ? 0 : (d as ConfigValue) };
  }
  return field;
}

const patternCache = new Map<string, RegExp>();

/** Checks one value against one field; returns the broken rule, or undefined when the value is valid. */
export function checkValue(field: FieldDef, v: unknown): { rule: string; message: string } | undefined {
  switch (field.type) {
    case FieldType.Boolean:
      return typeof v === 'boolean' ? undefined : { rule: 'type', message: `must be a boolean, got ${describe(v)}` };
    case FieldType.Enum:
      if (typeof v !== 'string' || !(field.enum ?? []).includes(v)) {
        return { rule: 'enum', message: `must be one of ${(field.enum ?? []).join(', ')}, got ${describe(v)}` };
      }
      return undefined;
    case FieldType.Integer:
    case FieldType.Number: {
      if (typeof v !== 'number' || !Number.isFinite(v)) return { rule: 'type', message: `must be a ${field.type}, got ${describe(v)}` };
      if (field.type === FieldType.Integer && !Number.isSafeInteger(v)) return { rule: 'type', message: `must be an integer, got ${v}` };
      if (field.minimum !== undefined && v < field.minimum) return { rule: 'minimum', message: `must be >= ${field.minimum}, got ${v}` };
      if (field.maximum !== undefined && v > field.maximum) return { rule: 'maximum', message: `must be <= ${field.maximum}, got ${v}` };
      return undefined;
    }
    case FieldType.String: {
      if (typeof v !== 'string') return { rule: 'type', message: `must be a string, got ${describe(v)}` };
      const length = [...v].length;
      if (field.minLength !== undefined && length < field.minLength) return { rule: 'minLength', message: `must have at least ${field.minLength} characters, got ${length}` };
      if (field.maxLength !== undefined && length > field.maxLength) return { rule: 'maxLength', message: `must have at most ${field.maxLength} characters, got ${length}` };
      if (field.pattern !== undefined) {
        let re = patternCache.get(field.pattern);
        if (!re) {
          re = new RegExp(field.pattern, 'u');
          patternCache.set(field.pattern, re);
        }
        if (!re.test(v)) return { rule: 'pattern', message: `must match ${field.pattern}` };
      }
      return undefined;
    }
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null) return 'null';
  return typeof v === 'object' ? typeof v : `${typeof v} ${String(v)}`;
}

/** Every violation of an effective config against its schema, including missing required fields. */
export function validateConfig(schema: SchemaRecord, values: ConfigValues, device?: string): Violation[] {
  const out: Violation[] = [];
  const known = new Set<string>();
  for (const f of schema.fields) {
    known.add(f.name);
    const v = Object.hasOwn(values, f.name) ? values[f.name] : undefined;
    if (v === undefined) {
      if (f.required) out.push({ field: `values.${f.name}`, rule: 'required', message: `${f.name} is required and has no value`, ...(device ? { device } : {}) });
      continue;
    }
    const p = checkValue(f, v);
    if (p) out.push({ field: `values.${f.name}`, rule: p.rule, message: `${f.name} ${p.message}`, ...(device ? { device } : {}) });
  }
  for (const k of Object.keys(values)) {
    if (!known.has(k)) {
      out.push({ field: `values.${k}`, rule: 'unknown', message: `${k} is not a field of schema ${schema.name}`, ...(device ? { device } : {}) });
    }
  }
  return out;
}

/** The exchange form of a published schema. */
export function toJsonSchema(schema: SchemaRecord): JsonSchemaDocument {
  const properties: Record<string, unknown> = {};
  for (const f of schema.fields) {
    const p: Record<string, unknown> = f.type === FieldType.Enum ? { type: 'string', enum: f.enum } : { type: f.type };
    for (const k of ['description', 'default', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern'] as const) {
      if (f[k] !== undefined) p[k] = f[k];
    }
    properties[f.name] = p;
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: schema.name,
    ...(schema.description !== undefined ? { description: schema.description } : {}),
    type: 'object',
    properties,
    required: schema.fields.filter((f) => f.required).map((f) => f.name),
    additionalProperties: false,
    'x-henge-version': schema.version,
  };
}

/** JSON with object keys sorted, so that equal content compares equal whatever the key order. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

/** True when two field lists mean the same schema (publishing it again makes no new version). */
export function sameFields(a: SchemaRecord, fields: readonly FieldDef[], description: string | undefined): boolean {
  return canonicalJson(a.fields) === canonicalJson(fields) && a.description === description;
}

const cborOrder = new WeakMap<SchemaRecord, readonly FieldDef[]>();

/** The schema's fields in the order a snapshot's values map holds them, so merging can skip a sort. */
export function fieldsInCborOrder(schema: SchemaRecord): readonly FieldDef[] {
  let fields = cborOrder.get(schema);
  if (!fields) {
    fields = [...schema.fields].sort((a, b) => compareTextKeys(a.name, b.name));
    cborOrder.set(schema, fields);
  }
  return fields;
}
