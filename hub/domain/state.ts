/**
 * The hub's materialized views, in memory, and the reducer that moves them forward one event at a time.
 *
 * The same reducer serves three callers: commands (apply the events they just appended), start-up (load
 * the views as stored, no replay) and `--verify` (replay the whole log into a fresh state and compare).
 * Because the views are a function of the log, a view that disagrees with its log is a bug or corruption.
 */
import type { TokenRole } from './tokens.ts';
import { buildSnapshot, buildSnapshotIfChanged } from '../../protocol/snapshot.ts';
import type { ConfigValue, Snapshot } from '../../protocol/snapshot.ts';
import type { AckStatusName } from '../../protocol/ack.ts';
import { compareGroupsForMerge, effectiveValues } from './config.ts';
import type { DeviceRecord, GroupRecord } from './config.ts';
import { EventType } from './events.ts';
import type { HengeEvent } from './events.ts';
import type { SchemaRecord } from './schema.ts';
import { matches, parseSelector } from './selector.ts';
import type { Selector } from './selector.ts';
import { ViewKey, parseViewKey } from './views.ts';

export interface HubMeta {
  readonly hubId: string;
  /** 16 hex digits; see protocol/snapshot.ts. */
  readonly incarnation: string;
}

export interface TokenRecord {
  readonly id: string;
  readonly name: string;
  /** SHA-256 of the token's secret part, hex. */
  readonly hash: string;
  readonly createdAt: number;
  readonly revokedAt: number | null;
  readonly role: TokenRole;
  /** ms since the epoch; null: never (tokens made before expiry existed). */
  readonly expiresAt: number | null;
}

/** What a device last reported, from its acks (persisted: it is history, not liveness). */
export interface DeviceReport {
  readonly appliedVersion: number | null;
  readonly lastAck: { readonly version: number; readonly status: AckStatusName; readonly message?: string; readonly time: number; readonly latencyMs?: number } | null;
  /** Set when two endpoints alternated for this identity; the endpoints seen. */
  readonly duplicate: { readonly endpoints: readonly string[]; readonly time: number } | null;
}

export interface BuiltSnapshot {
  readonly snapshot: Snapshot;
  /** The CBOR bytes that go on the wire, encoded once per change. */
  readonly bytes: Uint8Array;
}

/** What one or more events changed: view keys to write, devices whose config must be recomputed. */
export class Touched {
  readonly keys = new Set<string>();
  readonly devices = new Set<string>();
  /** Devices whose snapshot version moved (what the push path notifies). */
  readonly changedSnapshots = new Set<string>();
}

interface GroupEntry {
  record: GroupRecord;
  selector: Selector;
  members: Set<string>;
}

const NO_INCARNATION = new Uint8Array(8);
const NO_REPORT: DeviceReport = { appliedVersion: null, lastAck: null, duplicate: null };

export class HubState {
  seq = 0;
  meta: HubMeta | null = null;
  readonly devices = new Map<string, DeviceRecord>();
  readonly schemas = new Map<string, SchemaRecord[]>();
  readonly tokens = new Map<string, TokenRecord>();
  readonly versions = new Map<string, number>();
  readonly snapshots = new Map<string, BuiltSnapshot>();
  readonly reports = new Map<string, DeviceReport>();
  private readonly groupEntries = new Map<string, GroupEntry>();
  private readonly deviceGroups = new Map<string, Set<string>>();
  /**
   * Each device's group names in merge order, so a group value change (5,000 members) sorts nothing.
   * Cleared whenever membership, a priority or a group's existence changes: all rare events.
   */
  private readonly mergeOrder = new Map<string, string[]>();
  private incarnationBytes: Uint8Array = NO_INCARNATION;

  allGroups(): GroupRecord[] {
    return [...this.groupEntries.values()].map((g) => g.record);
  }

  group(name: string): GroupRecord | undefined {
    return this.groupEntries.get(name)?.record;
  }

  groupMembers(name: string): ReadonlySet<string> {
    return this.groupEntries.get(name)?.members ?? new Set();
  }

  latestSchema(name: string): SchemaRecord | undefined {
    const versions = this.schemas.get(name);
    return versions?.[versions.length - 1];
  }

  schemaOf(device: Pick<DeviceRecord, 'schema'>): SchemaRecord | undefined {
    return device.schema === null ? undefined : this.latestSchema(device.schema);
  }

  /** The groups that apply to a device, in merge order. */
  groupsOf(deviceId: string): GroupRecord[] {
    let order = this.mergeOrder.get(deviceId);
    if (!order) {
      const names = this.deviceGroups.get(deviceId);
      if (!names || names.size === 0) return [];
      const records: GroupRecord[] = [];
      for (const n of names) {
        const g = this.groupEntries.get(n);
        if (g) records.push(g.record);
      }
      order = records.sort(compareGroupsForMerge).map((g) => g.name);
      this.mergeOrder.set(deviceId, order);
    }
    const out: GroupRecord[] = [];
    for (const n of order) {
      const g = this.groupEntries.get(n);
      if (g) out.push(g.record);
    }
    return out;
  }

  /** Devices a selector would match, for commands that evaluate a group before defining it. */
  devicesMatching(selector: Selector): string[] {
    const out: string[] = [];
    for (const d of this.devices.values()) if (matches(selector, d.labels)) out.push(d.id);
    return out;
  }

  apply(e: HengeEvent, t: Touched): void {
    this.seq = e.seq;
    t.keys.add(ViewKey.seq);
    switch (e.type) {
      case EventType.HubInitialized:
        this.meta = { hubId: e.data.hubId, incarnation: e.data.incarnation };
        this.incarnationBytes = Buffer.from(e.data.incarnation, 'hex');
        t.keys.add(ViewKey.meta);
        break;
      case EventType.DeviceAdded: {
        const d: DeviceRecord = {
          id: e.data.device,
          name: e.data.name,
          labels: e.data.labels,
          schema: e.data.schema,
          values: {},
          createdAt: e.time,
          updatedAt: e.time,
          ...(e.data.admission ? { admission: e.data.admission } : {}),
          ...(e.data.provisioning ? { provisioning: e.data.provisioning } : {}),
        };
        this.devices.set(d.id, d);
        this.updateMembership(d);
        t.keys.add(ViewKey.device(d.id));
        t.devices.add(d.id);
        break;
      }
      case EventType.DeviceUpdated: {
        const prev = this.mustDevice(e.data.device);
        const d: DeviceRecord = {
          ...prev,
          ...(e.data.name !== undefined ? { name: e.data.name } : {}),
          ...(e.data.labels !== undefined ? { labels: e.data.labels } : {}),
          ...(e.data.schema !== undefined ? { schema: e.data.schema } : {}),
          updatedAt: e.time,
        };
        this.devices.set(d.id, d);
        if (e.data.labels !== undefined) this.updateMembership(d);
        t.keys.add(ViewKey.device(d.id));
        t.devices.add(d.id);
        break;
      }
      case EventType.DeviceRemoved: {
        const id = e.data.device;
        this.devices.delete(id);
        for (const g of this.deviceGroups.get(id) ?? []) this.groupEntries.get(g)?.members.delete(id);
        this.deviceGroups.delete(id);
        this.mergeOrder.delete(id);
        if (this.reports.delete(id)) t.keys.add(ViewKey.report(id));
        t.keys.add(ViewKey.device(id));
        t.devices.add(id);
        break;
      }
      case EventType.SchemaPublished: {
        const s: SchemaRecord = {
          name: e.data.schema,
          version: e.data.version,
          ...(e.data.description !== undefined ? { description: e.data.description } : {}),
          fields: e.data.fields,
          publishedAt: e.time,
        };
        const list = this.schemas.get(s.name) ?? [];
        list.push(s);
        this.schemas.set(s.name, list);
        t.keys.add(ViewKey.schema(s.name, s.version));
        for (const d of this.devices.values()) if (d.schema === s.name) t.devices.add(d.id);
        break;
      }
      case EventType.GroupDefined: {
        const prev = this.groupEntries.get(e.data.group);
        const record: GroupRecord = {
          name: e.data.group,
          selector: e.data.selector,
          priority: e.data.priority,
          values: prev?.record.values ?? {},
          createdAt: prev?.record.createdAt ?? e.time,
          updatedAt: e.time,
        };
        for (const id of prev?.members ?? []) t.devices.add(id);
        this.setGroup(record, t);
        break;
      }
      case EventType.GroupRemoved: {
        const prev = this.groupEntries.get(e.data.group);
        for (const id of prev?.members ?? []) {
          t.devices.add(id);
          this.deviceGroups.get(id)?.delete(e.data.group);
        }
        this.groupEntries.delete(e.data.group);
        this.mergeOrder.clear();
        t.keys.add(ViewKey.group(e.data.group));
        break;
      }
      case EventType.ValuesChanged: {
        const apply = (values: Readonly<Record<string, ConfigValue>>): Record<string, ConfigValue> => {
          const next = { ...values };
          for (const c of e.data.changes) {
            if (c.to === undefined) delete next[c.key];
            else next[c.key] = c.to;
          }
          return next;
        };
        if (e.data.device !== undefined) {
          const prev = this.mustDevice(e.data.device);
          this.devices.set(prev.id, { ...prev, values: apply(prev.values), updatedAt: e.time });
          t.keys.add(ViewKey.device(prev.id));
          t.devices.add(prev.id);
        } else if (e.data.group !== undefined) {
          const entry = this.groupEntries.get(e.data.group);
          if (!entry) throw new Error(`log names unknown group ${e.data.group}`);
          entry.record = { ...entry.record, values: apply(entry.record.values), updatedAt: e.time };
          t.keys.add(ViewKey.group(e.data.group));
          for (const id of entry.members) t.devices.add(id);
        }
        break;
      }
      case EventType.TokenCreated:
        this.tokens.set(e.data.token, {
          id: e.data.token,
          name: e.data.name,
          hash: e.data.hash,
          createdAt: e.time,
          revokedAt: null,
          role: e.data.role ?? 'admin',
          expiresAt: e.data.expiresAt ?? null,
        });
        t.keys.add(ViewKey.token(e.data.token));
        break;
      case EventType.AckReceived: {
        const prev = this.reports.get(e.data.device) ?? NO_REPORT;
        // Only a version the hub has issued to this device can become its applied version.
        const issued = this.versions.get(e.data.device) ?? 0;
        const moves = e.data.status === 'applied' && e.data.version > (prev.appliedVersion ?? -1) && e.data.version <= issued;
        const applied = moves ? e.data.version : prev.appliedVersion;
        // The device's newest report stands: an older version's ack arriving late (one the device abandoned
        // for a newer one, docs/protocol.md "Ack") is in the log but must not hide a newer failure.
        const newest = prev.lastAck === null || e.data.version >= prev.lastAck.version;
        const lastAck = newest
          ? {
              version: e.data.version,
              status: e.data.status,
              time: e.time,
              ...(e.data.message !== undefined ? { message: e.data.message } : {}),
              ...(e.data.latencyMs !== undefined ? { latencyMs: e.data.latencyMs } : {}),
            }
          : prev.lastAck;
        this.reports.set(e.data.device, { ...prev, appliedVersion: applied, lastAck });
        t.keys.add(ViewKey.report(e.data.device));
        break;
      }
      case EventType.DeviceAdmitted: {
        const { admission: _was, ...prev } = this.mustDevice(e.data.device);
        const d: DeviceRecord = { ...prev, ...(e.data.decision === 'rejected' ? { admission: 'rejected' as const } : {}), updatedAt: e.time };
        this.devices.set(d.id, d);
        t.keys.add(ViewKey.device(d.id));
        break;
      }
      case EventType.DeviceKeyIssued:
      case EventType.DeviceKeyRetired:
      case EventType.AuthFailed:
      case EventType.EnrollmentCreated:
      case EventType.ProvisioningCreated:
      case EventType.ProvisioningRevoked:
        // History only (keys and provisioning tokens live in the keystore; auth failures are audit).
        break;
      case EventType.DuplicateIdentity: {
        const prev = this.reports.get(e.data.device) ?? NO_REPORT;
        this.reports.set(e.data.device, { ...prev, duplicate: { endpoints: e.data.endpoints, time: e.time } });
        t.keys.add(ViewKey.report(e.data.device));
        break;
      }
      case EventType.TokenRevoked: {
        const tok = this.tokens.get(e.data.token);
        if (tok) this.tokens.set(tok.id, { ...tok, revokedAt: e.time });
        t.keys.add(ViewKey.token(e.data.token));
        break;
      }
    }
  }

  /**
   * Recomputes the snapshots of the devices `t` names. A device whose values hash changed gets `seq` as
   * its new version; an unchanged config keeps its version (nothing to push).
   */
  refreshSnapshots(t: Touched, seq: number): void {
    for (const id of t.devices) {
      const device = this.devices.get(id);
      if (!device) {
        const hadSnapshot = this.snapshots.delete(id);
        if (this.versions.delete(id) || hadSnapshot) {
          t.keys.add(ViewKey.version(id));
          // Listeners learn of the removal as a change with no snapshot (the endpoint ends the relation).
          t.changedSnapshots.add(id);
        }
        continue;
      }
      const values = effectiveValues(device, this.groupsOf(id), this.schemaOf(device));
      const built = buildSnapshotIfChanged(this.snapshots.get(id)?.snapshot.hash, seq, values, this.incarnationBytes);
      if (!built) continue;
      this.snapshots.set(id, built);
      this.versions.set(id, seq);
      t.keys.add(ViewKey.version(id));
      t.changedSnapshots.add(id);
    }
  }

  private mustDevice(id: string): DeviceRecord {
    const d = this.devices.get(id);
    if (!d) throw new Error(`log names unknown device ${id}`);
    return d;
  }

  private setGroup(record: GroupRecord, t: Touched): void {
    this.mergeOrder.clear();
    const selector = parseSelector(record.selector);
    const prev = this.groupEntries.get(record.name);
    for (const id of prev?.members ?? []) this.deviceGroups.get(id)?.delete(record.name);
    const members = new Set(this.devicesMatching(selector));
    for (const id of members) {
      let set = this.deviceGroups.get(id);
      if (!set) this.deviceGroups.set(id, (set = new Set()));
      set.add(record.name);
      t.devices.add(id);
    }
    this.groupEntries.set(record.name, { record, selector, members });
    t.keys.add(ViewKey.group(record.name));
  }

  private updateMembership(d: DeviceRecord): void {
    this.mergeOrder.clear();
    const set = new Set<string>();
    for (const [name, g] of this.groupEntries) {
      if (matches(g.selector, d.labels)) {
        set.add(name);
        g.members.add(d.id);
      } else {
        g.members.delete(d.id);
      }
    }
    this.deviceGroups.set(d.id, set);
  }

  /** The stored form of one view key, or undefined when the key should not exist. */
  viewValue(key: string): string | undefined {
    const k = parseViewKey(key);
    switch (k.kind) {
      case 'seq':
        return String(this.seq);
      case 'meta':
        return this.meta ? JSON.stringify(this.meta) : undefined;
      case 'device': {
        const d = this.devices.get(k.id);
        return d ? JSON.stringify(d) : undefined;
      }
      case 'version': {
        const v = this.versions.get(k.id);
        return v === undefined ? undefined : String(v);
      }
      case 'group': {
        const g = this.groupEntries.get(k.id);
        return g ? JSON.stringify(g.record) : undefined;
      }
      case 'schema': {
        const s = this.schemas.get(k.id)?.find((x) => x.version === k.version);
        return s ? JSON.stringify(s) : undefined;
      }
      case 'token': {
        const tok = this.tokens.get(k.id);
        return tok ? JSON.stringify(tok) : undefined;
      }
      case 'report': {
        const r = this.reports.get(k.id);
        return r ? JSON.stringify(r) : undefined;
      }
    }
  }

  /** Every view key with its stored form (for --verify). */
  *viewEntries(): Generator<[string, string]> {
    const keys: string[] = [ViewKey.seq, ViewKey.meta];
    for (const id of this.devices.keys()) keys.push(ViewKey.device(id), ViewKey.version(id));
    for (const name of this.groupEntries.keys()) keys.push(ViewKey.group(name));
    for (const [name, list] of this.schemas) for (const s of list) keys.push(ViewKey.schema(name, s.version));
    for (const id of this.tokens.keys()) keys.push(ViewKey.token(id));
    for (const id of this.reports.keys()) keys.push(ViewKey.report(id));
    for (const key of keys) {
      const v = this.viewValue(key);
      if (v !== undefined) yield [key, v];
    }
  }

  /** Rebuilds the in-memory state from stored views (start-up: O(state), never a log replay). */
  static fromViews(entries: Iterable<[string, string]>): HubState {
    const s = new HubState();
    const groups: GroupRecord[] = [];
    for (const [key, value] of entries) {
      const k = parseViewKey(key);
      switch (k.kind) {
        case 'seq':
          s.seq = Number(value);
          break;
        case 'meta':
          s.meta = JSON.parse(value) as HubMeta;
          s.incarnationBytes = Buffer.from(s.meta.incarnation, 'hex');
          break;
        case 'device':
          s.devices.set(k.id, JSON.parse(value) as DeviceRecord);
          break;
        case 'version':
          s.versions.set(k.id, Number(value));
          break;
        case 'group':
          groups.push(JSON.parse(value) as GroupRecord);
          break;
        case 'schema': {
          const list = s.schemas.get(k.id) ?? [];
          list.push(JSON.parse(value) as SchemaRecord);
          s.schemas.set(k.id, list);
          break;
        }
        case 'token':
          {
            // Views written before roles and expiry: an admin token that never expires, as the log says.
            const tok = JSON.parse(value) as Omit<TokenRecord, 'role' | 'expiresAt'> & Partial<Pick<TokenRecord, 'role' | 'expiresAt'>>;
            s.tokens.set(k.id, { ...tok, role: tok.role ?? 'admin', expiresAt: tok.expiresAt ?? null });
          }
          break;
        case 'report':
          s.reports.set(k.id, JSON.parse(value) as DeviceReport);
          break;
      }
    }
    for (const list of s.schemas.values()) list.sort((a, b) => a.version - b.version);
    const scratch = new Touched();
    for (const g of groups) s.setGroup(g, scratch);
    for (const d of s.devices.values()) {
      const values = effectiveValues(d, s.groupsOf(d.id), s.schemaOf(d));
      s.snapshots.set(d.id, buildSnapshot(s.versions.get(d.id) ?? 0, values, s.incarnationBytes));
    }
    return s;
  }
}
