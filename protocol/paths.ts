/** Resource paths of protocol v1 (docs/protocol.md, "Resources"). */

export const DEVICE_PREFIX = 'd';

export const Resource = {
  Config: 'c',
  Ack: 'a',
  Telemetry: 't',
} as const;
export type Resource = (typeof Resource)[keyof typeof Resource];

/** Device ids (and the hub's other ids): lowercase, digits and dashes, 1-63 characters, no leading dash. */
export const DEVICE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function devicePath(id: string, r: Resource): string[] {
  return [DEVICE_PREFIX, id, r];
}

/** `['d', id, 'c']` -> `{ device: id, resource: 'c' }`; undefined for anything else. */
export function parseDevicePath(segments: readonly string[]): { device: string; resource: Resource } | undefined {
  if (segments.length !== 3 || segments[0] !== DEVICE_PREFIX) return undefined;
  const [, device = '', r] = segments;
  if (!DEVICE_ID_PATTERN.test(device)) return undefined;
  if (r !== Resource.Config && r !== Resource.Ack && r !== Resource.Telemetry) return undefined;
  return { device, resource: r };
}
