/** The hub's domain: what the API layer may use. */
export * from './commands.ts';
export * from './admission.ts';
export * from './keys.ts';
export * from './queries.ts';
export { HubCore, loadState, commitChannel } from './core.ts';
export type { CommandContext, CommitResult, Committed, HubObserver } from './core.ts';
export { Admission, EventType, isEventType } from './events.ts';
export type { HengeEvent, ValueChange } from './events.ts';
export type { DeviceRecord, GroupRecord, Provenance } from './config.ts';
export { Layer } from './config.ts';
export type { FieldDef, SchemaRecord } from './schema.ts';
export { toJsonSchema } from './schema.ts';
export { verifyToken } from './tokens.ts';
export type { TokenRecord } from './state.ts';
export { DeviceRuntime, DEFAULT_KEEPALIVE_S } from './runtime.ts';
export type { DeviceReport, BuiltSnapshot } from './state.ts';
