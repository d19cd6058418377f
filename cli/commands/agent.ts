/** `henge agent`: the Node device agent (observe this device's config, write it atomically, run a hook, ack). */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DEFAULT_COAP_PORT, DEFAULT_COAPS_PORT } from '../../hub/defaults.ts';
import { CliError, ExitCode } from '../exit.ts';
import { stopOnSignals } from '../shutdown.ts';
import { DEVICE_ID_PATTERN } from '../../protocol/paths.ts';

interface AgentFlags {
  id: string;
  hub?: string;
  out: string;
  format?: string;
  exec?: string;
  execTimeout: string;
  state?: string;
  backoffMax: string;
  logLevel: string;
  keyFile?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function seconds(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) throw new CliError(`${flag} must be ${min}..${max} seconds, got ${text}`, ExitCode.Usage);
  return n;
}

/** The device key (coaps): from --key-file, else $HENGE_DEVICE_KEY; never from the command line, where `ps` shows it. */
async function readDeviceKey(file: string | undefined): Promise<string | undefined> {
  let text = process.env['HENGE_DEVICE_KEY'];
  if (file !== undefined) {
    try {
      text = (await readFile(file, 'utf8')).split('\n')[0];
    } catch (err) {
      throw new CliError(`--key-file ${file}: ${(err as Error).message}`, ExitCode.Usage);
    }
  }
  if (text === undefined || text.trim() === '') return undefined;
  const key = text.trim();
  if (!/^[\x21-\x7e]{1,512}$/.test(key)) throw new CliError('the device key must be printable ASCII (what henge device add printed)', ExitCode.Usage);
  return key;
}

async function run(flags: AgentFlags): Promise<void> {
  if (!DEVICE_ID_PATTERN.test(flags.id)) throw new CliError(`--id ${flags.id}: a device id is 1-63 of a-z, 0-9 and -, starting with a letter or digit`, ExitCode.Usage);
  if (!LOG_LEVELS.includes(flags.logLevel)) throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`, ExitCode.Usage);
  const backoffMaxS = seconds(flags.backoffMax, '--backoff-max', 1, 86_400);
  const execTimeoutS = seconds(flags.execTimeout, '--exec-timeout', 1, 86_400);
  // Loaded here: other verbs should not pay for the agent and pino.
  const { pino } = await import('pino');
  const agentModule = await import('../../agent/index.ts');
  const { Agent, AgentError, HubAddressError, StateLockedError, discoveryLocator, formatFromPath, isOutputFormat, staticLocator } = agentModule;
  const out = resolve(flags.out);
  let format = formatFromPath(out);
  if (flags.format !== undefined) {
    if (!isOutputFormat(flags.format)) throw new CliError(`--format must be json, yaml or env, got ${flags.format}`, ExitCode.Usage);
    format = flags.format;
  }
  const key = await readDeviceKey(flags.keyFile);
  let locator;
  try {
    // No --hub: find the hub over DNS-SD (_coaps._udp with a key, else _coap._udp), and pin the first one found.
    locator = flags.hub !== undefined ? staticLocator(flags.hub, key !== undefined ? DEFAULT_COAPS_PORT : DEFAULT_COAP_PORT) : discoveryLocator(key !== undefined);
  } catch (err) {
    if (err instanceof HubAddressError) throw new CliError(err.message, ExitCode.Usage);
    throw err;
  }
  const logger = pino({ level: flags.logLevel, base: { component: 'agent', device: flags.id } }, pino.destination({ dest: 2, sync: true }));
  const agent = new Agent({
    device: flags.id,
    locator,
    out,
    format,
    ...(flags.exec !== undefined ? { exec: flags.exec } : {}),
    execTimeoutMs: execTimeoutS * 1000,
    stateDir: resolve(flags.state ?? `.henge/agent-${flags.id}`),
    backoffMaxMs: backoffMaxS * 1000,
    logger,
    ...(key !== undefined ? { psk: { identity: flags.id, key } } : {}),
  });
  try {
    await agent.start();
  } catch (err) {
    if (err instanceof StateLockedError) throw new CliError(`${err.message} [${err.code}]`, ExitCode.Conflict);
    if (err instanceof AgentError) throw new CliError(`${err.message} [${err.code}]`, ExitCode.Failure);
    if (err instanceof Error && 'code' in err && typeof err.code === 'string') throw new CliError(`${err.message}`, ExitCode.Failure);
    throw err;
  }
  logger.info({ hub: flags.hub ?? 'mdns', coaps: key !== undefined, out, format, exec: flags.exec !== undefined, pid: process.pid }, 'agent started');
  stopOnSignals(logger, 'stopping', () => agent.stop());
  process.on('SIGHUP', () => agent.refresh());
  await agent.done;
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description("run the device agent: observe this device's config on the hub (CoAP), write it to a file atomically, run a hook, ack")
    .requiredOption('--id <device>', 'device id, as added with `henge device add`')
    .option('--hub <host[:port]>', 'hub address: host, host:port, [IPv6]:port (port 5684 with a key, else 5683); without it the hub is found over mDNS (DNS-SD) and pinned')
    .requiredOption('--out <file>', 'config file to write (atomically)')
    .option('--format <json|yaml|env>', 'file format (default: from the extension of --out, else json); env writes KEY=\'value\' lines')
    .option('--exec <cmd>', 'run with /bin/sh after each apply, with HENGE_CONFIG_FILE, HENGE_CONFIG_VERSION, HENGE_DEVICE set; a non-zero exit restores the previous file and acks "failed"')
    .option('--exec-timeout <seconds>', 'a --exec running longer fails (and is killed)', '60')
    .option('--state <dir>', 'state folder: last applied snapshot, pinned hub (default ./.henge/agent-<id>)')
    .option('--backoff-max <seconds>', 'longest wait between attempts to reach the hub', '60')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (logs are JSON on stderr)', 'info')
    .option('--key-file <path>', 'the device key henge device add printed (or $HENGE_DEVICE_KEY): talk coaps (DTLS; --hub port 5684 by default, mDNS _coaps._udp); without it, plain CoAP to a hub run with --insecure')
    .addHelpText('after', '\nSignals: SIGINT/SIGTERM deregister and exit 0; SIGHUP re-registers at once.')
    .action(async (_opts: unknown, cmd: Command) => {
      await run(cmd.opts<AgentFlags>());
    });
}
