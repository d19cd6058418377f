/** `henge schema apply|list|show` */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { commandEnv } from '../context.ts';
import { CliError, ExitCode } from '../exit.ts';
import { formatTime, formatValue, printJson, printTable } from '../output.ts';

interface SchemaSummary {
  name: string;
  version: number;
  description: string | null;
  fields: number;
  publishedAt: number;
  created?: boolean;
  document?: { properties: Record<string, Record<string, unknown>>; required?: string[] };
}

async function readDocument(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.Usage);
  }
  const ext = extname(file).toLowerCase();
  let doc: unknown;
  try {
    doc = ext === '.yaml' || ext === '.yml' ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not valid ${ext === '.json' ? 'JSON' : ext.slice(1).toUpperCase() || 'JSON'}: ${(err as Error).message}`, ExitCode.Invalid);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new CliError(`${file} must hold a JSON Schema object`, ExitCode.Invalid);
  return doc as Record<string, unknown>;
}

export function registerSchema(program: Command): void {
  const schema = program.command('schema').description('publish and inspect config schemas (JSON Schema, in JSON or YAML files)');

  schema
    .command('apply <file>')
    .description('publish a schema file as a new version; refused, with every conflict, if it would invalidate a device')
    .option('--name <name>', "schema name (default: the document's title, else the file name)")
    .action(async (file: string, o: { name?: string }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const doc = await readDocument(file);
      const name = o.name ?? (typeof doc['title'] === 'string' ? doc['title'] : basename(file, extname(file)));
      const r = await env.client.request<SchemaSummary & { seq: number | null }>('PUT', `/schemas/${encodeURIComponent(name)}`, doc);
      if (env.json) printJson(r);
      else process.stdout.write(r.created ? `published schema ${r.name} v${r.version} (${r.fields} fields)\n` : `schema ${r.name} v${r.version} is unchanged\n`);
    });

  schema
    .command('list')
    .alias('ls')
    .description('list schemas (latest versions)')
    .action(async (_o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ schemas: SchemaSummary[] }>('GET', '/schemas');
      if (env.json) return printJson(r.schemas);
      printTable(['NAME', 'VERSION', 'FIELDS', 'PUBLISHED', 'DESCRIPTION'], r.schemas.map((s) => [s.name, String(s.version), String(s.fields), formatTime(s.publishedAt), s.description ?? '']), 'no schemas');
    });

  schema
    .command('show <name>')
    .description('show a schema (latest, or --version N)')
    .option('--version <n>', 'a specific version')
    .action(async (name: string, o: { version?: string }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const q = o.version !== undefined ? `?version=${encodeURIComponent(o.version)}` : '';
      const r = await env.client.request<SchemaSummary>('GET', `/schemas/${encodeURIComponent(name)}${q}`);
      if (env.json) return printJson(r.document);
      process.stdout.write(`schema ${r.name} v${r.version}${r.description ? `: ${r.description}` : ''}\n`);
      const required = new Set(r.document?.required ?? []);
      printTable(
        ['FIELD', 'TYPE', 'DEFAULT', 'RULES'],
        Object.entries(r.document?.properties ?? {}).map(([k, p]) => {
          const rules = ['minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'enum']
            .filter((rule) => p[rule] !== undefined)
            .map((rule) => `${rule}=${formatValue(p[rule])}`);
          if (required.has(k)) rules.unshift('required');
          return [k, p['enum'] ? 'enum' : String(p['type']), p['default'] === undefined ? '-' : formatValue(p['default']), rules.join(' ')];
        }),
        'no fields',
      );
    });
}
