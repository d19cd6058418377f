/** Resolves how a command reaches the hub, how it trusts an https hub, and how it prints. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { HubClient, normalizeFingerprint } from './client.ts';
import type { Trust } from './client.ts';
import { configPath, readConfig } from './config.ts';
import type { CliConfig } from './config.ts';
import { CliError, ExitCode } from './exit.ts';
import { DEFAULT_API_HOST, DEFAULT_API_PORT } from '../hub/defaults.ts';

export interface GlobalFlags {
  url?: string;
  token?: string;
  json?: boolean;
  reason?: string;
  ca?: string;
  fingerprint?: string;
}

export interface CommandEnv {
  readonly client: HubClient;
  readonly json: boolean;
}

/**
 * Which certificate an https hub must present, first match wins: `--ca` / HENGE_CA, `--fingerprint` /
 * HENGE_FINGERPRINT, the fingerprint in the CLI config when its URL is the one in use, else the system's CAs.
 * An explicit CA or fingerprint with a plain http:// URL is refused: it asks for a check that cannot happen.
 */
export async function resolveTrust(url: string, flags: Pick<GlobalFlags, 'ca' | 'fingerprint'>, env: NodeJS.ProcessEnv, file: CliConfig, filePath: string): Promise<Trust> {
  const https = url.startsWith('https:');
  const ca = flags.ca !== undefined ? { file: flags.ca, source: '--ca' } : env['HENGE_CA'] ? { file: env['HENGE_CA'], source: 'HENGE_CA' } : null;
  const pin = flags.fingerprint !== undefined ? { text: flags.fingerprint, source: '--fingerprint' } : env['HENGE_FINGERPRINT'] ? { text: env['HENGE_FINGERPRINT'], source: 'HENGE_FINGERPRINT' } : null;
  const explicit = ca?.source ?? pin?.source;
  if (explicit !== undefined && !https) {
    throw new CliError(`${explicit} checks an https hub, but ${url} is plain HTTP: use the hub's https:// URL`, ExitCode.Usage);
  }
  if (ca) {
    let pem: string;
    try {
      pem = await readFile(ca.file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read the CA file ${ca.file} (${ca.source}): ${(err as Error).message}`, ExitCode.Usage);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new CliError(`${ca.file} (${ca.source}) holds no PEM certificate`, ExitCode.Usage);
    return { kind: 'ca', pem, source: `${ca.source} ${ca.file}` };
  }
  if (pin) {
    const fingerprint = normalizeFingerprint(pin.text);
    if (fingerprint === null) throw new CliError(`${pin.source} must be a SHA-256 fingerprint (64 hex digits, colons allowed), got ${pin.text}`, ExitCode.Usage);
    return { kind: 'fingerprint', fingerprint, source: pin.source };
  }
  if (https && file.fingerprint !== undefined && file.url !== undefined && sameOrigin(file.url, url)) {
    const fingerprint = normalizeFingerprint(file.fingerprint);
    if (fingerprint === null) throw new CliError(`the fingerprint in ${filePath} is malformed: ${file.fingerprint}`, ExitCode.Failure);
    return { kind: 'fingerprint', fingerprint, source: `the CLI config ${filePath}` };
  }
  return { kind: 'system' };
}

/** Same scheme, host and port (`https://h:1/` and `https://h:1` are one hub). */
function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    // Not URLs: HubClient says so for the one in use; the stored fingerprint then applies to nothing.
    return false;
  }
}

export async function commandEnv(cmd: Command): Promise<CommandEnv> {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  const path = configPath();
  const file = await readConfig(path);
  const url = flags.url ?? process.env['HENGE_URL'] ?? file.url ?? `http://${DEFAULT_API_HOST}:${DEFAULT_API_PORT}`;
  const token = flags.token ?? process.env['HENGE_TOKEN'] ?? file.token;
  const trust = await resolveTrust(url, flags, process.env, file, path);
  return {
    client: new HubClient({ url, token, trust, ...(flags.reason ? { reason: flags.reason } : {}) }),
    json: flags.json === true,
  };
}
