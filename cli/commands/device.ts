/** `henge device add|enroll|key|accept|reject|list|show|label|rm` */
import type { Command } from 'commander';
import type { DeviceRecord, FieldDef } from '../../hub/domain/index.ts';
import { parseAssignments, parseLabels } from '../assignments.ts';
import { renderUnicodeCompact } from 'uqr';
import { CliError, ExitCode } from '../exit.ts';
import { commandEnv } from '../context.ts';
import { formatLabels, formatTime, formatValue, printJson, printTable } from '../output.ts';
import { schemaFields } from './values.ts';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

interface Enrollment {
  readonly device: string;
  readonly enrollment: string;
  readonly token: string;
  readonly uri: string;
  readonly expiresAt: number;
}

function enrollLines(e: Enrollment, qr: boolean): string {
  return [
    `enrollment token for ${e.device} (one use, expires ${new Date(e.expiresAt).toISOString()}; shown once):`,
    `  ${e.token}`,
    `  on the device: henge agent enroll <token> [--hub <hub>]   (it fetches the device key over DTLS)`,
    ...(qr ? [`  or scan (${e.uri.length} characters: henge:enroll?hub=…&t=…; henge agent enroll takes it too):`, renderUnicodeCompact(e.uri, { border: 2 })] : []),
    '',
  ].join('\n');
}

/** The key banner: shown once, with what a device (or libcoap's client) needs. */
function keyLines(id: string, key: string, keyId: string | undefined): string {
  return [
    `DTLS key of ${id} (shown once; the hub keeps it encrypted and never shows it again)${keyId ? ` [key id ${keyId}]` : ''}:`,
    `  ${key}`,
    `  PSK identity: ${id}; the key's text is the PSK, e.g. coap-client-openssl -u ${id} -k <key> coaps://<hub>/d/${id}/c`,
    '',
  ].join('\n');
}

export function registerDevice(program: Command): void {
  const device = program.command('device').description('add, list, show, label and remove devices');

  device
    .command('add <id>')
    .description('add a device (id: 1-63 of a-z, 0-9 and -)')
    .option('--name <name>', 'display name (default: the id)')
    .option('-l, --label <key=value>', 'a label; repeat for more', collect, [])
    .option('-s, --schema <name>', 'bind the device to a published schema')
    .option('--set <key=value>', 'an initial device value; repeat for more', collect, [])
    .option('--enroll', 'also print a one-time enrollment token: `henge agent enroll <token>` on the device fetches its key')
    .option('--qr', 'with --enroll: also print the enrollment as a QR code in the terminal')
    .action(async (id: string, o: { name?: string; label: string[]; schema?: string; set: string[]; enroll?: boolean; qr?: boolean }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const fields = o.schema ? await schemaFields(env.client, o.schema) : new Map<string, FieldDef>();
      const labels = parseLabels(o.label) as Record<string, string>;
      const body = {
        id,
        ...(o.name ? { name: o.name } : {}),
        ...(o.label.length ? { labels } : {}),
        ...(o.schema ? { schema: o.schema } : {}),
        ...(o.set.length ? { values: parseAssignments(o.set, fields) } : {}),
      };
      const r = await env.client.request<{ device: DeviceRecord; seq: number; key?: string; keyId?: string }>('POST', '/devices', body);
      const enrollment = o.enroll ? await env.client.request<Enrollment>('POST', `/devices/${encodeURIComponent(id)}/enrollment`, {}) : undefined;
      if (env.json) printJson({ ...r, ...(enrollment ? { enrollment } : {}) });
      else {
        process.stdout.write(`added device ${r.device.id} (log seq ${r.seq})\n`);
        if (r.key) process.stdout.write(keyLines(r.device.id, r.key, r.keyId));
        if (enrollment) process.stdout.write(enrollLines(enrollment, o.qr === true));
      }
    });

  device
    .command('enroll <id>')
    .description('make a one-time enrollment token for a device (shown once); on the device: henge agent enroll <token>')
    .option('--hours <n>', 'hours until the token expires', '24')
    .option('--qr', 'also print the enrollment as a QR code in the terminal')
    .action(async (id: string, o: { hours: string; qr?: boolean }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const hours = Number(o.hours);
      if (!Number.isInteger(hours) || hours < 1 || hours > 720) throw new CliError(`--hours must be 1..720, got ${o.hours}`, ExitCode.Usage);
      const r = await env.client.request<Enrollment>('POST', `/devices/${encodeURIComponent(id)}/enrollment`, { hours });
      if (env.json) printJson(r);
      else process.stdout.write(enrollLines(r, o.qr === true));
    });

  device
    .command('key <id>')
    .description('issue a new DTLS key for a device (shown once); the old key stops working at once, or after --grace')
    .option('--grace <hours>', 'keep the old key valid this many hours (0-720) while the device is updated; it is retired as soon as the device uses the new one', '0')
    .action(async (id: string, o: { grace: string }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const graceHours = Number(o.grace);
      if (!Number.isInteger(graceHours) || graceHours < 0 || graceHours > 720) throw new CliError(`--grace must be 0..720 hours, got ${o.grace}`, ExitCode.Usage);
      const r = await env.client.request<{ device: string; key: string; keyId: string; previous?: { keyId: string; until: number } }>(
        'POST',
        `/devices/${encodeURIComponent(id)}/key`,
        { graceHours },
      );
      if (env.json) return printJson(r);
      process.stdout.write(keyLines(r.device, r.key, r.keyId));
      if (r.previous) process.stdout.write(`the old key [key id ${r.previous.keyId}] stays valid until ${formatTime(r.previous.until)}, or until the device uses the new one\n`);
    });

  for (const [verb, what] of [
    ['accept', 'accept a pending device (it enrolled itself with a provisioning token): its key then works'],
    ['reject', 'reject a pending device: its key is deleted and its handshakes fail (henge device rm forgets it)'],
  ] as const) {
    device
      .command(`${verb} <id>`)
      .description(what)
      .action(async (id: string, _o: unknown, cmd: Command) => {
        const env = await commandEnv(cmd);
        const r = await env.client.request<{ device: DeviceRecord; seq: number }>('POST', `/devices/${encodeURIComponent(id)}/${verb}`, {});
        if (env.json) printJson(r);
        else process.stdout.write(`${verb === 'accept' ? 'accepted' : 'rejected'} device ${id} (log seq ${r.seq})\n`);
      });
  }

  device
    .command('list')
    .alias('ls')
    .description('list devices')
    .option('--selector <selector>', 'only devices whose labels match, e.g. "site=a,role in (gw|sensor)"')
    .option('--pending', 'only devices waiting for admission (henge device accept|reject)')
    .action(async (o: { selector?: string; pending?: boolean }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ devices: DeviceRecord[] }>('GET', `/devices${o.selector ? `?selector=${encodeURIComponent(o.selector)}` : ''}`);
      const devices = o.pending ? r.devices.filter((d) => d.admission === 'pending') : r.devices;
      if (env.json) return printJson(devices);
      printTable(
        ['ID', 'NAME', 'SCHEMA', 'ADMISSION', 'LABELS'],
        devices.map((d) => [d.id, d.name, d.schema ?? '-', d.admission ?? 'accepted', formatLabels(d.labels) || '-']),
        o.pending ? 'no pending devices' : 'no devices',
      );
    });

  device
    .command('show <id>')
    .description('show a device, its effective config and its state')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const path = `/devices/${encodeURIComponent(id)}`;
      const [d, config, state] = await Promise.all([
        env.client.request<{ device: DeviceRecord }>('GET', path),
        env.client.request<{ version: number; hash: string; values: Record<string, unknown>; groups: string[] }>('GET', `${path}/config`),
        env.client.request<Record<string, unknown>>('GET', `${path}/state`),
      ]);
      if (env.json) return printJson({ ...d, config, state });
      const dev = d.device;
      const lines = [
        `device   ${dev.id} (${dev.name})`,
        `schema   ${dev.schema ?? '-'}`,
        `admitted ${dev.admission ?? 'accepted'}${dev.provisioning ? ` (enrolled itself with provisioning token ${dev.provisioning})` : ''}`,
        `labels   ${formatLabels(dev.labels) || '-'}`,
        `groups   ${config.groups.join(', ') || '-'}`,
        `version  ${config.version} (hash ${config.hash})`,
        `applied  ${state['appliedVersion'] === null ? '-' : String(state['appliedVersion'])}  online ${String(state['online'])}`,
        `created  ${formatTime(dev.createdAt)}  updated ${formatTime(dev.updatedAt)}`,
        'values',
        ...Object.entries(config.values).map(([k, v]) => `  ${k} = ${formatValue(v)}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  device
    .command('label <id> <labels...>')
    .description('set labels (key=value) or remove them (key-)')
    .action(async (id: string, labels: string[], _o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ device: DeviceRecord; seq: number | null }>('PATCH', `/devices/${encodeURIComponent(id)}`, { labels: parseLabels(labels) });
      if (env.json) printJson(r);
      else process.stdout.write(`${r.device.id}: ${formatLabels(r.device.labels) || '(no labels)'}${r.seq === null ? ' (unchanged)' : ''}\n`);
    });

  device
    .command('rm <id>')
    .description('remove a device (its history stays in the log)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ seq: number }>('DELETE', `/devices/${encodeURIComponent(id)}`);
      if (env.json) printJson(r);
      else process.stdout.write(`removed device ${id}\n`);
    });
}
