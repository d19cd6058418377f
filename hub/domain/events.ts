/** The event log's vocabulary. Every change to the hub is one or more of these, appended in order. */
import type { ConfigValue } from '../../protocol/snapshot.ts';
import type { AckStatusName } from '../../protocol/ack.ts';
import type { FieldDef } from './schema.ts';
import type { TokenRole } from './tokens.ts';

export const EventType = {
  HubInitialized: 'hub.initialized',
  DeviceAdded: 'device.added',
  DeviceUpdated: 'device.updated',
  DeviceRemoved: 'device.removed',
  SchemaPublished: 'schema.published',
  GroupDefined: 'group.defined',
  GroupRemoved: 'group.removed',
  ValuesChanged: 'values.changed',
  TokenCreated: 'token.created',
  TokenRevoked: 'token.revoked',
  AckReceived: 'ack.received',
  DuplicateIdentity: 'device.duplicate',
  /** A device got a new DTLS key; the event names it by a random key id and carries no key material. */
  DeviceKeyIssued: 'device.key_issued',
  /** A request to the API failed authentication or authorization (audit; never the token presented). */
  AuthFailed: 'auth.failed',
  /** A one-time enrollment token was made for a device (named by its id; never the token). */
  EnrollmentCreated: 'device.enrollment_created',
  /** A device's previous DTLS key stopped working (its grace period ended, or the device used its new key). */
  DeviceKeyRetired: 'device.key_retired',
  /** A person or a rule accepted or rejected a device that enrolled itself with a provisioning token. */
  DeviceAdmitted: 'device.admitted',
  /** A fleet-wide provisioning token was made (named by its id; never the token). */
  ProvisioningCreated: 'provisioning.created',
  ProvisioningRevoked: 'provisioning.revoked',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** One key's change; `from` absent = was unset, `to` absent = is now unset. */
export interface ValueChange {
  readonly key: string;
  readonly from?: ConfigValue;
  readonly to?: ConfigValue;
}

/** A device added by an admin is accepted; one that enrolled itself waits in `pending` for admission. */
export const Admission = {
  Accepted: 'accepted',
  Pending: 'pending',
  Rejected: 'rejected',
} as const;
export type Admission = (typeof Admission)[keyof typeof Admission];

export type EventData =
  | { readonly type: typeof EventType.HubInitialized; readonly data: { readonly hubId: string; readonly incarnation: string } }
  | {
      readonly type: typeof EventType.DeviceAdded;
      readonly data: {
        readonly device: string;
        readonly name: string;
        readonly labels: Readonly<Record<string, string>>;
        readonly schema: string | null;
        /** Absent: accepted (added by an admin). `pending`: it enrolled itself and waits for admission. */
        readonly admission?: typeof Admission.Pending;
        /** The provisioning token it enrolled with. */
        readonly provisioning?: string;
      };
    }
  | {
      readonly type: typeof EventType.DeviceUpdated;
      readonly data: {
        readonly device: string;
        readonly name?: string;
        readonly labels?: Readonly<Record<string, string>>;
        readonly schema?: string | null;
      };
    }
  | { readonly type: typeof EventType.DeviceRemoved; readonly data: { readonly device: string } }
  | {
      readonly type: typeof EventType.SchemaPublished;
      readonly data: { readonly schema: string; readonly version: number; readonly description?: string; readonly fields: readonly FieldDef[] };
    }
  | { readonly type: typeof EventType.GroupDefined; readonly data: { readonly group: string; readonly selector: string; readonly priority: number } }
  | { readonly type: typeof EventType.GroupRemoved; readonly data: { readonly group: string } }
  | {
      readonly type: typeof EventType.ValuesChanged;
      readonly data: { readonly device?: string; readonly group?: string; readonly changes: readonly ValueChange[] };
    }
  | {
      readonly type: typeof EventType.TokenCreated;
      /** `role` and `expiresAt` are absent in logs written before roles: an admin token that never expires. */
      readonly data: { readonly token: string; readonly name: string; readonly hash: string; readonly role?: TokenRole; readonly expiresAt?: number };
    }
  | { readonly type: typeof EventType.TokenRevoked; readonly data: { readonly token: string } }
  | {
      readonly type: typeof EventType.AckReceived;
      readonly data: {
        readonly device: string;
        readonly version: number;
        readonly status: AckStatusName;
        readonly message?: string;
        /** Change committed -> ack received, when the hub knows when it committed that version. */
        readonly latencyMs?: number;
      };
    }
  | { readonly type: typeof EventType.DuplicateIdentity; readonly data: { readonly device: string; readonly endpoints: readonly string[] } }
  | {
      readonly type: typeof EventType.DeviceKeyIssued;
      /** `previous`: the key it replaces stays valid until `previousUntil` (rotation with a grace period). */
      readonly data: { readonly device: string; readonly keyId: string; readonly previous?: string; readonly previousUntil?: number };
    }
  | { readonly type: typeof EventType.DeviceKeyRetired; readonly data: { readonly device: string; readonly keyId: string; readonly reason: string } }
  | {
      readonly type: typeof EventType.DeviceAdmitted;
      /** `rule`: the provisioning token whose rule decided; absent when a person did. */
      readonly data: { readonly device: string; readonly decision: typeof Admission.Accepted | typeof Admission.Rejected; readonly rule?: string };
    }
  | {
      readonly type: typeof EventType.ProvisioningCreated;
      readonly data: {
        readonly provisioning: string;
        readonly name: string;
        readonly expiresAt: number;
        readonly labels: Readonly<Record<string, string>>;
        readonly schema: string | null;
        /** null: a person admits each device; else a label selector whose matches are accepted at once (`*`: all). */
        readonly accept: string | null;
      };
    }
  | { readonly type: typeof EventType.ProvisioningRevoked; readonly data: { readonly provisioning: string } }
  | { readonly type: typeof EventType.EnrollmentCreated; readonly data: { readonly device: string; readonly enrollment: string; readonly expiresAt: number } }
  | { readonly type: typeof EventType.AuthFailed; readonly data: { readonly ip: string; readonly reason: string; readonly method: string; readonly path: string } };

export interface EventMeta {
  readonly seq: number;
  /** Milliseconds since the epoch, when the command was accepted. */
  readonly time: number;
  /** Who asked for the change: an admin token's name, `hub` for the hub itself. */
  readonly actor: string;
  readonly reason?: string;
}

export type HengeEvent = EventMeta & EventData;

export function isEventType(s: string): s is EventType {
  return (Object.values(EventType) as string[]).includes(s);
}
