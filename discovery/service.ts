/**
 * The DNS-SD names and TXT keys of a henge hub (docs/protocol.md, "Discovery (DNS-SD, RFC 6763)"), shared
 * by the advertiser and the browser so both sides spell them the same way.
 */
import { PROTOCOL_VERSION } from '../protocol/snapshot.ts';

/** `_henge._sub._coaps._udp`: the subtype every henge hub registers under. */
export const HENGE_SUBTYPE = 'henge';

/** TXT `v`: the protocol version this code speaks. */
export const TXT_VERSION = String(PROTOCOL_VERSION);

/** Service type without underscore or protocol: `coaps` (DTLS, the default) or `coap` (`--insecure`). */
export function serviceType(secure: boolean): 'coaps' | 'coap' {
  return secure ? 'coaps' : 'coap';
}

/** `_henge._sub._coaps._udp.local`, the name a device browses. */
export function subtypeDomain(secure: boolean): string {
  return `_${HENGE_SUBTYPE}._sub._${serviceType(secure)}._udp.local`;
}

/** The DNS-SD instance name of a hub: `henge-<hub id>`. */
export function instanceName(hubId: string): string {
  return `henge-${hubId}`;
}

/** The host name of the service's SRV target: `henge-<id>` (coaps), `henge-<id>-coap` (plain), one DNS label. */
export function hostName(hubId: string, secure: boolean): string {
  return secure ? instanceName(hubId) : `${instanceName(hubId).slice(0, 63 - '-coap'.length)}-coap`;
}

/** A hub id must fit in one DNS label together with the `henge-` prefix (63 bytes) and stay readable. */
export const HUB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,56}$/;

export interface HubTxt {
  readonly hubId: string;
  readonly apiPort: number;
}

/**
 * Checks a decoded TXT record (keys are case-insensitive, RFC 6763 §6.4): `v` must be this protocol's
 * version, `id` a non-empty hub id, `api` a port. Returns the fields, or a reason why the record is not one
 * of ours.
 */
export function parseHubTxt(txt: unknown): HubTxt | { readonly reject: string } {
  if (typeof txt !== 'object' || txt === null) return { reject: 'no TXT record' };
  const fields = new Map<string, string>();
  for (const [key, value] of Object.entries(txt)) {
    const k = key.toLowerCase();
    // RFC 6763 §6.4: only the first occurrence of a key counts.
    if (fields.has(k)) continue;
    if (typeof value === 'string') fields.set(k, value);
    else if (Buffer.isBuffer(value)) fields.set(k, value.toString('utf8'));
    else if (typeof value === 'number' || typeof value === 'boolean') fields.set(k, String(value));
    else fields.set(k, '');
  }
  const v = fields.get('v');
  if (v !== TXT_VERSION) return { reject: v === undefined ? 'TXT has no v' : `TXT v=${v}, this side speaks v=${TXT_VERSION}` };
  const id = fields.get('id') ?? '';
  if (id === '' || id.length > 255 || /[\s\x00-\x1f]/.test(id)) return { reject: 'TXT id missing or not a hub id' };
  const api = fields.get('api') ?? '';
  const apiPort = Number(api);
  if (!/^\d{1,5}$/.test(api) || apiPort < 1 || apiPort > 65535) return { reject: `TXT api=${api} is not a port` };
  return { hubId: id, apiPort };
}
