/**
 * `key=value` arguments. With a known schema field the text becomes that field's type; otherwise
 * true/false become booleans, numbers become numbers, and anything else stays text. `key:=<json>`
 * gives the JSON value as it is (e.g. `serial:='"0042"'` for a text that looks like a number).
 */
import type { FieldDef } from '../hub/domain/index.ts';
import { CliError, ExitCode } from './exit.ts';

export type CliValue = string | number | boolean;

function infer(text: string): CliValue {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text.trim() !== '' && /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  return text;
}

function typed(key: string, text: string, field: FieldDef | undefined): CliValue {
  if (!field) return infer(text);
  switch (field.type) {
    case 'string':
    case 'enum':
      return text;
    case 'boolean':
      if (text === 'true' || text === 'false') return text === 'true';
      throw new CliError(`${key}: expected true or false, got ${JSON.stringify(text)}`, ExitCode.Invalid);
    case 'integer':
    case 'number': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw new CliError(`${key}: expected a ${field.type}, got ${JSON.stringify(text)}`, ExitCode.Invalid);
      return n;
    }
  }
}

export function parseAssignments(args: readonly string[], fields: ReadonlyMap<string, FieldDef> = new Map()): Record<string, CliValue> {
  const out: Record<string, CliValue> = {};
  for (const arg of args) {
    const json = /^([^=:]+):=(.*)$/s.exec(arg);
    if (json) {
      const [, key = '', text = ''] = json;
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        throw new CliError(`${key}: ${JSON.stringify(text)} is not JSON`, ExitCode.Usage);
      }
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw new CliError(`${key}: a value must be a string, number or boolean`, ExitCode.Usage);
      }
      out[key] = v;
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new CliError(`expected key=value, got ${JSON.stringify(arg)}`, ExitCode.Usage);
    const key = arg.slice(0, eq);
    out[key] = typed(key, arg.slice(eq + 1), fields.get(key));
  }
  return out;
}

/** `k=v` labels, or `k-` to remove one. */
export function parseLabels(args: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const arg of args) {
    if (arg.endsWith('-') && !arg.includes('=')) {
      out[arg.slice(0, -1)] = null;
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new CliError(`expected key=value or key- for a label, got ${JSON.stringify(arg)}`, ExitCode.Usage);
    out[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  return out;
}
