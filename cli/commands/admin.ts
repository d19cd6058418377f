/** `henge history`, `henge status`, `henge token`, `henge group` */
import type { Command } from 'commander';
import type { GroupRecord, HengeEvent } from '../../hub/domain/index.ts';
import { commandEnv } from '../context.ts';
import { CliError, ExitCode } from '../exit.ts';
import { formatTime, formatValue, printJson, printTable } from '../output.ts';

interface FleetRow {
  device: string;
  sync: string;
  desiredVersion: number;
  appliedVersion: number | null;
  online: boolean;
  endpoint: string | null;
  lastAck: { version: number; status: string; message?: string; latencyMs?: number } | null;
  duplicate: unknown;
}

function describeEvent(e: HengeEvent): string {
  const d = e.data as Record<string, unknown>;
  const target = d['device'] !== undefined ? `device ${String(d['device'])}` : d['group'] !== undefined ? `group ${String(d['group'])}` : '';
  const changes = d['changes'] as Array<{ key: string; from?: unknown; to?: unknown }> | undefined;
  if (changes) {
    const text = changes.map((c) => `${c.key}: ${c.from === undefined ? '(unset)' : formatValue(c.from)} -> ${c.to === undefined ? '(unset)' : formatValue(c.to)}`);
    return `${target} ${text.join('; ')}`;
  }
  if (e.type === 'schema.published') return `${String(d['schema'])} v${String(d['version'])}`;
  if (e.type === 'token.created' || e.type === 'token.revoked') return `token ${String(d['token'])}${d['name'] !== undefined ? ` (${String(d['name'])})` : ''}`;
  if (e.type === 'ack.received') return `${target} v${String(d['version'])} ${String(d['status'])}${d['latencyMs'] !== undefined ? ` after ${String(d['latencyMs'])} ms` : ''}`;
  if (e.type === 'device.duplicate') return `${target} endpoints ${(d['endpoints'] as string[]).join(' / ')}`;
  if (e.type === 'device.admitted') return `${target} ${String(d['decision'])}${d['rule'] !== undefined ? ` by the rule of provisioning token ${String(d['rule'])}` : ''}`;
  if (e.type === 'device.key_issued') return `${target} key ${String(d['keyId'])}${d['previous'] !== undefined ? ` (key ${String(d['previous'])} valid until ${new Date(Number(d['previousUntil'])).toISOString()})` : ''}`;
  if (e.type === 'device.key_retired') return `${target} key ${String(d['keyId'])}: ${String(d['reason'])}`;
  if (e.type === 'device.added' && d['admission'] === 'pending') return `${target} pending (enrolled itself with provisioning token ${String(d['provisioning'])})`;
  if (e.type === 'provisioning.created' || e.type === 'provisioning.revoked') return `provisioning token ${String(d['provisioning'])}${d['name'] !== undefined ? ` (${String(d['name'])})` : ''}`;
  if (e.type === 'group.defined') return `${target} selector ${String(d['selector'])} priority ${String(d['priority'])}`;
  return target;
}

export function registerAdmin(program: Command): void {
  program
    .command('history')
    .description('changes from the event log, newest first')
    .option('-d, --device <id>', 'only events about this device')
    .option('-k, --key <key>', 'only value changes of this key')
    .option('-t, --type <type>', 'only this event type, or a prefix such as "device"')
    .option('--since <time>', 'ISO 8601 time or epoch ms')
    .option('--until <time>', 'ISO 8601 time or epoch ms')
    .option('-n, --limit <n>', 'at most this many events', '50')
    .option('--before <seq>', 'start before this sequence number (the "next" of a previous page)')
    .action(async (o: Record<string, string | undefined>, cmd: Command) => {
      const env = await commandEnv(cmd);
      const q = new URLSearchParams({ order: 'desc' });
      for (const k of ['device', 'key', 'type', 'since', 'until', 'limit', 'before'] as const) {
        const v = o[k];
        if (v !== undefined) q.set(k, v);
      }
      const r = await env.client.request<{ events: HengeEvent[]; next: number | null }>('GET', `/events?${q.toString()}`);
      if (env.json) return printJson(r);
      printTable(
        ['SEQ', 'TIME', 'ACTOR', 'TYPE', 'CHANGE', 'REASON'],
        r.events.map((e) => [String(e.seq), formatTime(e.time), e.actor, e.type, describeEvent(e), e.reason ?? '']),
        'no matching events',
      );
      if (r.next !== null) process.stdout.write(`more: --before ${r.next}\n`);
    });

  program
    .command('status')
    .description('hub summary and the fleet table: converged / pending / failed / offline')
    .action(async (_o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const [status, fleet] = await Promise.all([
        env.client.request<Record<string, unknown> & { store: { healthy: boolean; problem: string | null } }>('GET', '/status'),
        env.client.request<{ summary: Record<string, number>; devices: FleetRow[] }>('GET', '/fleet'),
      ]);
      if (env.json) return printJson({ ...status, fleet });
      const f = fleet.summary;
      process.stdout.write(
        `hub ${String(status['hubId'])}: ${String(status['devices'])} devices, ${String(status['groups'])} groups, ${String(status['schemas'])} schemas, ` +
          `${String(status['logLength'])} events; store ${status.store.healthy ? 'healthy' : `FAILING: ${status.store.problem ?? ''}`}\n` +
          `fleet: ${f['converged'] ?? 0} converged, ${f['pending'] ?? 0} pending, ${f['failed'] ?? 0} failed; ${f['online'] ?? 0} online, ${f['offline'] ?? 0} offline\n`,
      );
      if (fleet.devices.length === 0) return;
      printTable(
        ['DEVICE', 'SYNC', 'DESIRED', 'APPLIED', 'ONLINE', 'LAST ACK', 'LATENCY', 'ENDPOINT'],
        fleet.devices.map((d) => [
          d.device + (d.duplicate ? ' (DUPLICATE)' : ''),
          d.sync,
          String(d.desiredVersion),
          d.appliedVersion === null ? '-' : String(d.appliedVersion),
          d.online ? 'yes' : 'no',
          d.lastAck ? `${d.lastAck.status} v${d.lastAck.version}${d.lastAck.message ? `: ${d.lastAck.message}` : ''}` : '-',
          d.lastAck?.latencyMs !== undefined ? `${d.lastAck.latencyMs} ms` : '-',
          d.endpoint ?? '-',
        ]),
      );
    });

  const token = program.command('token').description('API tokens: create, list, revoke');
  token
    .command('create <name>')
    .description('create a token; it is printed once and never again')
    .option('--role <role>', 'admin (everything), operator (read, and set values) or viewer (read only)', 'admin')
    .option('--days <n>', 'days until it expires', '90')
    .action(async (name: string, o: { role: string; days: string }, cmd: Command) => {
      const env = await commandEnv(cmd);
      if (!['admin', 'operator', 'viewer'].includes(o.role)) throw new CliError(`--role must be admin, operator or viewer, got ${o.role}`, ExitCode.Usage);
      const days = Number(o.days);
      if (!Number.isInteger(days) || days < 1 || days > 3650) throw new CliError(`--days must be 1..3650, got ${o.days}`, ExitCode.Usage);
      const r = await env.client.request<{ id: string; token: string; role: string; expiresAt: number }>('POST', '/tokens', { name, role: o.role, days });
      if (env.json) return printJson(r);
      process.stdout.write(`${r.token}\n`);
      process.stderr.write(`token ${r.id} (${name}, ${r.role}) created, expires ${formatTime(r.expiresAt)}; store it now, it is not shown again\n`);
    });
  token
    .command('list')
    .alias('ls')
    .description('list tokens (ids and names, never secrets)')
    .action(async (_o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ tokens: Array<{ id: string; name: string; role: string; createdAt: number; expiresAt: number | null; revokedAt: number | null }> }>('GET', '/tokens');
      if (env.json) return printJson(r.tokens);
      printTable(
        ['ID', 'NAME', 'ROLE', 'CREATED', 'EXPIRES', 'REVOKED'],
        r.tokens.map((t) => [t.id, t.name, t.role, formatTime(t.createdAt), formatTime(t.expiresAt), formatTime(t.revokedAt)]),
      );
    });
  token
    .command('revoke <id>')
    .description('revoke a token at once')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ seq: number }>('DELETE', `/tokens/${encodeURIComponent(id)}`);
      if (env.json) return printJson(r);
      process.stdout.write(`revoked token ${id}\n`);
    });

  const group = program.command('group').description('groups: label selectors with a priority and values');
  group
    .command('list')
    .alias('ls')
    .description('list groups, highest priority first')
    .action(async (_o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ groups: Array<GroupRecord & { members: number }> }>('GET', '/groups');
      if (env.json) return printJson(r.groups);
      printTable(
        ['NAME', 'PRIORITY', 'SELECTOR', 'DEVICES', 'VALUES'],
        r.groups.map((g) => [g.name, String(g.priority), g.selector, String(g.members), Object.entries(g.values).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ')]),
        'no groups',
      );
    });
  group
    .command('define <name> <selector>')
    .description('create a group or change its selector')
    .option('-p, --priority <n>', 'higher wins over lower', '0')
    .action(async (name: string, selector: string, o: { priority: string }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ group: GroupRecord & { members: string[] }; warnings: Array<{ message: string }> }>('PUT', `/groups/${encodeURIComponent(name)}`, {
        selector,
        priority: Number(o.priority),
      });
      for (const w of r.warnings) process.stderr.write(`warning: ${w.message}\n`);
      if (env.json) return printJson(r);
      process.stdout.write(`group ${r.group.name}: ${r.group.selector} (priority ${r.group.priority}), ${r.group.members.length} device(s)\n`);
    });
  group
    .command('rm <name>')
    .description('remove a group and its values')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ seq: number }>('DELETE', `/groups/${encodeURIComponent(name)}`);
      if (env.json) return printJson(r);
      process.stdout.write(`removed group ${name}\n`);
    });
}
