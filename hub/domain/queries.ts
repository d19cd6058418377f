/** Read side: answers from the in-memory views, except history, which reads the log. */
import type { TokenRole } from './tokens.ts';
import { EventType } from './events.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import { effectiveWithProvenance } from './config.ts';
import type { DeviceRecord, GroupRecord, Provenance } from './config.ts';
import type { HubCore } from './core.ts';
import type { HengeEvent } from './events.ts';
import type { DeviceRuntime } from './runtime.ts';
import type { DeviceReport } from './state.ts';
import type { SchemaRecord } from './schema.ts';
import { matches, parseSelector } from './selector.ts';

export function getDevice(core: HubCore, id: string): DeviceRecord {
  const d = core.state.devices.get(id);
  if (!d) throw new NotFoundError(`device ${id} does not exist`, { device: id });
  return d;
}

export function listDevices(core: HubCore, selector?: string): DeviceRecord[] {
  const sel = selector !== undefined ? parseSelector(selector) : undefined;
  const out = [...core.state.devices.values()].filter((d) => !sel || matches(sel, d.labels));
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

export interface EffectiveConfig {
  readonly device: string;
  readonly version: number;
  /** Hex of the 8-byte snapshot hash (the CoAP ETag). */
  readonly hash: string;
  readonly values: Readonly<Record<string, unknown>>;
  readonly provenance: Readonly<Record<string, Provenance>>;
  readonly schema: { readonly name: string; readonly version: number } | null;
  readonly groups: readonly string[];
}

export function effectiveConfig(core: HubCore, id: string): EffectiveConfig {
  const s = core.state;
  const d = getDevice(core, id);
  const snap = s.snapshots.get(id);
  if (!snap) throw new NotFoundError(`device ${id} has no snapshot`, { device: id });
  const schema = s.schemaOf(d);
  const groups = s.groupsOf(id);
  return {
    device: id,
    version: snap.snapshot.version,
    hash: Buffer.from(snap.snapshot.hash).toString('hex'),
    values: snap.snapshot.values,
    provenance: effectiveWithProvenance(d, groups, schema),
    schema: schema ? { name: schema.name, version: schema.version } : null,
    groups: groups.map((g) => g.name).reverse(),
  };
}

/** Runtime state of a device: desired vs applied, the last ack, liveness and telemetry. */
export interface DeviceState {
  readonly device: string;
  readonly online: boolean;
  readonly observing: boolean;
  readonly lastSeen: number | null;
  readonly endpoint: string | null;
  readonly desiredVersion: number;
  readonly appliedVersion: number | null;
  /** converged: applied the desired version; pending: not yet; failed: last ack was not "applied". */
  readonly sync: 'converged' | 'pending' | 'failed';
  readonly lastAck: DeviceReport['lastAck'];
  readonly duplicate: DeviceReport['duplicate'];
  readonly telemetry: { readonly values: Readonly<Record<string, unknown>>; readonly reports: number; readonly lastAt: number } | null;
}

export function deviceState(core: HubCore, runtime: DeviceRuntime | undefined, id: string): DeviceState {
  getDevice(core, id);
  const desired = core.state.snapshots.get(id)?.snapshot.version ?? 0;
  const report = core.state.reports.get(id);
  const live = runtime?.get(id);
  const applied = report?.appliedVersion ?? null;
  const lastAck = report?.lastAck ?? null;
  const sync = applied !== null && applied >= desired ? 'converged' : lastAck && lastAck.status !== 'applied' && lastAck.version === desired ? 'failed' : 'pending';
  const t = runtime?.telemetryOf(id);
  return {
    device: id,
    online: runtime?.online(id) ?? false,
    observing: live?.observing ?? false,
    lastSeen: live?.lastSeen ?? null,
    endpoint: live?.endpoint ?? null,
    desiredVersion: desired,
    appliedVersion: applied,
    sync,
    lastAck,
    duplicate: report?.duplicate ?? null,
    telemetry: t ? { values: t.values, reports: t.reports, lastAt: t.lastAt } : null,
  };
}

export function listSchemas(core: HubCore): SchemaRecord[] {
  const out: SchemaRecord[] = [];
  for (const name of [...core.state.schemas.keys()].sort()) {
    const s = core.state.latestSchema(name);
    if (s) out.push(s);
  }
  return out;
}

export function getSchema(core: HubCore, name: string, version?: number): SchemaRecord {
  const list = core.state.schemas.get(name);
  const s = version === undefined ? list?.[list.length - 1] : list?.find((x) => x.version === version);
  if (!s) throw new NotFoundError(`schema ${name}${version !== undefined ? ` v${version}` : ''} does not exist`, { schema: name });
  return s;
}

export function schemaVersions(core: HubCore, name: string): SchemaRecord[] {
  const list = core.state.schemas.get(name);
  if (!list) throw new NotFoundError(`schema ${name} does not exist`, { schema: name });
  return [...list];
}

export function listGroups(core: HubCore): Array<GroupRecord & { members: number }> {
  return core.state
    .allGroups()
    .sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : 1))
    .map((g) => ({ ...g, members: core.state.groupMembers(g.name).size }));
}

export function getGroup(core: HubCore, name: string): GroupRecord & { members: string[] } {
  const g = core.state.group(name);
  if (!g) throw new NotFoundError(`group ${name} does not exist`, { group: name });
  return { ...g, members: [...core.state.groupMembers(name)].sort() };
}

/** Events only admins see: token and provisioning-token changes, failed authentications. */
const ADMIN_EVENTS: ReadonlySet<string> = new Set([EventType.TokenCreated, EventType.TokenRevoked, EventType.AuthFailed, EventType.ProvisioningCreated, EventType.ProvisioningRevoked]);

export interface EventFilter {
  /** Leave out the admin's history: token changes and failed authentications (for operator and viewer tokens). */
  readonly hideAdmin?: boolean;
  readonly device?: string;
  readonly key?: string;
  readonly type?: string;
  /** Milliseconds since the epoch, inclusive. */
  readonly since?: number;
  readonly until?: number;
  /** Oldest first from `after` (exclusive), or newest first from `before` (exclusive). */
  readonly after?: number;
  readonly before?: number;
  readonly order?: 'asc' | 'desc';
  readonly limit?: number;
}

export interface EventPage {
  readonly events: HengeEvent[];
  /** Pass as `after` (asc) or `before` (desc) for the next page; null when the log has no more. */
  readonly next: number | null;
}

/** Log entries examined per request at most, so a sparse filter over a long log stays bounded. */
const SCAN_BUDGET = 20_000;
export const MAX_EVENT_PAGE = 1000;

function eventMatches(e: HengeEvent, f: EventFilter): boolean {
  if (f.type !== undefined && e.type !== f.type && !e.type.startsWith(`${f.type}.`)) return false;
  if (f.since !== undefined && e.time < f.since) return false;
  if (f.until !== undefined && e.time > f.until) return false;
  const data = e.data as { device?: string; changes?: ReadonlyArray<{ key: string }> };
  if (f.device !== undefined && data.device !== f.device) return false;
  if (f.key !== undefined && !(data.changes ?? []).some((c) => c.key === f.key)) return false;
  return true;
}

export async function events(core: HubCore, f: EventFilter): Promise<EventPage> {
  const limit = f.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_EVENT_PAGE) {
    throw new ValidationError(`limit must be between 1 and ${MAX_EVENT_PAGE}`, { violations: [{ field: 'limit', rule: 'range', message: `1..${MAX_EVENT_PAGE}` }] });
  }
  const desc = f.order === 'desc';
  const last = core.state.seq;
  const range = desc
    ? { from: 1, to: Math.min(last, (f.before ?? last + 1) - 1), reverse: true }
    : { from: (f.after ?? 0) + 1, to: last };
  const out: HengeEvent[] = [];
  let scanned = 0;
  let lastSeq: number | null = null;
  if (range.from > range.to) return { events: out, next: null };
  for await (const [seq, json] of core.store.log(range)) {
    scanned++;
    lastSeq = seq;
    const e = JSON.parse(json) as HengeEvent;
    if (f.hideAdmin && ADMIN_EVENTS.has(e.type)) continue;
    // A token's hash stays in the log (the views are rebuilt from it) but never leaves the hub.
    if (!eventMatches(e, f)) continue;
    out.push(e.type === EventType.TokenCreated ? { ...e, data: { ...e.data, hash: '' } } : e);
    if (out.length >= limit || scanned >= SCAN_BUDGET) break;
  }
  const exhausted = lastSeq === null || (desc ? lastSeq <= 1 : lastSeq >= last);
  return { events: out, next: exhausted ? null : lastSeq };
}

export function listTokens(core: HubCore): Array<{ id: string; name: string; role: TokenRole; createdAt: number; expiresAt: number | null; revokedAt: number | null }> {
  return [...core.state.tokens.values()].map(({ id, name, role, createdAt, expiresAt, revokedAt }) => ({ id, name, role, createdAt, expiresAt, revokedAt }));
}

export interface FleetSummary {
  readonly devices: number;
  readonly online: number;
  readonly offline: number;
  readonly converged: number;
  readonly pending: number;
  readonly failed: number;
}

/** Every device's state and the counts `henge status` shows. */
export function fleet(core: HubCore, runtime: DeviceRuntime | undefined): { summary: FleetSummary; devices: DeviceState[] } {
  const devices = listDevices(core).map((d) => deviceState(core, runtime, d.id));
  const count = (f: (s: DeviceState) => boolean): number => devices.filter(f).length;
  return {
    summary: {
      devices: devices.length,
      online: count((s) => s.online),
      offline: count((s) => !s.online),
      converged: count((s) => s.sync === 'converged'),
      pending: count((s) => s.sync === 'pending'),
      failed: count((s) => s.sync === 'failed'),
    },
    devices,
  };
}
