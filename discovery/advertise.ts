/**
 * The hub's DNS-SD advertisement (docs/protocol.md, "Discovery (DNS-SD, RFC 6763)") with @homebridge/ciao:
 * one instance `henge-<hub id>` of `_coaps._udp` (or `_coap._udp`), subtype `_henge`, on every interface
 * with that interface's own addresses, TXT `v=1 id=<hub id> api=<http port>`; `stop()` says goodbye (TTL 0).
 *
 * ciao is loaded on the first call (not at import), because it installs `source-map-support` for the
 * whole process as a side effect; processes that only browse never load it.
 */
import { readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces, platform } from 'node:os';
import type { CiaoService, Protocol, Responder, ResponderOptions } from '@homebridge/ciao';
import { AdvertiseError } from './errors.ts';
import { HENGE_SUBTYPE, HUB_ID_PATTERN, TXT_VERSION, hostName, instanceName, serviceType } from './service.ts';

export interface AdvertiseOptions {
  readonly hubId: string;
  /** UDP port of the CoAP endpoint (the SRV port). */
  readonly coapPort: number;
  /** TCP port of the HTTP API (TXT `api`). */
  readonly apiPort: number;
  /** `_coaps._udp` when true, `_coap._udp` (`--insecure`) when false. */
  readonly secure: boolean;
  /**
   * Interface names or addresses of this host to advertise on. Default: every network link of the host
   * (Linux: every entry of /sys/class/net, so a link that gets its address later, e.g. Wi-Fi after boot,
   * is picked up when it does; elsewhere ciao's own interface detection). Each link is answered with its
   * own addresses. ciao adds the loopback interface itself.
   */
  readonly interfaces?: readonly string[];
  /** Advertise IPv6 addresses (AAAA) as well as IPv4 (A). Default true. */
  readonly ipv6?: boolean;
  /**
   * Called when another host already uses our instance name and ciao renamed ours (RFC 6762 §9), e.g.
   * `henge-<id> (2)`: two hubs with one id are on the link.
   */
  readonly onNameChange?: (name: string) => void;
}

export interface HubAdvertisement {
  /** The instance name currently advertised (it changes if a conflict forced a rename). */
  readonly name: string;
  /** Sends goodbyes (TTL 0) for every record on every interface, then frees the responder. Idempotent. */
  stop(): Promise<void>;
}

/** Resolves once the instance is probed unique and its first announcement is going out. */
export async function advertiseHub(options: AdvertiseOptions): Promise<HubAdvertisement> {
  const { hubId, coapPort, apiPort, secure } = options;
  if (typeof hubId !== 'string' || !HUB_ID_PATTERN.test(hubId)) {
    throw new AdvertiseError(`hub id ${JSON.stringify(hubId)} cannot be advertised: it must match ${String(HUB_ID_PATTERN)}`);
  }
  for (const [what, port] of [['coapPort', coapPort], ['apiPort', apiPort]] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new AdvertiseError(`${what} ${String(port)} cannot be advertised: it must be an integer 1..65535`);
    }
  }
  const interfaces = options.interfaces === undefined ? defaultInterfaces() : checkInterfaces(options.interfaces);

  const responderOptions: ResponderOptions = {};
  if (interfaces !== undefined && interfaces.length > 0) responderOptions.interface = [...interfaces];
  if (options.ipv6 === false) responderOptions.disableIpv6 = true;

  const { getResponder } = await import('@homebridge/ciao');
  const responder: Responder = getResponder(responderOptions);
  let service: CiaoService;
  try {
    service = responder.createService({
      name: instanceName(hubId),
      // ciao derives a service's host name from its instance name and probes it like the instance: the
      // second service of one hub (_coap beside _coaps with --insecure) then met the first one's A records
      // and was renamed `henge-<id> (2)`. Each type gets a host name of its own, the instance name stays.
      hostname: hostName(hubId, secure),
      type: serviceType(secure),
      protocol: 'udp' as Protocol,
      subtypes: [HENGE_SUBTYPE],
      port: coapPort,
      txt: { v: TXT_VERSION, id: hubId, api: String(apiPort) },
      ...(options.ipv6 === false ? { disabledIpv6: true } : {}),
    });
  } catch (err) {
    await responder.shutdown();
    throw new AdvertiseError(`cannot create the mDNS service: ${errorMessage(err)}`, { cause: err });
  }
  let name = instanceName(hubId);
  service.on('name-change', (newName: string) => {
    name = newName;
    options.onNameChange?.(newName);
  });

  try {
    await service.advertise();
  } catch (err) {
    await service.destroy().catch(() => undefined);
    await responder.shutdown();
    throw new AdvertiseError(`cannot advertise ${instanceName(hubId)}: ${errorMessage(err)}`, { cause: err });
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      let failure: unknown;
      try {
        // destroy() = end() (goodbye packets, TTL 0, resolved once the last one is sent) + forget the service.
        await service.destroy();
      } catch (err) {
        failure = err;
      }
      // The responder closes its sockets once no service of this process uses it any more.
      await responder.shutdown();
      if (failure !== undefined) {
        throw new AdvertiseError(`goodbye for ${name} failed: ${errorMessage(failure)}`, { cause: failure });
      }
    })();
    return stopping;
  };
  return {
    get name() {
      return name;
    },
    stop,
  };
}

/**
 * Every network link of this host but loopback, by name. On Linux from /sys/class/net, because ciao's own
 * detection parses `ip -o link show` and takes `veth0@if5` or `eth0.10@eth0` as the interface name, which
 * os.networkInterfaces() does not know, so such links were silently left out. `undefined` elsewhere: ciao
 * detects them itself.
 */
function defaultInterfaces(): string[] | undefined {
  if (platform() !== 'linux') return undefined;
  let names: string[];
  try {
    names = readdirSync('/sys/class/net');
  } catch {
    return undefined;
  }
  const loopback = new Set<string>();
  for (const [ifname, infos] of Object.entries(networkInterfaces())) {
    if (infos?.some((i) => i.internal)) loopback.add(ifname);
  }
  const links = names.filter((n) => n !== 'lo' && !loopback.has(n) && n !== 'bonding_masters').sort();
  return links.length > 0 ? links : undefined;
}

/** Interface names or local addresses given by the caller must exist: ciao would quietly skip them. */
function checkInterfaces(requested: readonly string[]): string[] {
  if (requested.length === 0) throw new AdvertiseError('interfaces is empty: give at least one interface name or address, or leave it out');
  const local = networkInterfaces();
  let linkNames: string[] = [];
  try {
    linkNames = readdirSync('/sys/class/net');
  } catch {
    // not Linux, or no sysfs: os.networkInterfaces() is all we know
  }
  for (const entry of requested) {
    if (isIP(entry) !== 0) {
      const owned = Object.values(local).some((infos) => infos?.some((i) => i.address === entry));
      if (!owned) throw new AdvertiseError(`interface address ${entry} is not an address of this host`);
    } else if (local[entry] === undefined && !linkNames.includes(entry)) {
      throw new AdvertiseError(`no network interface named ${JSON.stringify(entry)} on this host`);
    }
  }
  return [...requested];
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
