/** `henge agent`: the Node device agent (observe this device's config, write it atomically, run a hook, ack). */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseLabels } from '../assignments.ts';
import { DEFAULT_COAP_PORT, DEFAULT_COAPS_PORT } from '../../hub/defaults.ts';
import { CliError, ExitCode } from '../exit.ts';
import { stopOnSignals } from '../shutdown.ts';
import { DEVICE_ID_PATTERN } from '../../protocol/paths.ts';

interface AgentFlags {
  id?: string;
  hub?: string;
  out?: string;
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

/**
 * The device key (coaps): from --key-file, else $HENGE_DEVICE_KEY, else the key `henge agent enroll` left
 * in the state folder; never from the command line, where `ps` shows it.
 */
async function readDeviceKey(file: string | undefined, stateDir: string): Promise<string | undefined> {
  let text = process.env['HENGE_DEVICE_KEY'];
  if (file === undefined && text === undefined) {
    const { readStoredKey } = await import('../../agent/index.ts');
    text = await readStoredKey(stateDir).catch((err: unknown) => {
      throw new CliError((err as Error).message, ExitCode.Failure);
    });
  }
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
  if (flags.id === undefined || flags.out === undefined) throw new CliError('henge agent needs --id <device> and --out <file> (henge agent --help)', ExitCode.Usage);
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
  const stateDir = resolve(flags.state ?? `.henge/agent-${flags.id}`);
  const key = await readDeviceKey(flags.keyFile, stateDir);
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
    stateDir,
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

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A device id from the host name (lowercase, other characters as -), for fleet enrollment without --id. */
function idFromHostname(): string {
  const id = hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+/, '').slice(0, 63);
  if (id === '') throw new CliError('this host name gives no device id: pass --id', ExitCode.Usage);
  return id;
}

interface EnrollFlags {
  readonly hub?: string;
  readonly state?: string;
  readonly id?: string;
  readonly label?: readonly string[];
}

/** `henge agent enroll <token>`: trades a one-time or fleet token for the device key over DTLS, and keeps it. */
async function enroll(tokenText: string, flags: EnrollFlags): Promise<void> {
  const { parseEnrollment, ENROLL_PATH, decodeEnrolled, encodeEnrollRequest } = await import('../../protocol/enroll.ts');
  // `-`: the token comes on standard input, so that it never shows in `ps`.
  const text = tokenText === '-' ? (await readStdin()).trim() : tokenText;
  const parsed = parseEnrollment(text);
  if (!parsed) {
    throw new CliError('that is not an enrollment token (hge_<id>_<secret>), a provisioning token (hgp_…) or an enrollment URI (henge:enroll?hub=…&t=…)', ExitCode.Usage);
  }
  const fleet = parsed.kind === 'fleet';
  if (!fleet && (flags.id !== undefined || (flags.label?.length ?? 0) > 0)) {
    throw new CliError('--id and --label go with a provisioning token (hgp_…); a one-time token already names its device', ExitCode.Usage);
  }
  const payload = fleet ? Buffer.from(encodeEnrollRequest({ device: flags.id ?? idFromHostname(), labels: parseLabels([...(flags.label ?? [])]) as Record<string, string> })) : undefined;
  const { CoapClient, HubAddressError, StateStore, discoveryLocator, staticLocator, storeKey } = await import('../../agent/index.ts');
  let locate;
  try {
    locate = flags.hub !== undefined ? staticLocator(flags.hub, DEFAULT_COAPS_PORT) : discoveryLocator(true);
  } catch (err) {
    if (err instanceof HubAddressError) throw new CliError(err.message, ExitCode.Usage);
    throw err;
  }
  const hub = await locate(undefined, parsed.hubId).catch((err: unknown) => {
    throw new CliError(`cannot find the hub: ${(err as Error).message}`, ExitCode.Unavailable);
  });
  const client = await CoapClient.open(hub, { psk: { identity: parsed.identity, key: parsed.secret } }).catch((err: unknown) => {
    throw new CliError(
      `${(err as Error).message}: the token is unknown, used, revoked or expired, this address enrolled too often this minute, or ${hub.address} port ${hub.port} is not a henge hub's coaps endpoint`,
      ExitCode.Unauthorized,
    );
  });
  try {
    const res = await client.request({ method: 'POST', path: [ENROLL_PATH], ...(payload ? { payload } : {}) });
    if (res.code !== '2.04') {
      const why = res.payload.length > 0 ? res.payload.toString('utf8') : 'the token was used or its device removed';
      throw new CliError(`the hub refused the enrollment (${res.code}): ${why}`, res.code === '4.00' ? ExitCode.Invalid : ExitCode.Unauthorized);
    }
    const enrolled = decodeEnrolled(res.payload);
    if (parsed.hubId !== undefined && enrolled.hubId !== parsed.hubId) {
      throw new CliError(`hub ${enrolled.hubId} answered, but the enrollment was made by hub ${parsed.hubId}: nothing kept`, ExitCode.Failure);
    }
    const dir = resolve(flags.state ?? `.henge/agent-${enrolled.device}`);
    await storeKey(dir, enrolled.key);
    // Pin the hub that enrolled this device: the agent then refuses any other.
    const store = new StateStore(dir, enrolled.device);
    await store.open();
    try {
      await store.save({ ...(await store.load()), hubId: enrolled.hubId });
    } finally {
      await store.close();
    }
    process.stdout.write(
      `enrolled as ${enrolled.device} with hub ${enrolled.hubId}; key and pinned hub kept in ${dir} (0600)\n` +
        (enrolled.admission === 'pending'
          ? `pending: the key works once the device is accepted (on the hub: henge device accept ${enrolled.device}); until then the agent keeps retrying\n`
          : '') +
        `run: henge agent --id ${enrolled.device} --out <file>${flags.state !== undefined ? ` --state ${dir}` : ''}${flags.hub !== undefined ? ` --hub ${flags.hub}` : ''}\n`,
    );
  } finally {
    await client.close();
  }
}

export function registerAgent(program: Command): void {
  const agent = program
    .command('agent')
    .description("run the device agent: observe this device's config on the hub (CoAP), write it to a file atomically, run a hook, ack")
    .option('--id <device>', 'device id, as added with `henge device add` (required)')
    .option('--hub <host[:port]>', 'hub address: host, host:port, [IPv6]:port (port 5684 with a key, else 5683); without it the hub is found over mDNS (DNS-SD) and pinned')
    .option('--out <file>', 'config file to write (atomically) (required)')
    .option('--format <json|yaml|env>', 'file format (default: from the extension of --out, else json); env writes KEY=\'value\' lines')
    .option('--exec <cmd>', 'run with /bin/sh after each apply, with HENGE_CONFIG_FILE, HENGE_CONFIG_VERSION, HENGE_DEVICE set; a non-zero exit restores the previous file and acks "failed"')
    .option('--exec-timeout <seconds>', 'a --exec running longer fails (and is killed)', '60')
    .option('--state <dir>', 'state folder: last applied snapshot, pinned hub (default ./.henge/agent-<id>)')
    .option('--backoff-max <seconds>', 'longest wait between attempts to reach the hub', '60')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (logs are JSON on stderr)', 'info')
    .option('--key-file <path>', 'the device key henge device add printed (or $HENGE_DEVICE_KEY; after henge agent enroll it is in the state folder): talk coaps (DTLS; --hub port 5684 by default, mDNS _coaps._udp); with no key at all, plain CoAP to a hub run with --insecure')
    .addHelpText('after', '\nSignals: SIGINT/SIGTERM deregister and exit 0; SIGHUP re-registers at once.')
    .action(async (_opts: unknown, cmd: Command) => {
      await run(cmd.opts<AgentFlags>());
    });
  agent
    .command('enroll <token>')
    .description(
      "trade an enrollment token or URI (henge device add --enroll [--qr], or a fleet token from henge provision create; - reads it from stdin) for this device's key, over DTLS; keeps the key (0600) and pins the hub in the state folder",
    )
    .option('--hub <host[:port]>', 'hub address (port 5684 when left out); without it the hub is found over mDNS (_coaps._udp)')
    .option('--state <dir>', 'state folder to keep the key in (default ./.henge/agent-<device id from the hub>)')
    .option('--id <device>', 'with a fleet token: the device id to ask for (default: from the host name)')
    .option('-l, --label <key=value>', 'with a fleet token: a label this device reports (e.g. model=x); repeat for more', (v: string, prev: string[]) => [...prev, v], [])
    .action(async (token: string, o: { hub?: string; state?: string; id?: string; label: string[] }, cmd: Command) => {
      // --hub / --state / --id may also be read by `agent` itself, depending on where they were written.
      const parent = cmd.parent?.opts<{ hub?: string; state?: string; id?: string }>() ?? {};
      const hub = o.hub ?? parent.hub;
      const state = o.state ?? parent.state;
      const id = o.id ?? parent.id;
      await enroll(token, { ...(hub !== undefined ? { hub } : {}), ...(state !== undefined ? { state } : {}), ...(id !== undefined ? { id } : {}), label: o.label });
    });
}
