/**
 * Admission of devices that enrolled themselves with a fleet-wide provisioning token (factory lines): such a
 * device lands `pending`; a person accepts or rejects it, or the token's rule accepted it as it enrolled.
 * Only accepted devices complete a DTLS handshake (hub/hub.ts, the PSK lookup). Each decision is an
 * audit event naming who (or which token's rule) decided.
 */
import { NotFoundError, NotPendingError } from '../errors.ts';
import type { CommandContext, CommitResult, HubCore } from './core.ts';
import { Admission, EventType } from './events.ts';
import type { EventData } from './events.ts';
import { matches, parseSelector } from './selector.ts';

/** Accepts or rejects a pending device. A rejected device's handshakes fail from then on. */
export async function admitDevice(
  core: HubCore,
  ctx: CommandContext,
  device: string,
  decision: typeof Admission.Accepted | typeof Admission.Rejected,
): Promise<CommitResult> {
  await core.ready();
  const d = core.state.devices.get(device);
  if (!d) throw new NotFoundError(`device ${device} does not exist`, { device });
  if (d.admission !== Admission.Pending) {
    const now = d.admission ?? Admission.Accepted;
    const hint = now === Admission.Rejected ? '; remove it and let it enroll again' : '';
    throw new NotPendingError(`device ${device} is ${now}, not pending${hint}`, { device, admission: now });
  }
  return core.commit(ctx, [{ type: EventType.DeviceAdmitted, data: { device, decision } }]);
}

/** Whether a provisioning token's rule accepts a device with these labels at once (null: a person decides). */
export function ruleAccepts(rule: string | null, labels: Readonly<Record<string, string>>): boolean {
  return rule !== null && matches(parseSelector(rule), labels);
}

/** What the log records of a fleet provisioning token (never its secret). */
export type ProvisioningRecord = Extract<EventData, { readonly type: typeof EventType.ProvisioningCreated }>['data'];

export async function recordProvisioningCreated(core: HubCore, ctx: CommandContext, p: ProvisioningRecord): Promise<CommitResult> {
  await core.ready();
  return core.commit(ctx, [{ type: EventType.ProvisioningCreated, data: p }]);
}

export async function recordProvisioningRevoked(core: HubCore, ctx: CommandContext, provisioning: string): Promise<CommitResult> {
  await core.ready();
  return core.commit(ctx, [{ type: EventType.ProvisioningRevoked, data: { provisioning } }]);
}
