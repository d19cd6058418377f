/**
 * How a snapshot's values are written to `--out`: JSON, YAML, or env (`KEY='value'` lines for a shell or a
 * systemd EnvironmentFile). Rendering is deterministic (keys sorted), so equal values give equal files.
 */
import { extname } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { ConfigValue, ConfigValues } from '../protocol/snapshot.ts';
import { FormatError } from './errors.ts';

export const OUTPUT_FORMATS = ['json', 'yaml', 'env'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function isOutputFormat(text: string): text is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(text);
}

/** The format a file name implies: .json, .yaml/.yml, .env; anything else is JSON. */
export function formatFromPath(path: string): OutputFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  if (ext === '.env') return 'env';
  // `.env` alone has no extension for extname(); a file named exactly ".env" is env too.
  if (ext === '' && /(^|[\\/])\.env$/.test(path)) return 'env';
  return 'json';
}

function sortedEntries(values: ConfigValues): Array<[string, ConfigValue]> {
  return Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A config key as an environment variable name: upper case, `-` becomes `_`. */
export function envName(key: string): string {
  return key.toUpperCase().replace(/-/g, '_');
}

/** `s` in single quotes for a POSIX shell: every character literal, `'` written as `'\''`. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function envValue(v: ConfigValue): string {
  return typeof v === 'string' ? v : String(v);
}

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

function renderEnv(values: ConfigValues): string {
  const byName = new Map<string, { key: string; value: ConfigValue }>();
  for (const [key, value] of Object.entries(values)) {
    const name = envName(key);
    if (!ENV_NAME.test(name)) throw new FormatError(`key ${key} is not usable as an environment variable name`);
    const other = byName.get(name);
    if (other) throw new FormatError(`keys ${other.key} and ${key} are both ${name} as environment variables`);
    if (typeof value === 'string' && value.includes('\0')) throw new FormatError(`value of ${key} holds a NUL character, which no environment variable can`);
    byName.set(name, { key, value });
  }
  const names = [...byName.keys()].sort();
  return names.map((n) => `${n}=${shellQuote(envValue(byName.get(n)?.value ?? ''))}\n`).join('');
}

/** The file content for `values`. Throws FormatError when the format cannot hold them. */
export function render(format: OutputFormat, values: ConfigValues): string {
  const ordered = Object.fromEntries(sortedEntries(values));
  switch (format) {
    case 'json':
      return `${JSON.stringify(ordered, null, 2)}\n`;
    case 'yaml':
      return Object.keys(ordered).length === 0 ? '{}\n' : stringifyYaml(ordered);
    case 'env':
      return renderEnv(values);
  }
}

/**
 * The values a file of this format holds, for formats that keep names and types (JSON, YAML); undefined
 * for env, which keeps neither (upper-cased names, text values): there the bytes themselves are compared.
 */
export function readBack(format: OutputFormat, text: string): Record<string, unknown> | undefined {
  if (format === 'env') return undefined;
  const parsed: unknown = format === 'json' ? JSON.parse(text) : parseYaml(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new FormatError(`the ${format} file does not hold a map`);
  return parsed as Record<string, unknown>;
}
