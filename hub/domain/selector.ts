/**
 * Label selectors for groups: comma-separated requirements, all of which must hold.
 *   `key=value`  `key!=value`  `key`  `!key`  `key in (a|b)`  `key notin (a|b)`
 * `*` (or the empty string) selects every device.
 */
import { InvalidSelectorError } from '../errors.ts';
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN } from './ids.ts';

export const SelectorOp = {
  Eq: '=',
  NotEq: '!=',
  Exists: 'exists',
  NotExists: '!exists',
  In: 'in',
  NotIn: 'notin',
} as const;
export type SelectorOp = (typeof SelectorOp)[keyof typeof SelectorOp];

export interface Requirement {
  readonly key: string;
  readonly op: SelectorOp;
  readonly values: readonly string[];
}

export interface Selector {
  /** The canonical text: requirements sorted, one spelling per meaning. */
  readonly text: string;
  readonly requirements: readonly Requirement[];
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const SET_RE = /^([^\s!=]+)\s+(in|notin)\s*\(([^)]*)\)$/;

function fail(text: string, why: string): never {
  throw new InvalidSelectorError(`invalid selector ${JSON.stringify(text)}: ${why}`, {
    violations: [{ field: 'selector', rule: 'syntax', message: why }],
  });
}

/** Splits on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms.map((t) => t.trim());
}

function parseTerm(text: string, term: string): Requirement {
  const checkKey = (k: string): string => {
    if (!LABEL_KEY_PATTERN.test(k)) fail(text, `label key ${JSON.stringify(k)} must match ${LABEL_KEY_PATTERN.source}`);
    return k;
  };
  const checkValue = (v: string): string => {
    if (!LABEL_VALUE_PATTERN.test(v)) fail(text, `label value ${JSON.stringify(v)} must match ${LABEL_VALUE_PATTERN.source}`);
    return v;
  };
  const set = SET_RE.exec(term);
  if (set) {
    const [, key = '', op, list = ''] = set;
    const values = [...new Set(list.split(/[|,]/).map((v) => v.trim()).filter((v) => v !== ''))].map(checkValue).sort(byCodeUnit);
    if (values.length === 0) fail(text, `${term}: the value list is empty`);
    // One spelling per meaning: `k in (v)` is `k=v`, `k notin (v)` is `k!=v`.
    if (values.length === 1) return { key: checkKey(key), op: op === 'in' ? SelectorOp.Eq : SelectorOp.NotEq, values };
    return { key: checkKey(key), op: op === 'in' ? SelectorOp.In : SelectorOp.NotIn, values };
  }
  const ne = term.indexOf('!=');
  if (ne > 0) return { key: checkKey(term.slice(0, ne).trim()), op: SelectorOp.NotEq, values: [checkValue(term.slice(ne + 2).trim())] };
  const eq = term.indexOf('=');
  if (eq > 0) {
    const value = term.slice(term[eq + 1] === '=' ? eq + 2 : eq + 1).trim();
    return { key: checkKey(term.slice(0, eq).trim()), op: SelectorOp.Eq, values: [checkValue(value)] };
  }
  if (term.startsWith('!')) return { key: checkKey(term.slice(1).trim()), op: SelectorOp.NotExists, values: [] };
  if (term === '' || term.includes('=')) fail(text, `empty or incomplete requirement ${JSON.stringify(term)}`);
  return { key: checkKey(term), op: SelectorOp.Exists, values: [] };
}

function requirementText(r: Requirement): string {
  switch (r.op) {
    case SelectorOp.Eq:
      return `${r.key}=${r.values[0] ?? ''}`;
    case SelectorOp.NotEq:
      return `${r.key}!=${r.values[0] ?? ''}`;
    case SelectorOp.Exists:
      return r.key;
    case SelectorOp.NotExists:
      return `!${r.key}`;
    case SelectorOp.In:
      return `${r.key} in (${r.values.join('|')})`;
    case SelectorOp.NotIn:
      return `${r.key} notin (${r.values.join('|')})`;
  }
}

export function parseSelector(text: string): Selector {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === '*') return { text: '*', requirements: [] };
  if (trimmed.length > 1024) fail(text, 'longer than 1024 characters');
  const requirements = splitTerms(trimmed).map((t) => parseTerm(text, t));
  // Code-unit order, not localeCompare: the canonical text must not depend on the ICU build.
  requirements.sort((a, b) => byCodeUnit(requirementText(a), requirementText(b)));
  const canonical = [...new Set(requirements.map(requirementText))];
  return { text: canonical.join(','), requirements };
}

export function matches(selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  for (const r of selector.requirements) {
    const v = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
    switch (r.op) {
      case SelectorOp.Eq:
        if (v !== r.values[0]) return false;
        break;
      case SelectorOp.NotEq:
        if (v === r.values[0]) return false;
        break;
      case SelectorOp.Exists:
        if (v === undefined) return false;
        break;
      case SelectorOp.NotExists:
        if (v !== undefined) return false;
        break;
      case SelectorOp.In:
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case SelectorOp.NotIn:
        if (v !== undefined && r.values.includes(v)) return false;
        break;
    }
  }
  return true;
}
