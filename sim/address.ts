/** `host`, `host:port`, `[v6]:port` or `v6` -> where the simulated devices send (default port 5683). */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export const DEFAULT_COAP_PORT = 5683;

export interface HubAddress {
  readonly host: string;
  readonly port: number;
}

export class HubAddressError extends Error {
  readonly code = 'HENGE_E_SIM_ADDRESS';
}

export function parseHubAddress(text: string): HubAddress {
  const t = text.trim();
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracket) {
    host = bracket[1] ?? '';
    portText = bracket[2];
  } else if (isIP(t) === 6) {
    host = t;
  } else {
    const colon = t.lastIndexOf(':');
    host = colon >= 0 ? t.slice(0, colon) : t;
    portText = colon >= 0 ? t.slice(colon + 1) : undefined;
  }
  if (host === '') throw new HubAddressError(`hub address ${JSON.stringify(text)} has no host`);
  const port = portText === undefined ? DEFAULT_COAP_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new HubAddressError(`hub address ${JSON.stringify(text)}: the port must be 1..65535`);
  return { host, port };
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
