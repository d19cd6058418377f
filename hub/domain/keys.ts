/**
 * The log's record of device credentials: a key issued (and the previous one it leaves valid for a grace
 * period), a key retired, a one-time enrollment token made. The keys and tokens themselves live in the
 * keystore (hub/security/); these events name them by id only, never carry key material.
 */
import { NotFoundError } from '../errors.ts';
import type { CommandContext, CommitResult, HubCore } from './core.ts';
import { EventType } from './events.ts';

function mustDevice(core: HubCore, device: string): void {
  if (!core.state.devices.has(device)) throw new NotFoundError(`device ${device} does not exist`, { device });
}

/** Records that a device got a new key (issued by the keystore); the event carries only the key's id. */
export async function recordKeyIssued(
  core: HubCore,
  ctx: CommandContext,
  device: string,
  keyId: string,
  previous?: { readonly keyId: string; readonly until: number },
): Promise<CommitResult> {
  await core.ready();
  mustDevice(core, device);
  return core.commit(ctx, [{ type: EventType.DeviceKeyIssued, data: { device, keyId, ...(previous ? { previous: previous.keyId, previousUntil: previous.until } : {}) } }]);
}

/** Records that a device's previous key stopped working (its grace period ended, or the device used its new key). */
export async function recordKeyRetired(core: HubCore, device: string, keyId: string, reason: string): Promise<CommitResult | null> {
  await core.ready();
  if (!core.state.devices.has(device)) return null; // removed meanwhile: its keys went with it
  return core.commit({ actor: 'hub', reason }, [{ type: EventType.DeviceKeyRetired, data: { device, keyId, reason } }]);
}

/** Records that a one-time enrollment token was made for a device (its id only). */
export async function recordEnrollmentCreated(core: HubCore, ctx: CommandContext, device: string, enrollment: string, expiresAt: number): Promise<CommitResult> {
  await core.ready();
  mustDevice(core, device);
  return core.commit(ctx, [{ type: EventType.EnrollmentCreated, data: { device, enrollment, expiresAt } }]);
}
