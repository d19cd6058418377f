/** `henge sim`: many simulated devices in this process against a hub's CoAP endpoint (sim/). */
import type { Command } from 'commander';
import { parseLabels } from '../assignments.ts';
import type { HubClient } from '../client.ts';
import type { HubAddress } from '../../sim/index.ts';
import { commandEnv } from '../context.ts';
import { CliError, ExitCode } from '../exit.ts';

interface SimFlags {
  devices: string;
  hub?: string;
  coaps?: boolean;
  prefix: string;
  add?: boolean;
  label: string[];
  schema?: string;
  every: string;
  status: string;
  json?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];
const PREFIX = /^[a-z0-9][a-z0-9-]*$/;
const STATUSES = ['applied', 'rejected', 'failed', 'reverted'] as const;
const MAX_DEVICES = 100_000;
const ADD_CONCURRENCY = 16;

/** `sim-001` … `sim-050`: 1-based, zero-padded to at least 3 digits so ids sort. */
export function simIds(prefix: string, count: number): string[] {
  const width = Math.max(3, String(count).length);
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`);
}

async function addMissing(client: HubClient, ids: readonly string[], labels: Record<string, string>, schema: string | undefined): Promise<number> {
  const existing = new Set((await client.request<{ devices: Array<{ id: string }> }>('GET', '/devices')).devices.map((d) => d.id));
  const missing = ids.filter((id) => !existing.has(id));
  let next = 0;
  let added = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < missing.length; i = next++) {
      const id = missing[i];
      if (id === undefined) break;
      try {
        await client.request('POST', '/devices', { id, ...(Object.keys(labels).length > 0 ? { labels } : {}), ...(schema ? { schema } : {}) });
        added++;
      } catch (err) {
        // Added meanwhile by someone else: fine.
        if (!(err instanceof CliError && err.exitCode === ExitCode.Conflict)) throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: ADD_CONCURRENCY }, () => worker()));
  return added;
}

/** A new DTLS key for every device, through the REST API (admin): the simulator then talks coaps. */
async function issueKeys(client: HubClient, ids: readonly string[]): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < ids.length; i = next++) {
      const id = ids[i];
      if (id === undefined) break;
      const r = await client.request<{ key?: string }>('POST', `/devices/${encodeURIComponent(id)}/key`, {});
      if (r.key === undefined) throw new CliError(`the hub issued no key for ${id}: does it run with coaps?`, ExitCode.Failure);
      keys.set(id, r.key);
    }
  };
  await Promise.all(Array.from({ length: ADD_CONCURRENCY }, () => worker()));
  return keys;
}

async function run(flags: SimFlags, cmd: Command): Promise<void> {
  const count = Number(flags.devices);
  if (!Number.isInteger(count) || count < 1 || count > MAX_DEVICES) throw new CliError(`--devices must be 1..${MAX_DEVICES}, got ${flags.devices}`, ExitCode.Usage);
  if (!PREFIX.test(flags.prefix)) throw new CliError(`--prefix ${flags.prefix}: lowercase letters, digits and -, starting with a letter or digit`, ExitCode.Usage);
  const ids = simIds(flags.prefix, count);
  if ((ids[ids.length - 1] ?? '').length > 63) throw new CliError(`--prefix ${flags.prefix} is too long: device ids are at most 63 characters`, ExitCode.Usage);
  const status = STATUSES.indexOf(flags.status as (typeof STATUSES)[number]);
  if (status < 0) throw new CliError(`--status must be one of ${STATUSES.join(', ')}`, ExitCode.Usage);
  const every = Number(flags.every);
  if (!Number.isFinite(every) || every < 0) throw new CliError(`--every must be a number of seconds >= 0, got ${flags.every}`, ExitCode.Usage);
  if (!flags.add && (flags.label.length > 0 || flags.schema !== undefined)) throw new CliError('--label and --schema only apply with --add', ExitCode.Usage);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseLabels(flags.label))) {
    if (v === null) throw new CliError(`--label ${k}-: give key=value`, ExitCode.Usage);
    labels[k] = v;
  }
  // Loaded here: other verbs should not pay for the simulator.
  const { Simulator, HubAddressError, SPARE_FILES, openFileLimit, parseHubAddress } = await import('../../sim/index.ts');
  const { DEFAULT_COAP_PORT, DEFAULT_COAPS_PORT } = await import('../../hub/defaults.ts');
  // Over coaps every device comes from this one address: as many start at once as a hub lets one address
  // handshake by default.
  const { DEFAULT_MAX_HANDSHAKES_PER_ADDRESS } = await import('../../hub/coap/dtls-session-limits.ts');
  const hubText = flags.hub ?? `127.0.0.1:${flags.coaps ? DEFAULT_COAPS_PORT : DEFAULT_COAP_PORT}`;
  const hub = ((): HubAddress => {
    try {
      return parseHubAddress(hubText, flags.coaps ? DEFAULT_COAPS_PORT : DEFAULT_COAP_PORT);
    } catch (err) {
      if (err instanceof HubAddressError) throw new CliError(err.message, ExitCode.Usage);
      throw err;
    }
  })();
  const limit = openFileLimit();
  if (limit !== null && count + SPARE_FILES > limit) {
    throw new CliError(
      `${count} devices need ${count} sockets, more than this shell's open-file limit of ${limit} allows; raise it first: ulimit -n ${count + 1024}`,
      ExitCode.Usage,
    );
  }
  const out = (text: string, obj: object): void => void process.stdout.write(flags.json ? `${JSON.stringify(obj)}\n` : `${text}\n`);

  if (flags.add) {
    const env = await commandEnv(cmd);
    process.stderr.write(`adding the devices ${ids[0] ?? ''}..${ids[ids.length - 1] ?? ''} that ${env.client.conn.url} does not have yet\n`);
    const added = await addMissing(env.client, ids, labels, flags.schema);
    process.stderr.write(`added ${added} devices (${count - added} existed already)\n`);
  }

  let keys: Map<string, string> | undefined;
  if (flags.coaps) {
    const env = await commandEnv(cmd);
    process.stderr.write(`issuing a new DTLS key for each of the ${count} devices through ${env.client.conn.url} (their old keys stop working)\n`);
    keys = await issueKeys(env.client, ids);
  }
  const keyMap = keys;
  const sim = new Simulator({ hub, ackStatus: status as 0 | 1 | 2 | 3, ...(keyMap ? { keyOf: (id: string) => keyMap.get(id), startWindow: DEFAULT_MAX_HANDSHAKES_PER_ADDRESS } : {}) });
  const t0 = Date.now();
  await sim.start(ids);
  process.stderr.write(`simulating ${count} devices (${ids[0] ?? ''}..${ids[ids.length - 1] ?? ''}) against ${flags.coaps ? 'coaps' : 'coap'}://${hubText}; Ctrl-C stops\n`);

  let last = { observing: -1, applied: 0, acked: 0, retransmissions: 0, timeouts: 0 };
  const tick = (force: boolean): void => {
    const c = sim.counters;
    const st = sim.stats();
    const now = { observing: st.observing, applied: c.applied, acked: c.acksAnswered, retransmissions: c.retransmissions, timeouts: c.timeouts };
    const changed = now.observing !== last.observing || now.applied !== last.applied || now.acked !== last.acked || now.timeouts !== last.timeouts;
    if (!force && every === 0 && !changed) return;
    const s = Math.round((Date.now() - t0) / 1000);
    out(
      `[${String(s).padStart(5)}s] registered ${now.observing}/${count}, notified ${now.applied} (+${now.applied - last.applied}), ` +
        `acked ${now.acked} (+${now.acked - last.acked}), retransmissions ${now.retransmissions}, timeouts ${now.timeouts}` +
        (c.registrationFailures > 0 ? `, registrations refused or lost ${c.registrationFailures}` : '') +
        (c.ackErrors > 0 ? `, acks refused ${c.ackErrors}` : '') +
        (c.socketErrors > 0 ? `, socket errors ${c.socketErrors} (nothing listens at ${hubText}?)` : ''),
      { t: s, devices: count, registered: now.observing, notified: now.applied, acked: now.acked, retransmissions: now.retransmissions, timeouts: now.timeouts, registrationFailures: c.registrationFailures, ackErrors: c.ackErrors, socketErrors: c.socketErrors },
    );
    last = now;
  };
  const timer = setInterval(() => tick(false), Math.max(1, every || 1) * 1000);

  let stopping = false;
  void sim.registration().then((r) => {
    if (stopping) return;
    process.stderr.write(`${r.observing} of ${r.devices} registered in ${Math.round(r.ms)} ms${r.failed > 0 ? ` (${r.failed} refused or unanswered: unknown devices need --add)` : ''}\n`);
  });

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      clearInterval(timer);
      process.stderr.write('stopping: deregistering\n');
      void sim.stop({ deregister: true, timeoutMs: 2000 }).then(() => {
        tick(true);
        resolve();
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('simulate many devices in this process against a hub (CoAP or coaps): they register, apply every change and ack it')
    .requiredOption('--devices <n>', 'how many devices')
    .option('--hub <host[:port]>', 'hub device endpoint: host, host:port, [IPv6]:port (default 127.0.0.1, port 5684 with --coaps, else 5683)')
    .option('--coaps', 'talk coaps (DTLS 1.2 PSK): first issue a new key for every simulated device through the REST API (an admin token; their old keys stop working)')
    .option('--prefix <text>', 'device ids are <prefix>001, <prefix>002, ...', 'sim-')
    .option('--add', 'first add, through the REST API, the devices the hub does not have yet (--url/--token, HENGE_URL/HENGE_TOKEN or the CLI config)')
    .option('-l, --label <key=value>', 'with --add: a label for the added devices; repeat for more', collect, [])
    .option('-s, --schema <name>', 'with --add: bind the added devices to this schema')
    .option('--every <seconds>', 'print a status line this often; 0 prints one only when something changed', '1')
    .option('--status <status>', `the status every ack reports: ${STATUSES.join(', ')}`, 'applied')
    .addHelpText('after', '\nEach device has its own UDP socket: raise the open-file limit (ulimit -n) for thousands. SIGINT/SIGTERM deregister and exit 0.')
    .action(async (_opts: unknown, cmd: Command) => {
      await run(cmd.optsWithGlobals<SimFlags>(), cmd);
    });
}
