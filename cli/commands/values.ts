/** `henge set`, `henge unset`, `henge get` */
import type { Command } from 'commander';
import type { FieldDef, Provenance } from '../../hub/domain/index.ts';
import { parseSelector } from '../../hub/domain/selector.ts';
import { parseAssignments } from '../assignments.ts';
import type { HubClient } from '../client.ts';
import { commandEnv } from '../context.ts';
import { CliError, ExitCode } from '../exit.ts';
import { formatValue, printJson, printTable } from '../output.ts';

interface SchemaDoc {
  document: { properties: Record<string, { type: string; enum?: string[] }> };
}

/** The fields of a schema, so that `key=value` text gets the field's type. */
export async function schemaFields(client: HubClient, name: string): Promise<Map<string, FieldDef>> {
  const s = await client.request<SchemaDoc>('GET', `/schemas/${encodeURIComponent(name)}`);
  const out = new Map<string, FieldDef>();
  for (const [k, p] of Object.entries(s.document.properties)) {
    const type = (p.enum ? 'enum' : p.type) as FieldDef['type'];
    out.set(k, { name: k, type, required: false });
  }
  return out;
}

async function deviceFields(client: HubClient, device: string): Promise<Map<string, FieldDef>> {
  const c = await client.request<{ schema: { name: string } | null }>('GET', `/devices/${encodeURIComponent(device)}/config`);
  return c.schema ? schemaFields(client, c.schema.name) : new Map();
}

interface GroupFlags {
  group?: string;
  priority?: string;
}

/**
 * `--group` takes a group name, or a selector (anything with `=`, `!`, `(` or `*`). A selector names
 * the group whose selector it is, and creates one when none has it.
 */
async function resolveGroup(client: HubClient, flags: GroupFlags): Promise<string> {
  const spec = flags.group ?? '';
  const groups = (await client.request<{ groups: Array<{ name: string; selector: string }> }>('GET', '/groups')).groups;
  if (!/[=!(*,]/.test(spec)) {
    if (!groups.some((g) => g.name === spec)) throw new CliError(`group ${spec} does not exist; give a selector (e.g. --group site=a) to create one`, ExitCode.NotFound);
    return spec;
  }
  let selector: string;
  try {
    selector = parseSelector(spec).text;
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.Invalid);
  }
  const existing = groups.find((g) => g.selector === selector);
  if (existing) return existing.name;
  const name = groupNameFor(selector);
  const priority = flags.priority !== undefined ? Number(flags.priority) : 0;
  if (!Number.isInteger(priority)) throw new CliError(`--priority must be an integer, got ${flags.priority ?? ''}`, ExitCode.Usage);
  const r = await client.request<{ warnings: Array<{ message: string }> }>('PUT', `/groups/${name}`, { selector, priority });
  for (const w of r.warnings) process.stderr.write(`warning: ${w.message}\n`);
  process.stderr.write(`created group ${name} for selector ${selector} (priority ${priority})\n`);
  return name;
}

/** A readable group name from a canonical selector: `role=gw,site=a` -> `role-gw-site-a`. */
export function groupNameFor(selector: string): string {
  if (selector === '*') return 'all';
  const slug = selector
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (slug || 'group').slice(0, 63).replace(/-+$/, '');
}

function splitTarget(args: readonly string[], flags: GroupFlags): { device?: string; rest: string[] } {
  if (flags.group !== undefined) return { rest: [...args] };
  const [device, ...rest] = args;
  if (!device || device.includes('=')) throw new CliError('name a device first (or use --group <selector>)', ExitCode.Usage);
  return { device, rest };
}

function printChanges(r: { seq: number | null; changes: Array<{ key: string; from?: unknown; to?: unknown }>; warnings: Array<{ message: string }> }): void {
  for (const w of r.warnings) process.stderr.write(`warning: ${w.message}\n`);
  if (r.seq === null) {
    process.stdout.write('no change\n');
    return;
  }
  for (const c of r.changes) {
    process.stdout.write(`${c.key}: ${c.from === undefined ? '(unset)' : formatValue(c.from)} -> ${c.to === undefined ? '(unset)' : formatValue(c.to)}\n`);
  }
  process.stdout.write(`committed as log seq ${r.seq}\n`);
}

type ChangesReply = Parameters<typeof printChanges>[0];

/** `set` and `unset`: resolve the device or group layer, PATCH it with what `values` builds, print the changes. */
async function patchLayer(
  cmd: Command,
  args: readonly string[],
  flags: GroupFlags,
  emptyMessage: string,
  values: (client: HubClient, device: string | undefined, rest: string[]) => Promise<Record<string, unknown>>,
): Promise<void> {
  const env = await commandEnv(cmd);
  const { device, rest } = splitTarget(args, flags);
  if (rest.length === 0) throw new CliError(emptyMessage, ExitCode.Usage);
  const path = device !== undefined ? `/devices/${encodeURIComponent(device)}/values` : `/groups/${await resolveGroup(env.client, flags)}/values`;
  const r = await env.client.request<ChangesReply>('PATCH', path, { values: await values(env.client, device, rest) });
  if (env.json) printJson(r);
  else printChanges(r);
}

export function registerValues(program: Command): void {
  program
    .command('set [args...]')
    .description('set values on a device (henge set <device> k=v...) or a group (henge set --group <selector|name> k=v...); atomic: one bad value changes nothing')
    .option('-g, --group <selector|name>', 'set at the group layer; a selector creates its group if needed')
    .option('-p, --priority <n>', 'priority of a group created by --group (higher wins)')
    .action(async (args: string[], o: GroupFlags, cmd: Command) => {
      await patchLayer(cmd, args, o, 'give at least one key=value', async (client, device, rest) =>
        parseAssignments(rest, device !== undefined ? await deviceFields(client, device) : new Map<string, FieldDef>()),
      );
    });

  program
    .command('unset [args...]')
    .description('unset keys on a device (henge unset <device> key...) or a group (--group)')
    .option('-g, --group <selector|name>', 'unset at the group layer')
    .action(async (args: string[], o: GroupFlags, cmd: Command) => {
      await patchLayer(cmd, args, o, 'give at least one key', async (_client, _device, rest) => Object.fromEntries(rest.map((k) => [k, null])));
    });

  program
    .command('get <device>')
    .description("a device's effective config")
    .option('--provenance', 'show which layer (and group) set each key')
    .action(async (device: string, o: { provenance?: boolean }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const c = await env.client.request<{ version: number; hash: string; values: Record<string, unknown>; provenance: Record<string, Provenance> }>(
        'GET',
        `/devices/${encodeURIComponent(device)}/config`,
      );
      if (env.json) return printJson(o.provenance ? c : c.values);
      const keys = Object.keys(c.values).sort();
      if (o.provenance) {
        printTable(
          ['KEY', 'VALUE', 'LAYER'],
          keys.map((k) => {
            const p = c.provenance[k];
            return [k, formatValue(c.values[k]), p ? (p.group ? `group ${p.group}` : p.layer) : '-'];
          }),
          'no values',
        );
      } else {
        for (const k of keys) process.stdout.write(`${k}=${formatValue(c.values[k])}\n`);
      }
    });
}
