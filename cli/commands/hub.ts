/** `henge hub`: run the hub, or check its views against its log with --verify. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_API_HOST, DEFAULT_API_PORT, DEFAULT_COAP_PORT, DEFAULT_COAPS_PORT, DEFAULT_DATA_DIR } from '../../hub/defaults.ts';
import { HengeError, TlsConfigError } from '../../hub/errors.ts';
import { DEFAULT_MAX_HANDSHAKES_PER_ADDRESS } from '../../hub/coap/dtls-session-limits.ts';
import { configPath, readConfig, writeConfig } from '../config.ts';
import { CliError, ExitCode } from '../exit.ts';
import { stopOnSignals } from '../shutdown.ts';
import { printJson } from '../output.ts';

interface HubFlags {
  data: string;
  coapPort: string;
  coapHost: string;
  insecure: boolean;
  coapsPort: string;
  coaps: boolean;
  handshakesPerAddress: string;
  mdns: boolean;
  keepalive: string;
  host: string;
  port: string;
  logLevel: string;
  verify?: boolean;
  json?: boolean;
  writeConfig: boolean;
  /** undefined: decided by the host (see apiTls). */
  https?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/** 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Whether the API serves HTTPS, and with which certificate: on with --https or --tls-cert/--tls-key, and by
 * default beyond loopback; plain HTTP by default on loopback. --no-https beyond loopback needs --insecure.
 */
export function apiTls(flags: Pick<HubFlags, 'host' | 'https' | 'tlsCert' | 'tlsKey' | 'insecure'>): { certFile?: string; keyFile?: string } | null {
  const given = flags.tlsCert !== undefined || flags.tlsKey !== undefined;
  if (given && (flags.tlsCert === undefined || flags.tlsKey === undefined)) throw new CliError('--tls-cert and --tls-key go together: give both', ExitCode.Usage);
  if (flags.https === false) {
    if (given) throw new CliError('--no-https with --tls-cert/--tls-key: choose one', ExitCode.Usage);
    if (!isLoopback(flags.host) && !flags.insecure) {
      throw new CliError(
        `--no-https on ${flags.host}: admin tokens would cross the network in clear. Leave out --no-https (HTTPS with a self-signed certificate made on first start), or add --insecure to accept that`,
        ExitCode.Usage,
      );
    }
    return null;
  }
  if (flags.tlsCert !== undefined && flags.tlsKey !== undefined) return { certFile: flags.tlsCert, keyFile: flags.tlsKey };
  return flags.https === true || !isLoopback(flags.host) ? {} : null;
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`--port must be 0..65535, got ${text}`, ExitCode.Usage);
  return n;
}

async function verify(flags: HubFlags): Promise<void> {
  const { LevelStore } = await import('../../hub/store/level-store.ts');
  const { verifyStore } = await import('../../hub/store/verify.ts');
  const store = new LevelStore(resolve(flags.data, 'store'));
  try {
    await store.open();
  } catch (err) {
    throw new CliError(err instanceof HengeError ? `${err.message} (stop the hub first)` : String(err), ExitCode.Unavailable);
  }
  try {
    process.stderr.write(`verifying ${store.location}: replaying the log into memory...\n`);
    const report = await verifyStore(store, (n) => process.stderr.write(`  ${n} events replayed\n`));
    if (flags.json) printJson(report);
    else {
      for (const d of report.differences) {
        process.stdout.write(`${d.kind.padEnd(9)} ${d.key}\n`);
        if (d.expected !== undefined) process.stdout.write(`  log says:   ${d.expected}\n`);
        if (d.actual !== undefined) process.stdout.write(`  view holds: ${d.actual}\n`);
      }
      process.stdout.write(
        `${report.events} events replayed, ${report.views} views compared in ${Math.round(report.ms)} ms: ` +
          `${report.differences.length === 0 ? 'views match the log' : `${report.differences.length} difference(s)`}\n`,
      );
    }
    if (report.differences.length > 0) process.exitCode = ExitCode.VerifyMismatch;
  } finally {
    await store.close();
  }
}

/** The banner's TLS lines: the fingerprint to compare or pin, where the certificate comes from, how to trust it elsewhere. */
function tlsLines(tls: { fingerprint: string; certFile: string; generated: boolean } | null, provided: boolean, url: string): string[] {
  if (tls === null) return ['  TLS:  off (plain HTTP, on loopback only; --https to turn it on)'];
  const origin = provided ? `from ${tls.certFile}` : `self-signed, ${tls.generated ? 'GENERATED NOW' : 'made on an earlier start'}: ${tls.certFile}`;
  return [
    `  TLS:  certificate SHA-256 ${tls.fingerprint}`,
    `        ${origin}`,
    `        from another machine: henge --url https://<this host>:${new URL(url).port} --fingerprint ${tls.fingerprint} status`,
  ];
}

async function run(flags: HubFlags): Promise<void> {
  // Loaded here, not at the top: admin verbs should not pay for fastify and LevelDB.
  const { pino } = await import('pino');
  const { startHub } = await import('../../hub/hub.ts');
  const logger = pino({ level: flags.logLevel, base: { component: 'hub' } }, pino.destination(2));
  const keepaliveS = Number(flags.keepalive);
  if (!Number.isInteger(keepaliveS) || keepaliveS < 5 || keepaliveS > 3600) throw new CliError(`--keepalive must be 5..3600 seconds, got ${flags.keepalive}`, ExitCode.Usage);
  const coap = flags.insecure ? { port: parsePort(flags.coapPort), host: flags.coapHost, keepaliveS, advertise: flags.mdns } : undefined;
  const perAddress = Number(flags.handshakesPerAddress);
  if (!Number.isInteger(perAddress) || perAddress < 1 || perAddress > 256) {
    throw new CliError(`--handshakes-per-address must be 1..256, got ${flags.handshakesPerAddress}`, ExitCode.Usage);
  }
  const coaps = flags.coaps ? { port: parsePort(flags.coapsPort), host: flags.coapHost, keepaliveS, advertise: flags.mdns, handshakesPerAddress: perAddress } : undefined;
  if (!coap && !coaps) throw new CliError('--no-coaps without --insecure leaves devices no endpoint', ExitCode.Usage);
  const tls = apiTls(flags);
  const hub = await startHub({ data: flags.data, host: flags.host, port: parsePort(flags.port), logger, tls, ...(coap ? { coap } : {}), ...(coaps ? { coaps } : {}) }).catch(async (err: unknown) => {
    // A certificate the user named is a usage problem; a generated one that cannot be used is the hub's.
    if (err instanceof TlsConfigError) throw new CliError(`${err.code}: ${err.message}`, tls?.certFile !== undefined ? ExitCode.Usage : ExitCode.Failure);
    if (err instanceof HengeError) throw new CliError(err.message, ExitCode.Unavailable);
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      throw new CliError(
        `cannot listen on ${e.address ?? ''} port ${String(e.port ?? '')} (${e.code}): another program uses it, or the address is not this machine's; choose --port / --coap-port / --coaps-port`,
        ExitCode.Unavailable,
      );
    }
    throw err;
  });
  const meta = hub.core.state.meta;
  const lines = [
    `henge hub ${meta?.hubId ?? ''} started in ${Math.round(hub.startupMs)} ms`,
    `  data: ${hub.dataDir}`,
    `  API:  ${hub.url}  (docs: ${hub.url}/docs)`,
    ...tlsLines(hub.tls, tls?.certFile !== undefined, hub.url),
    hub.coapsPort !== null ? `  CoAPS: udp ${flags.coapHost} port ${hub.coapsPort} (DTLS 1.2, a pre-shared key per device)` : '  CoAPS: off (--no-coaps)',
    hub.coapPort !== null ? `  CoAP: udp ${flags.coapHost} port ${hub.coapPort} (--insecure: plain CoAP, NOT ENCRYPTED)` : '  CoAP: off (plain CoAP only with --insecure)',
    `  mDNS: ${hub.advertised ? `advertised as henge-${meta?.hubId ?? ''} (${[hub.coapsPort !== null ? '_henge._sub._coaps._udp' : '', hub.coapPort !== null ? '_henge._sub._coap._udp' : ''].filter(Boolean).join(', ')})` : 'not advertised'}`,
  ];
  if (hub.firstToken) {
    lines.push(`  admin token (shown once, stored only as a hash): ${hub.firstToken}`);
    if (flags.writeConfig) {
      const path = configPath();
      await writeConfig({ url: hub.url, token: hub.firstToken, ...(meta ? { hubId: meta.hubId } : {}), ...(hub.tls ? { fingerprint: hub.tls.fingerprint } : {}) }, path);
      lines.push(`  CLI config written to ${path}: henge commands on this machine need no flags`);
    }
  } else if (flags.writeConfig && meta) {
    // Same hub, maybe another port or certificate: keep the CLI config that this hub wrote pointing at it.
    const path = configPath();
    const cfg = await readConfig(path);
    const fingerprint = hub.tls?.fingerprint;
    if (cfg.hubId === meta.hubId && (cfg.url !== hub.url || cfg.fingerprint !== fingerprint)) {
      const { fingerprint: _old, ...rest } = cfg;
      await writeConfig({ ...rest, url: hub.url, ...(fingerprint ? { fingerprint } : {}) }, path);
      lines.push(`  CLI config ${path} now points at ${hub.url}${fingerprint ? ' and trusts this certificate' : ''}`);
    }
  }
  // One write, after the config file exists: whoever reads the banner can use the CLI at once.
  process.stdout.write(`${lines.join('\n')}\n`);
  if (hub.coapPort !== null) {
    logger.warn({ port: hub.coapPort }, 'INSECURE (--insecure): devices are also served over plain CoAP, without DTLS; anyone on the network can read and spoof config traffic on that port');
  }
  if (hub.tls === null && !isLoopback(flags.host)) {
    logger.warn({ host: flags.host }, 'INSECURE (--no-https --insecure): the API listens beyond loopback over plain HTTP; admin tokens cross the network in clear');
  }
  logger.info({ url: hub.url, hubId: meta?.hubId, devices: hub.core.state.devices.size, logLength: hub.core.state.seq }, 'hub ready');
  stopOnSignals(logger, 'stopping: finishing writes in flight', () => hub.close());
}

export function registerHub(program: Command): void {
  program
    .command('hub')
    .description('run the hub: store, REST API and the device endpoint (CoAP)')
    .option('--data <dir>', 'data folder (LevelDB store inside)', DEFAULT_DATA_DIR)
    .option('--host <addr>', 'address the API listens on (beyond loopback, HTTPS by default)', DEFAULT_API_HOST)
    .option('--port <n>', 'API port (0 picks a free one)', String(DEFAULT_API_PORT))
    .option('--https', 'serve the API over HTTPS; the default when --host is not a loopback address')
    .option('--no-https', 'plain HTTP: the default on loopback; beyond it only with --insecure')
    .option('--tls-cert <file>', 'PEM certificate (chain) for HTTPS, with --tls-key (default: self-signed, made on the first HTTPS start in <data>/tls)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert (unencrypted)')
    .option('--coap-port <n>', 'UDP port of the plain CoAP endpoint, with --insecure (0 picks a free one)', String(DEFAULT_COAP_PORT))
    .option('--coap-host <addr>', 'address of the device endpoints (:: is every IPv4 and IPv6 address)', '::')
    .option('--insecure', 'also serve devices over plain CoAP (no encryption, no device authentication), and allow --no-https beyond loopback: on a network you trust')
    .option('--coaps-port <n>', 'UDP port of the DTLS device endpoint (0 picks a free one)', String(DEFAULT_COAPS_PORT))
    .option('--no-coaps', 'no DTLS device endpoint (and no device keys are issued)')
    .option('--handshakes-per-address <n>', 'DTLS handshakes one IP address may have in progress (1-256); raise it when many devices reach the hub through one NAT address', String(DEFAULT_MAX_HANDSHAKES_PER_ADDRESS))
    .option('--no-mdns', 'do not advertise the hub over mDNS/DNS-SD (devices then need --hub)')
    .option('--keepalive <seconds>', 'how often devices re-register; offline after three missed', '60')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (logs are JSON on stderr)', 'info')
    .option('--no-write-config', 'on first start, do not write the CLI config file')
    .option('--verify', 'do not start: rebuild the views from the log in memory and report every difference (exit 8 if any)')
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<HubFlags>();
      if (flags.verify) await verify(flags);
      else await run(flags);
    });
}
