/** `henge provision create|list|revoke`: fleet provisioning tokens, for devices that enroll themselves (factory lines). */
import type { Command } from 'commander';
import { renderUnicodeCompact } from 'uqr';
import { parseLabels } from '../assignments.ts';
import { CliError, ExitCode } from '../exit.ts';
import { commandEnv } from '../context.ts';
import { formatLabels, formatTime, printJson, printTable } from '../output.ts';

interface ProvisioningToken {
  readonly id: string;
  readonly name: string;
  readonly expiresAt: number;
  readonly labels: Record<string, string>;
  readonly schema: string | null;
  readonly accept: string | null;
}

export function registerProvision(program: Command): void {
  const provision = program.command('provision').description('fleet provisioning tokens: many devices enroll themselves with one, then wait for admission');

  provision
    .command('create <name>')
    .description('create a fleet provisioning token (shown once); on each device: henge agent enroll <token> --id <device>')
    .option('--days <n>', 'days until it expires (1-365)', '30')
    .option('-l, --label <key=value>', 'a label every device enrolling with it gets; repeat for more', (v: string, prev: string[]) => [...prev, v], [])
    .option('-s, --schema <name>', 'bind the devices to a published schema')
    .option('--accept <selector>', 'admit devices at once when their labels (reported plus --label) match this selector ("*": every device); without it a person accepts each: henge device accept <id>')
    .option('--qr', 'also print the token as a QR code in the terminal')
    .action(async (name: string, o: { days: string; label: string[]; schema?: string; accept?: string; qr?: boolean }, cmd: Command) => {
      const env = await commandEnv(cmd);
      const days = Number(o.days);
      if (!Number.isInteger(days) || days < 1 || days > 365) throw new CliError(`--days must be 1..365, got ${o.days}`, ExitCode.Usage);
      const r = await env.client.request<ProvisioningToken & { token: string; uri: string; seq: number }>('POST', '/provisioning', {
        name,
        days,
        ...(o.label.length ? { labels: parseLabels(o.label) } : {}),
        ...(o.schema ? { schema: o.schema } : {}),
        ...(o.accept !== undefined ? { accept: o.accept } : {}),
      });
      if (env.json) return printJson(r);
      process.stdout.write(
        [
          `provisioning token ${r.id} (${r.name}; any number of devices; expires ${formatTime(r.expiresAt)}; shown once):`,
          `  ${r.token}`,
          `  admission: ${r.accept === null ? 'a person accepts each device (henge device list --pending; henge device accept <id>)' : `devices matching "${r.accept}" are accepted at once, others wait`}`,
          `  on each device: henge agent enroll <token> --id <device id> [--label model=x]`,
          ...(o.qr ? [renderUnicodeCompact(r.uri, { border: 2 })] : []),
          '',
        ].join('\n'),
      );
    });

  provision
    .command('list')
    .alias('ls')
    .description('list provisioning tokens (never their secrets)')
    .action(async (_o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ tokens: ProvisioningToken[] }>('GET', '/provisioning');
      if (env.json) return printJson(r.tokens);
      printTable(
        ['ID', 'NAME', 'EXPIRES', 'ACCEPT', 'SCHEMA', 'LABELS'],
        r.tokens.map((t) => [t.id, t.name, formatTime(t.expiresAt), t.accept ?? '(a person)', t.schema ?? '-', formatLabels(t.labels) || '-']),
        'no provisioning tokens',
      );
    });

  provision
    .command('revoke <id>')
    .description('revoke a provisioning token: no more devices enroll with it (those that did keep their keys)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const env = await commandEnv(cmd);
      const r = await env.client.request<{ seq: number }>('DELETE', `/provisioning/${encodeURIComponent(id)}`);
      if (env.json) printJson(r);
      else process.stdout.write(`revoked provisioning token ${id}\n`);
    });
}
