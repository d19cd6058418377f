/**
 * Where the CLI finds the hub: flags, then env (HENGE_URL, HENGE_TOKEN), then the file that `henge hub`
 * writes on its first run ($HENGE_CONFIG, else $XDG_CONFIG_HOME/henge/cli.json, else ~/.config/henge/cli.json),
 * with the fingerprint of the hub's certificate when its API serves HTTPS.
 */
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface CliConfig {
  readonly url?: string;
  readonly token?: string;
  /** The hub that wrote this file; a restart of that hub keeps the URL current. */
  readonly hubId?: string;
  /**
   * SHA-256 fingerprint of the hub's certificate when its API serves HTTPS: the CLI then accepts exactly that
   * certificate, and only for `url`.
   */
  readonly fingerprint?: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['HENGE_CONFIG']) return env['HENGE_CONFIG'];
  const base = env['XDG_CONFIG_HOME'] || join(homedir(), '.config');
  return join(base, 'henge', 'cli.json');
}

export async function readConfig(path = configPath()): Promise<CliConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const parsed = JSON.parse(text) as unknown;
  if (parsed === null || typeof parsed !== 'object') return {};
  const { url, token, hubId, fingerprint } = parsed as Record<string, unknown>;
  return {
    ...(typeof url === 'string' ? { url } : {}),
    ...(typeof token === 'string' ? { token } : {}),
    ...(typeof hubId === 'string' ? { hubId } : {}),
    ...(typeof fingerprint === 'string' ? { fingerprint } : {}),
  };
}

/** Writes the file 0600 (it holds a token), atomically. */
export async function writeConfig(config: CliConfig, path = configPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}
