/**
 * Where the hub is. The agent asks a HubLocator before every (re)connection, so a static `--hub` address
 * and, later, DNS-SD discovery (docs/protocol.md, "Discovery") plug in the same way: a discovery locator
 * browses `_henge._sub._coap._udp`, returns the instance's address, port and TXT `id`, and the agent pins
 * that id.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { DEFAULT_COAP_PORT } from '../hub/defaults.ts';
import { HubAddressError } from './errors.ts';

/** RFC 7252's default port for plain CoAP. */
export const COAP_DEFAULT_PORT = DEFAULT_COAP_PORT;

export interface HubEndpoint {
  /** An IP address (never a name). */
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  /** The hub's id when the locator knows it (DNS-SD TXT `id`); the agent pins it. */
  readonly hubId?: string;
  /** How the hub was found, for logs: `--hub 127.0.0.1:5683`, `mdns henge-…`. */
  readonly source: string;
}

/** `pinnedHubId`: the hub this device is pinned to, if any; a locator that can choose should take it. */
export type HubLocator = (signal?: AbortSignal, pinnedHubId?: string) => Promise<HubEndpoint>;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (no port then: `defaultPort`). */
export function parseHubAddress(text: string, defaultPort: number = COAP_DEFAULT_PORT): HostPort {
  const t = text.trim();
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
    if (isIP(host) !== 6) throw new HubAddressError(`--hub ${text}: [${host}] is not an IPv6 address`);
  } else if ((t.match(/:/g) ?? []).length > 1) {
    host = t;
    if (isIP(host) !== 6) throw new HubAddressError(`--hub ${text}: not an IPv6 address (write [addr]:port to give a port)`);
  } else {
    const i = t.indexOf(':');
    host = i < 0 ? t : t.slice(0, i);
    portText = i < 0 ? undefined : t.slice(i + 1);
  }
  if (host === '' || /[\s/]/.test(host)) throw new HubAddressError(`--hub ${text}: give host[:port]`);
  let port = defaultPort;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new HubAddressError(`--hub ${text}: port must be 1..65535`);
  }
  return { host, port };
}

/** A fixed address (`--hub`); names are resolved again at every connection, so a DHCP change is followed. */
export function staticLocator(text: string, defaultPort: number = COAP_DEFAULT_PORT): HubLocator {
  const { host, port } = parseHubAddress(text, defaultPort);
  const source = `--hub ${text}`;
  return async () => {
    const literal = isIP(host);
    if (literal === 4 || literal === 6) return { address: host, family: literal, port, source };
    try {
      const r = await lookup(host, { verbatim: true });
      return { address: r.address, family: r.family === 6 ? 6 : 4, port, source };
    } catch (err) {
      throw new HubAddressError(`cannot resolve hub host ${host}: ${(err as Error).message}`, { cause: err });
    }
  };
}

/** How long one DNS-SD search waits for the hub before the agent backs off and tries again. */
export const DISCOVERY_TIMEOUT_MS = 5000;

/**
 * DNS-SD (docs/protocol.md, "Discovery"): browses `_henge._sub._coap._udp` (`_coaps` when secure) and takes
 * the pinned hub, or the first hub that answers when the device has no pin yet (the agent then pins it).
 */
export function discoveryLocator(secure: boolean): HubLocator {
  return async (signal, pinnedHubId) => {
    const { findHub } = await import('../discovery/index.ts');
    const hub = await findHub({
      secure,
      timeoutMs: DISCOVERY_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
      ...(pinnedHubId !== undefined ? { pinnedHubId } : {}),
    });
    return { address: hub.host, family: hub.family, port: hub.port, hubId: hub.hubId, source: `mdns ${hub.name}` };
  };
}
