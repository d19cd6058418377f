/**
 * Which of a hub's advertised addresses a device should use: one reachable on the same link first
 * (IPv4, then IPv6), then routed ones (IPv4, then IPv6). Pure, so it is tested with made-up interfaces.
 */
import { BlockList, isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';

export type InterfaceMap = Readonly<Record<string, readonly NetworkInterfaceInfo[] | undefined>>;

export interface RankedAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** True when the address lies on a subnet of one of our interfaces, or is where the answer came from. */
  readonly onLink: boolean;
}

/**
 * Orders `addresses` (A/AAAA of the hub, plus `source`, the address the mDNS answer came from, when it is
 * not among them) best first and drops duplicates. An IPv6 link-local address gets a zone (`%eth0`) when
 * exactly one of our links has IPv6 link-local addresses; without one it is unusable and goes last.
 */
export function rankAddresses(addresses: readonly string[], source: string | undefined, local: InterfaceMap): RankedAddress[] {
  const v4 = new BlockList();
  const v6 = new BlockList();
  const linkLocalLinks = new Set<string>();
  for (const [name, infos] of Object.entries(local)) {
    for (const info of infos ?? []) {
      const [net, bits] = info.cidr?.split('/') ?? [];
      const prefix = Number(bits);
      if (net === undefined || !Number.isInteger(prefix)) continue;
      const family = familyOf(info.family);
      if (family === 4) v4.addSubnet(net, prefix, 'ipv4');
      else if (family === 6) {
        if (isLinkLocal6(info.address)) {
          if (!info.internal) linkLocalLinks.add(name);
        } else v6.addSubnet(net, prefix, 'ipv6');
      }
    }
  }
  const zone = linkLocalLinks.size === 1 ? [...linkLocalLinks][0] : undefined;

  const seen = new Set<string>();
  const ranked: { entry: RankedAddress; rank: number; order: number }[] = [];
  const all = source !== undefined && !addresses.includes(source) ? [...addresses, source] : addresses;
  all.forEach((raw, order) => {
    const family = isIP(raw.split('%')[0] ?? '');
    if (family !== 4 && family !== 6) return;
    let address = raw;
    let onLink: boolean;
    let rank: number;
    if (family === 4) {
      onLink = raw === source || v4.check(raw, 'ipv4');
      rank = onLink ? 0 : 2;
    } else if (isLinkLocal6(raw)) {
      if (!raw.includes('%') && zone !== undefined) address = `${raw}%${zone}`;
      onLink = address.includes('%');
      rank = onLink ? 1 : 4;
    } else {
      onLink = raw === source || v6.check(raw, 'ipv6');
      rank = onLink ? 1 : 3;
    }
    if (seen.has(address)) return;
    seen.add(address);
    ranked.push({ entry: { address, family, onLink }, rank, order });
  });
  ranked.sort((a, b) => a.rank - b.rank || a.order - b.order);
  return ranked.map((r) => r.entry);
}

function isLinkLocal6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

function familyOf(family: string | number): 4 | 6 | 0 {
  if (family === 'IPv4' || family === 4) return 4;
  if (family === 'IPv6' || family === 6) return 6;
  return 0;
}
