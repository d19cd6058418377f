/**
 * Commands: each validates against the current views, refuses with every problem it finds, or turns
 * into events that commit atomically. Validation evaluates the proposed state without changing the
 * views, so a refused command leaves no trace, in memory or on disk.
 */
import type { AckStatusName } from '../../protocol/ack.ts';
import type { ConfigValue } from '../../protocol/snapshot.ts';
import { AlreadyExistsError, LastTokenError, NotFoundError, SchemaConflictError, SchemaViolationError, ValidationError } from '../errors.ts';
import type { Violation } from '../errors.ts';
import { applyPatch, compareGroupsForMerge } from './config.ts';
import type { DeviceRecord, GroupRecord } from './config.ts';
import type { CommandContext, CommitResult, HubCore } from './core.ts';
import { checkDevice, checkMembers, checkMembersForKeys } from './config-checks.ts';
import { EventType } from './events.ts';
import type { EventData } from './events.ts';
import { checkId, checkLabels, normalizeValues } from './ids.ts';
import { parseSchemaDocument, sameFields } from './schema.ts';
import type { SchemaRecord } from './schema.ts';
import { matches, parseSelector } from './selector.ts';
import type { Selector } from './selector.ts';
import type { HubState } from './state.ts';
import { DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS, TokenRole, generateToken } from './tokens.ts';

export const WarningCode = {
  SelectorMatchesNothing: 'HENGE_W_SELECTOR_MATCHES_NOTHING',
  KeyIgnored: 'HENGE_W_KEY_IGNORED',
} as const;
export type WarningCode = (typeof WarningCode)[keyof typeof WarningCode];

export interface Warning {
  readonly code: WarningCode;
  readonly message: string;
  readonly field?: string;
}

export interface CommandResult extends CommitResult {
  readonly warnings: readonly Warning[];
}

/** At most this many violations are listed in one error; `details.total` gives the full count. */
const MAX_LISTED = 1000;

function violationError<E extends SchemaViolationError | SchemaConflictError>(
  Cls: new (message: string, details: { violations: Violation[]; total: number }) => E,
  violations: Violation[],
  what: string,
): E {
  const first = violations[0];
  const summary = first ? `${first.device ? `${first.device}: ` : ''}${first.message}` : '';
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
  return new Cls(`${what}: ${summary}${more}`, { violations: violations.slice(0, MAX_LISTED), total: violations.length });
}

function mustDevice(s: HubState, id: string): DeviceRecord {
  const d = s.devices.get(id);
  if (!d) throw new NotFoundError(`device ${id} does not exist`, { device: id });
  return d;
}

function mustSchema(s: HubState, name: string): SchemaRecord {
  const schema = s.latestSchema(name);
  if (!schema) throw new NotFoundError(`schema ${name} does not exist; publish it first`, { schema: name });
  return schema;
}

function groupsForLabels(s: HubState, labels: Readonly<Record<string, string>>): GroupRecord[] {
  const out: GroupRecord[] = [];
  for (const g of s.allGroups()) if (matches(parseSelector(g.selector), labels)) out.push(g);
  return out.sort(compareGroupsForMerge);
}

/** Device-layer keys must be fields of the device's schema. */
export interface AddDeviceInput {
  readonly id: string;
  readonly name?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly schema?: string | null;
  readonly values?: Readonly<Record<string, ConfigValue>>;
  /** A device that enrolled itself with a provisioning token: `pending`, unless the token's rule accepted it. */
  readonly enrolledWith?: { readonly provisioning: string; readonly acceptedByRule: boolean };
}

export async function addDevice(core: HubCore, ctx: CommandContext, input: AddDeviceInput): Promise<CommandResult> {
  checkId('device', input.id);
  const labels = input.labels ?? {};
  checkLabels(labels);
  const values = normalizeValues(input.values ?? {});
  await core.ready();
  const s = core.state;
  if (s.devices.has(input.id)) throw new AlreadyExistsError(`device ${input.id} already exists`, { device: input.id });
  const schema = input.schema ? mustSchema(s, input.schema) : undefined;
  const violations = checkDevice({ id: input.id, values }, groupsForLabels(s, labels), schema);
  if (violations.length > 0) throw violationError(SchemaViolationError, violations, `device ${input.id} would have an invalid config`);
  const via = input.enrolledWith;
  const events: EventData[] = [
    {
      type: EventType.DeviceAdded,
      data: { device: input.id, name: input.name ?? input.id, labels, schema: input.schema ?? null, ...(via ? { admission: 'pending', provisioning: via.provisioning } : {}) },
    },
  ];
  if (via?.acceptedByRule) events.push({ type: EventType.DeviceAdmitted, data: { device: input.id, decision: 'accepted', rule: via.provisioning } });
  const { changes } = applyPatch({}, values, false);
  if (changes.length > 0) events.push({ type: EventType.ValuesChanged, data: { device: input.id, changes } });
  return { ...(await core.commit(ctx, events)), warnings: [] };
}

export interface UpdateDeviceInput {
  readonly name?: string;
  /** Labels to set; null removes one. */
  readonly labels?: Readonly<Record<string, string | null>>;
  readonly schema?: string | null;
}

export async function updateDevice(core: HubCore, ctx: CommandContext, id: string, input: UpdateDeviceInput): Promise<CommandResult> {
  if (input.labels) checkLabels(input.labels);
  await core.ready();
  const s = core.state;
  const prev = mustDevice(s, id);
  let labels: Record<string, string> | undefined;
  if (input.labels) {
    labels = { ...prev.labels };
    for (const [k, v] of Object.entries(input.labels)) {
      if (v === null) delete labels[k];
      else labels[k] = v;
    }
    if (JSON.stringify(Object.entries(labels).sort()) === JSON.stringify(Object.entries(prev.labels).sort())) labels = undefined;
  }
  const schemaName = input.schema !== undefined && input.schema !== prev.schema ? input.schema : undefined;
  const name = input.name !== undefined && input.name !== prev.name ? input.name : undefined;
  if (labels === undefined && schemaName === undefined && name === undefined) return { seq: null, events: [], warnings: [] };
  const schema = schemaName !== undefined ? (schemaName === null ? undefined : mustSchema(s, schemaName)) : s.schemaOf(prev);
  const groups = labels !== undefined ? groupsForLabels(s, labels) : s.groupsOf(id);
  const violations = checkDevice(prev, groups, schema, { values: prev.values, groups: s.groupsOf(id) });
  if (violations.length > 0) throw violationError(SchemaViolationError, violations, `device ${id} would have an invalid config`);
  const data = {
    device: id,
    ...(name !== undefined ? { name } : {}),
    ...(labels !== undefined ? { labels } : {}),
    ...(schemaName !== undefined ? { schema: schemaName } : {}),
  };
  return { ...(await core.commit(ctx, [{ type: EventType.DeviceUpdated, data }])), warnings: [] };
}

export async function removeDevice(core: HubCore, ctx: CommandContext, id: string): Promise<CommandResult> {
  await core.ready();
  mustDevice(core.state, id);
  return { ...(await core.commit(ctx, [{ type: EventType.DeviceRemoved, data: { device: id } }])), warnings: [] };
}

export type ValueTarget = { readonly device: string } | { readonly group: string };

/** Sets (and with null, unsets) values at the device or group layer; `replace` drops keys not given. */
export async function setValues(
  core: HubCore,
  ctx: CommandContext,
  target: ValueTarget,
  rawPatch: Readonly<Record<string, ConfigValue | null>>,
  replace: boolean,
): Promise<CommandResult> {
  const patch = normalizeValues(rawPatch);
  await core.ready();
  const s = core.state;
  if ('device' in target) {
    const device = mustDevice(s, target.device);
    const { next, changes } = applyPatch(device.values, patch, replace);
    if (changes.length === 0) return { seq: null, events: [], warnings: [] };
    const violations = checkDevice({ id: device.id, values: next }, s.groupsOf(device.id), s.schemaOf(device), { values: device.values, groups: s.groupsOf(device.id) });
    if (violations.length > 0) throw violationError(SchemaViolationError, violations, `invalid value for device ${device.id}`);
    return { ...(await core.commit(ctx, [{ type: EventType.ValuesChanged, data: { device: device.id, changes } }])), warnings: [] };
  }
  const group = s.group(target.group);
  if (!group) throw new NotFoundError(`group ${target.group} does not exist`, { group: target.group });
  const { next, changes } = applyPatch(group.values, patch, replace);
  if (changes.length === 0) return { seq: null, events: [], warnings: [] };
  const proposed: GroupRecord = { ...group, values: next };
  const members = [...s.groupMembers(group.name)];
  const violations = checkMembersForKeys(s, members, proposed, changes.map((c) => c.key), changes.some((c) => c.from === undefined));
  if (violations.length > 0) throw violationError(SchemaViolationError, violations, `invalid value for group ${group.name}`);
  const warnings = groupWarnings(s, members, proposed, Object.keys(patch).filter((k) => patch[k] !== null));
  return { ...(await core.commit(ctx, [{ type: EventType.ValuesChanged, data: { group: group.name, changes } }])), warnings };
}

function groupWarnings(s: HubState, members: readonly string[], group: GroupRecord, keys: readonly string[]): Warning[] {
  if (members.length === 0) {
    return [{ code: WarningCode.SelectorMatchesNothing, field: 'selector', message: `selector ${group.selector} matches no device (yet)` }];
  }
  const warnings: Warning[] = [];
  for (const key of keys) {
    const used = members.some((id) => {
      const d = s.devices.get(id);
      const schema = d ? s.schemaOf(d) : undefined;
      return !schema || schema.fields.some((f) => f.name === key);
    });
    if (!used) {
      warnings.push({ code: WarningCode.KeyIgnored, field: `values.${key}`, message: `no member device's schema has a field ${key}; the value has no effect` });
    }
  }
  return warnings;
}

export interface DefineGroupInput {
  readonly selector: string;
  readonly priority?: number;
  /** When given, replaces the group's values in the same atomic change. */
  readonly values?: Readonly<Record<string, ConfigValue>>;
}

/** Creates a group or changes its selector and priority (and, if given, its values). */
export async function defineGroup(core: HubCore, ctx: CommandContext, name: string, input: DefineGroupInput): Promise<CommandResult> {
  checkId('group', name);
  const selector: Selector = parseSelector(input.selector);
  const values = input.values ? normalizeValues(input.values) : undefined;
  await core.ready();
  const s = core.state;
  const prev = s.group(name);
  const priority = input.priority ?? prev?.priority ?? 0;
  const valuesPatch = applyPatch(prev?.values ?? {}, values ?? {}, values !== undefined);
  const now = Date.now();
  const proposed: GroupRecord = {
    name,
    selector: selector.text,
    priority,
    values: valuesPatch.next,
    createdAt: prev?.createdAt ?? now,
    updatedAt: now,
  };
  const members = s.devicesMatching(selector);
  const affected = new Set([...members, ...s.groupMembers(name)]);
  const violations: Violation[] = [];
  const memberSet = new Set(members);
  for (const id of affected) violations.push(...checkMembers(s, [id], name, memberSet.has(id) ? proposed : null));
  if (violations.length > 0) throw violationError(SchemaViolationError, violations, `group ${name} would give devices an invalid config`);
  const events: EventData[] = [];
  if (!prev || prev.selector !== selector.text || prev.priority !== priority) {
    events.push({ type: EventType.GroupDefined, data: { group: name, selector: selector.text, priority } });
  }
  if (valuesPatch.changes.length > 0) events.push({ type: EventType.ValuesChanged, data: { group: name, changes: valuesPatch.changes } });
  const warnings = groupWarnings(s, members, proposed, Object.keys(values ?? {}));
  return { ...(await core.commit(ctx, events)), warnings };
}

export async function removeGroup(core: HubCore, ctx: CommandContext, name: string): Promise<CommandResult> {
  await core.ready();
  const s = core.state;
  if (!s.group(name)) throw new NotFoundError(`group ${name} does not exist`, { group: name });
  const violations = checkMembers(s, [...s.groupMembers(name)], name, null);
  if (violations.length > 0) throw violationError(SchemaViolationError, violations, `removing group ${name} would give devices an invalid config`);
  return { ...(await core.commit(ctx, [{ type: EventType.GroupRemoved, data: { group: name } }])), warnings: [] };
}

export interface PublishResult extends CommandResult {
  readonly schema: SchemaRecord;
  /** False when the document equals the latest version (nothing was published). */
  readonly created: boolean;
}

/** Publishes a new version of a schema, refusing with every conflict it would cause on bound devices. */
export async function publishSchema(core: HubCore, ctx: CommandContext, name: string, doc: unknown): Promise<PublishResult> {
  checkId('schema', name);
  const parsed = parseSchemaDocument(doc);
  await core.ready();
  const s = core.state;
  const latest = s.latestSchema(name);
  if (latest && sameFields(latest, parsed.fields, parsed.description)) return { seq: null, events: [], warnings: [], schema: latest, created: false };
  const version = (latest?.version ?? 0) + 1;
  const candidate: SchemaRecord = { name, version, fields: parsed.fields, publishedAt: Date.now(), ...(parsed.description !== undefined ? { description: parsed.description } : {}) };
  const violations: Violation[] = [];
  for (const d of s.devices.values()) if (d.schema === name) violations.push(...checkDevice(d, s.groupsOf(d.id), candidate));
  if (violations.length > 0) {
    throw violationError(SchemaConflictError, violations, `schema ${name} v${version} conflicts with ${new Set(violations.map((v) => v.device)).size} device(s)`);
  }
  const result = await core.commit(ctx, [
    { type: EventType.SchemaPublished, data: { schema: name, version, fields: parsed.fields, ...(parsed.description !== undefined ? { description: parsed.description } : {}) } },
  ]);
  return { ...result, warnings: [], schema: core.state.latestSchema(name) ?? candidate, created: true };
}

export async function createToken(
  core: HubCore,
  ctx: CommandContext,
  name: string,
  opts: { readonly role?: TokenRole; readonly days?: number } = {},
): Promise<CommandResult & { id: string; token: string; role: TokenRole; expiresAt: number }> {
  await core.ready();
  const days = opts.days ?? DEFAULT_TOKEN_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_DAYS) {
    throw new ValidationError(`a token lives 1..${MAX_TOKEN_DAYS} days, not ${days}`, { violations: [{ field: 'days', rule: 'range', message: `1..${MAX_TOKEN_DAYS}` }] });
  }
  const role = opts.role ?? TokenRole.Admin;
  const t = generateToken();
  const expiresAt = Date.now() + days * 86_400_000;
  const result = await core.commit(ctx, [{ type: EventType.TokenCreated, data: { token: t.id, name, hash: t.hash, role, expiresAt } }]);
  return { ...result, warnings: [], id: t.id, token: t.token, role, expiresAt };
}

export async function revokeToken(core: HubCore, ctx: CommandContext, id: string): Promise<CommandResult> {
  await core.ready();
  const s = core.state;
  const tok = s.tokens.get(id);
  if (!tok || tok.revokedAt !== null) throw new NotFoundError(`token ${id} does not exist or is already revoked`, { token: id });
  const now = Date.now();
  const admins = [...s.tokens.values()].filter((t) => t.revokedAt === null && t.role === TokenRole.Admin && (t.expiresAt === null || t.expiresAt > now));
  if (admins.length === 1 && admins[0]?.id === id) throw new LastTokenError('refusing to revoke the last valid admin token: create another one first', { token: id });
  return { ...(await core.commit(ctx, [{ type: EventType.TokenRevoked, data: { token: id } }])), warnings: [] };
}

/** What a device reported about one snapshot (its ack POST). */
export interface DeviceAck {
  readonly device: string;
  readonly version: number;
  readonly status: AckStatusName;
  readonly message?: string;
  /** Change → this ack, when the hub knows when it issued that version. */
  readonly latencyMs?: number;
}

const ackEvent = (a: DeviceAck): EventData => ({
  type: EventType.AckReceived,
  data: {
    device: a.device,
    version: a.version,
    status: a.status,
    ...(a.message !== undefined ? { message: a.message } : {}),
    ...(a.latencyMs !== undefined ? { latencyMs: a.latencyMs } : {}),
  },
});

/**
 * Records acks devices sent (docs/protocol.md, "Ack") in one durable batch (a fan-out's acks arrive together), each as its own
 * event with its device as the actor. Resolves, once durable, to one outcome per ack in order: null when
 * recorded, the error when that ack was refused (its device is gone); rejects when the batch failed.
 */
export async function recordAcks(core: HubCore, acks: readonly DeviceAck[]): Promise<Array<NotFoundError | null>> {
  await core.ready();
  const outcomes: Array<NotFoundError | null> = [];
  const commands: Array<{ ctx: CommandContext; datas: EventData[] }> = [];
  for (const a of acks) {
    if (!core.state.devices.has(a.device)) {
      outcomes.push(new NotFoundError(`device ${a.device} does not exist`, { device: a.device }));
      continue;
    }
    outcomes.push(null);
    commands.push({ ctx: { actor: `device:${a.device}` }, datas: [ackEvent(a)] });
  }
  await core.commitAll(commands);
  return outcomes;
}

/** Records a failed API authentication or authorization (audit). */
export async function recordAuthFailure(core: HubCore, data: { ip: string; reason: string; method: string; path: string }): Promise<CommitResult> {
  await core.ready();
  return core.commit({ actor: 'hub' }, [{ type: EventType.AuthFailed, data }]);
}

/** Flags two endpoints alternating for one identity. */
export async function flagDuplicate(core: HubCore, device: string, endpoints: readonly string[]): Promise<CommitResult> {
  await core.ready();
  mustDevice(core.state, device);
  return core.commit({ actor: 'hub' }, [{ type: EventType.DuplicateIdentity, data: { device, endpoints } }]);
}
