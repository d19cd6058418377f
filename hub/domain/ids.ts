/** Naming rules for devices, groups, schemas, labels and config keys (DESIGN.md, "Data model"). */
import { DEVICE_ID_PATTERN } from '../../protocol/paths.ts';
import { CONFIG_KEY_PATTERN, MAX_TEXT_BYTES } from '../../protocol/snapshot.ts';
import { InvalidIdError, ValidationError } from '../errors.ts';

/** Device, group and schema ids: lowercase, digits and dashes, 1–63 characters, not starting with a dash. */
export const ID_PATTERN = DEVICE_ID_PATTERN;
/** Label keys: like ids, plus `.`, `_` and `/` after the first character (e.g. `site.floor`, `hw/rev`). */
export const LABEL_KEY_PATTERN = /^[a-z0-9][a-z0-9._/-]{0,62}$/;
/** Label values: up to 63 of letters, digits, `.`, `_`, `-`; may be empty. */
export const LABEL_VALUE_PATTERN = /^[A-Za-z0-9._-]{0,63}$/;
/** Config keys: a letter or `_` first, then letters, digits, `_` and `-`; up to 64 characters (the wire's rule). */
export { CONFIG_KEY_PATTERN };

/** Names that JavaScript objects treat specially; refused as config keys so they can never be lost. */
export const RESERVED_CONFIG_KEYS: ReadonlySet<string> = new Set(['__proto__']);

export function isConfigKey(k: string): boolean {
  return CONFIG_KEY_PATTERN.test(k) && !RESERVED_CONFIG_KEYS.has(k);
}

export type IdKind = 'device' | 'group' | 'schema' | 'token';

export function checkId(kind: IdKind, id: string): string {
  if (!ID_PATTERN.test(id)) {
    throw new InvalidIdError(`invalid ${kind} id ${JSON.stringify(id)}: use 1-63 of a-z, 0-9 and '-', not starting with '-'`, {
      violations: [{ field: 'id', rule: 'pattern', message: `must match ${ID_PATTERN.source}` }],
      id,
    });
  }
  return id;
}

export function checkLabels(labels: Readonly<Record<string, string | null>>, field = 'labels'): void {
  const violations = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY_PATTERN.test(k)) {
      violations.push({ field: `${field}.${k}`, rule: 'pattern', message: `label key must match ${LABEL_KEY_PATTERN.source}` });
    }
    if (v !== null && !LABEL_VALUE_PATTERN.test(v)) {
      violations.push({ field: `${field}.${k}`, rule: 'pattern', message: `label value must match ${LABEL_VALUE_PATTERN.source}` });
    }
  }
  if (violations.length > 0) throw new ValidationError(`invalid labels: ${violations.map((v) => v.field).join(', ')}`, { violations });
}

export function checkConfigKeys(keys: Iterable<string>, field = 'values'): void {
  const violations = [];
  for (const k of keys) {
    if (RESERVED_CONFIG_KEYS.has(k)) {
      violations.push({ field: `${field}.${k}`, rule: 'reserved', message: `${k} is reserved and cannot be a config key` });
    } else if (!CONFIG_KEY_PATTERN.test(k)) {
      violations.push({ field: `${field}.${k}`, rule: 'pattern', message: `config key must match ${CONFIG_KEY_PATTERN.source}` });
    }
  }
  if (violations.length > 0) throw new ValidationError(`invalid config keys: ${violations.map((v) => v.field).join(', ')}`, { violations });
}

/** With the `u` flag a surrogate pair is one code point, so this matches only a lone surrogate. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why a text cannot be a config value on the wire (a lone surrogate, over MAX_TEXT_BYTES of UTF-8), or undefined. */
export function textProblem(v: string): { rule: 'utf8' | 'maxBytes'; message: string } | undefined {
  if (LONE_SURROGATE.test(v)) return { rule: 'utf8', message: 'holds a lone surrogate (text must be valid Unicode)' };
  const bytes = Buffer.byteLength(v, 'utf8');
  if (bytes > MAX_TEXT_BYTES) return { rule: 'maxBytes', message: `is ${bytes} bytes of UTF-8; at most ${MAX_TEXT_BYTES}` };
  return undefined;
}

/**
 * Checks the keys (checkConfigKeys) and the values of a set/patch: numbers must be finite (JSON's 1e400 parses to Infinity, which the
 * log could not store) and -0 becomes 0 (JSON views would store it as 0 and change the hash on restart);
 * text must have a UTF-8 form (JSON can carry a lone surrogate, which would reach devices as U+FFFD) of at
 * most MAX_TEXT_BYTES, the wire's limit (the API's maxLength counts characters, up to 4 bytes each).
 */
export function normalizeValues<V extends string | number | boolean | null>(values: Readonly<Record<string, V>>, field = 'values'): Record<string, V> {
  // The keys first, on the object as given: copied below, `__proto__` would set a prototype, not a key.
  checkConfigKeys(Object.keys(values), field);
  const out: Record<string, V> = {};
  const violations = [];
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'number' && !Number.isFinite(v)) {
      violations.push({ field: `${field}.${k}`, rule: 'type', message: `${k} must be a finite number` });
      continue;
    }
    const text = typeof v === 'string' ? textProblem(v) : undefined;
    if (text) {
      violations.push({ field: `${field}.${k}`, rule: text.rule, message: `${k} ${text.message}` });
      continue;
    }
    out[k] = (typeof v === 'number' && Object.is(v, -0) ? 0 : v) as V;
  }
  if (violations.length > 0) throw new ValidationError(`invalid values: ${violations.map((v) => v.message).join('; ')}`, { violations });
  return out;
}
