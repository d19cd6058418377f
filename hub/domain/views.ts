/**
 * Key layout of the materialized views and the log in the store. Keys are text; the store sorts them
 * bytewise, so numbers are zero-padded to keep numeric order.
 *
 *   m!seq              last committed log sequence number
 *   m!hub              hub id and incarnation
 *   d!<device>         device record (name, labels, schema, device-layer values)
 *   v!<device>         version of the device's snapshot
 *   g!<group>          group record (selector, priority, group-layer values)
 *   s!<schema>!<ver>   one published schema version
 *   t!<token id>       admin token (hash only)
 *   r!<device>         what the device last reported: applied version, last ack, duplicate flag
 *   l!<seq>            log event
 */

export const LOG_PREFIX = 'l!';
const SEQ_DIGITS = 16;
const VERSION_DIGITS = 10;

export const ViewKey = {
  seq: 'm!seq',
  meta: 'm!hub',
  device: (id: string): string => `d!${id}`,
  version: (id: string): string => `v!${id}`,
  group: (name: string): string => `g!${name}`,
  schema: (name: string, version: number): string => `s!${name}!${String(version).padStart(VERSION_DIGITS, '0')}`,
  token: (id: string): string => `t!${id}`,
  report: (id: string): string => `r!${id}`,
} as const;

export function logKey(seq: number): string {
  return LOG_PREFIX + String(seq).padStart(SEQ_DIGITS, '0');
}

export function seqOfLogKey(key: string): number {
  return Number(key.slice(LOG_PREFIX.length));
}

export type ParsedViewKey =
  | { kind: 'seq' }
  | { kind: 'meta' }
  | { kind: 'device' | 'version' | 'group' | 'token' | 'report'; id: string }
  | { kind: 'schema'; id: string; version: number };

export class UnknownViewKeyError extends Error {
  readonly code = 'HENGE_E_UNKNOWN_VIEW_KEY';
}

export function parseViewKey(key: string): ParsedViewKey {
  if (key === ViewKey.seq) return { kind: 'seq' };
  if (key === ViewKey.meta) return { kind: 'meta' };
  const rest = key.slice(2);
  switch (key.slice(0, 2)) {
    case 'd!':
      return { kind: 'device', id: rest };
    case 'v!':
      return { kind: 'version', id: rest };
    case 'g!':
      return { kind: 'group', id: rest };
    case 't!':
      return { kind: 'token', id: rest };
    case 'r!':
      return { kind: 'report', id: rest };
    case 's!': {
      const bang = rest.lastIndexOf('!');
      return { kind: 'schema', id: rest.slice(0, bang), version: Number(rest.slice(bang + 1)) };
    }
  }
  throw new UnknownViewKeyError(`not a view key: ${key}`);
}
