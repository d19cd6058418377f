/** Where the simulated devices send: `--hub` parsed as the agent parses it, resolved once. */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** The agent's parser: one syntax for `--hub` everywhere (host, host:port, [v6]:port, bare v6). */
export { parseHubAddress } from '../agent/hub-locator.ts';
export { HubAddressError } from '../agent/errors.ts';
export { DEFAULT_COAP_PORT } from '../hub/defaults.ts';

export interface HubAddress {
  readonly host: string;
  readonly port: number;
}

/** The address as an IP literal (a name is resolved once, IPv4 first), and its family. */
export async function resolveHub(a: HubAddress): Promise<HubAddress & { readonly family: 4 | 6 }> {
  const family = isIP(a.host);
  if (family === 4 || family === 6) return { ...a, family };
  const r = await lookup(a.host, { order: 'ipv4first' });
  return { host: r.address, port: a.port, family: r.family === 6 ? 6 : 4 };
}

/** The local address the devices' sockets bind to: loopback for a loopback hub, else any address. */
export function bindAddressFor(hub: { readonly host: string; readonly family: 4 | 6 }): string {
  if (hub.family === 6) return hub.host === '::1' ? '::1' : '::';
  return hub.host.startsWith('127.') ? '127.0.0.1' : '0.0.0.0';
}
