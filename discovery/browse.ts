/**
 * Finding hubs over DNS-SD (docs/protocol.md, "Discovery (DNS-SD, RFC 6763)") with bonjour-service: browse
 * `_henge._sub._coaps._udp` (or `_coap._udp`), accept instances whose TXT has `v=1`, an `id` (the pinned
 * one, when a device pinned a hub) and an `api` port, and pick the address to use: one on our own link
 * first, IPv4 before IPv6.
 *
 * bonjour-service sends its queries out of the default multicast interface (the route for 224.0.0.251) but
 * listens on every IPv4 interface, so on a host with several links a hub on another link is found from its
 * own announcements (at start-up) rather than from our queries.
 */
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import { Bonjour } from 'bonjour-service';
import type { Browser, Service } from 'bonjour-service';
import { rankAddresses } from './address.ts';
import { BrowseError, HubNotFoundError } from './errors.ts';
import { HENGE_SUBTYPE, parseHubTxt, serviceType, subtypeDomain } from './service.ts';

export interface DiscoveredHub {
  readonly hubId: string;
  /** The address to use: on our link if the hub has one there, IPv4 first. Link-local IPv6 carries a zone. */
  readonly host: string;
  readonly family: 4 | 6;
  /** CoAP port (SRV). */
  readonly port: number;
  /** HTTP API port (TXT `api`). */
  readonly apiPort: number;
  /** Every address the hub advertised (and the one its answer came from), best first; `host` is the first. */
  readonly addresses: readonly string[];
  /** DNS-SD instance name, normally `henge-<hub id>`. */
  readonly name: string;
  /** SRV target, e.g. `henge-<hub id>.local`. */
  readonly hostname: string;
  /** Found as `_coaps._udp` (true) or `_coap._udp` (false). */
  readonly secure: boolean;
}

export interface BrowseOptions {
  /** Browse `_coaps._udp` (true) or `_coap._udp` (false). */
  readonly secure: boolean;
  /** Only this hub id counts; other hubs are ignored (reported to `onIgnore`). */
  readonly pinnedHubId?: string;
  readonly signal?: AbortSignal;
  /** Told about every instance that is not taken, and why (wrong version, other hub id, no address...). */
  readonly onIgnore?: (instance: string, reason: string) => void;
}

export interface FindHubOptions extends BrowseOptions {
  /** Reject with HubNotFoundError (HENGE_E_HUB_NOT_FOUND) when no matching hub answered within this time. */
  readonly timeoutMs: number;
}

export interface BrowseHubsOptions extends BrowseOptions {
  /** How long to listen for answers. */
  readonly windowMs: number;
}

export interface WatchHubsOptions extends BrowseOptions {
  /** A matching hub appeared, or its SRV/TXT record changed. */
  readonly onUp: (hub: DiscoveredHub) => void;
  /** A hub said goodbye (TTL 0). */
  readonly onDown?: (hub: DiscoveredHub) => void;
  /** The mDNS socket failed; browsing has stopped. */
  readonly onError: (err: Error) => void;
}

export interface HubWatch {
  /** The hubs seen and not gone, in the order they appeared. */
  readonly hubs: readonly DiscoveredHub[];
  stop(): Promise<void>;
}

/** RFC 6762 §5.2 continuous querying: the second query after 1 s, then doubling intervals, at most 60 s. */
const FIRST_REQUERY_MS = 1000;
const MAX_REQUERY_MS = 60_000;

/** Browses until stopped; calls `onUp` / `onDown` as hubs come and go. */
export function watchHubs(options: WatchHubsOptions): HubWatch {
  const { secure, pinnedHubId } = options;
  const hubs = new Map<string, DiscoveredHub>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const bonjour = new Bonjour({}, (err: unknown) => fail(err));
  const mdns = mdnsSocket(bonjour);
  const onMdnsError = (err: unknown): void => fail(err);
  mdns.on('error', onMdnsError);

  const ignore = (instance: string, reason: string): void => options.onIgnore?.(instance, reason);

  const consider = (service: Service): void => {
    if (stopped) return;
    const key = service.fqdn.toLowerCase();
    const instance = service.name;
    const txt: unknown = service.txt;
    const parsed = parseHubTxt(txt);
    let hub: DiscoveredHub | undefined;
    if ('reject' in parsed) ignore(instance, parsed.reject);
    else if (pinnedHubId !== undefined && parsed.hubId !== pinnedHubId) ignore(instance, `hub id ${parsed.hubId}, pinned ${pinnedHubId}`);
    else if (!Number.isInteger(service.port) || service.port < 1 || service.port > 65535) ignore(instance, `SRV port ${String(service.port)}`);
    else {
      const ranked = rankAddresses(service.addresses ?? [], service.referer?.address, networkInterfaces());
      const best = ranked[0];
      if (best === undefined) ignore(instance, 'no address');
      else {
        hub = {
          hubId: parsed.hubId,
          host: best.address,
          family: best.family,
          port: service.port,
          apiPort: parsed.apiPort,
          addresses: ranked.map((r) => r.address),
          name: instance,
          hostname: service.host,
          secure,
        };
      }
    }
    const known = hubs.get(key);
    if (hub === undefined) {
      // An update that made a known hub unacceptable (e.g. a TXT change) takes it away.
      if (known !== undefined) {
        hubs.delete(key);
        options.onDown?.(known);
      }
      return;
    }
    hubs.set(key, hub);
    options.onUp(hub);
  };

  const gone = (service: Service): void => {
    const key = service.fqdn.toLowerCase();
    const known = hubs.get(key);
    if (known === undefined || stopped) return;
    hubs.delete(key);
    options.onDown?.(known);
  };

  // bonjour-service puts `name` in front of the type, which is exactly how a subtype is browsed:
  // `_henge._sub` + `._coaps._udp.local`. (Its `subtypes` browse option does not change the query.)
  const browser: Browser = bonjour.find({ type: serviceType(secure), protocol: 'udp', name: `_${HENGE_SUBTYPE}._sub` });
  browser.on('up', consider);
  browser.on('txt-update', consider);
  browser.on('srv-update', consider);
  browser.on('down', gone);

  let interval = FIRST_REQUERY_MS;
  const requery = (): void => {
    timer = setTimeout(() => {
      if (stopped) return;
      browser.update();
      interval = Math.min(interval * 2, MAX_REQUERY_MS);
      requery();
    }, interval);
  };
  requery();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= new Promise<void>((resolve) => {
      stopped = true;
      clearTimeout(timer);
      browser.stop();
      bonjour.destroy(() => {
        mdns.off('error', onMdnsError);
        resolve();
      });
    });
    return stopping;
  };

  function fail(err: unknown): void {
    if (stopped) return;
    const error = new BrowseError(`mDNS browse for ${subtypeDomain(secure)} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    void stop().then(() => options.onError(error));
  }

  return {
    get hubs() {
      return [...hubs.values()];
    },
    stop,
  };
}

/**
 * Watches until `onUp` (a hub appeared) or `onTimeout` (after `ms`) settles the promise, or the signal
 * aborts it; settles once, after the socket is closed, so a caller that exits right away leaves nothing behind.
 */
function watchUntil<T>(
  options: BrowseOptions,
  ms: number,
  onUp: (hub: DiscoveredHub) => T | undefined,
  onTimeout: (watch: HubWatch) => { value: T } | { error: Error },
): Promise<T> {
  const { signal } = options;
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      signal?.removeEventListener('abort', onAbort);
      void watch.stop().then(outcome);
    };
    const watch = watchHubs({
      ...options,
      onUp: (hub) => {
        const value = onUp(hub);
        if (value !== undefined) settle(() => resolve(value));
      },
      onError: (err) => settle(() => reject(err)),
    });
    const deadline = setTimeout(() => {
      const r = onTimeout(watch);
      settle(() => ('error' in r ? reject(r.error) : resolve(r.value)));
    }, ms);
    const onAbort = (): void => settle(() => reject(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Resolves with the first matching hub; rejects with HubNotFoundError after `timeoutMs`. */
export function findHub(options: FindHubOptions): Promise<DiscoveredHub> {
  return watchUntil<DiscoveredHub>(options, options.timeoutMs, (hub) => hub, () => {
    const who = options.pinnedHubId === undefined ? 'no hub answered' : `hub ${options.pinnedHubId} did not answer`;
    return { error: new HubNotFoundError(`${who} on ${subtypeDomain(options.secure)} within ${options.timeoutMs} ms`) };
  });
}

/** Every matching hub seen within `windowMs`, sorted by hub id (for `henge discover`). */
export function browseHubs(options: BrowseHubsOptions): Promise<DiscoveredHub[]> {
  return watchUntil<DiscoveredHub[]>(options, options.windowMs, () => undefined, (watch) => ({
    value: [...watch.hubs].sort((a, b) => (a.hubId < b.hubId ? -1 : a.hubId > b.hubId ? 1 : 0)),
  }));
}

/**
 * bonjour-service does not forward the errors of its multicast-dns socket (EADDRINUSE, EACCES), and an
 * EventEmitter 'error' nobody listens to kills the process, so we listen on the socket's emitter ourselves.
 */
function mdnsSocket(bonjour: Bonjour): EventEmitter {
  const server: unknown = Reflect.get(bonjour, 'server');
  const mdns: unknown = typeof server === 'object' && server !== null ? Reflect.get(server, 'mdns') : undefined;
  if (!(mdns instanceof EventEmitter)) {
    bonjour.destroy();
    throw new BrowseError('bonjour-service has no multicast-dns emitter at .server.mdns (library changed?): cannot watch socket errors');
  }
  return mdns;
}
