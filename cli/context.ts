/** Resolves how a command reaches the hub, and how it prints. */
import type { Command } from 'commander';
import { HubClient } from './client.ts';
import { readConfig } from './config.ts';
import { DEFAULT_API_HOST, DEFAULT_API_PORT } from '../hub/defaults.ts';

export interface GlobalFlags {
  url?: string;
  token?: string;
  json?: boolean;
  reason?: string;
}

export interface CommandEnv {
  readonly client: HubClient;
  readonly json: boolean;
}

export async function commandEnv(cmd: Command): Promise<CommandEnv> {
  const flags = cmd.optsWithGlobals<GlobalFlags>();
  const file = await readConfig();
  const url = flags.url ?? process.env['HENGE_URL'] ?? file.url ?? `http://${DEFAULT_API_HOST}:${DEFAULT_API_PORT}`;
  const token = flags.token ?? process.env['HENGE_TOKEN'] ?? file.token;
  return {
    client: new HubClient({ url, token, ...(flags.reason ? { reason: flags.reason } : {}) }),
    json: flags.json === true,
  };
}
