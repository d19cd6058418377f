/** The Node device agent (`henge agent`): public surface. */
export { Agent, AGENT_NAME, DEFAULT_EXEC_TIMEOUT_MS, changedKeys, truncateUtf8 } from './agent.ts';
export type { AgentLogger, AgentOptions } from './agent.ts';
export { applySnapshotFile, prepareFile, restoreFile, verifySnapshotHash, writeFileAtomic } from './apply.ts';
export { Backoff, DEFAULT_BACKOFF_BASE_MS } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
export { fetchRepresentation } from './blockwise.ts';
export { CoapClient, EXCHANGE_LIFETIME_MS } from './coap-client.ts';
export type { NotificationHandler, PeerAddress, RequestSpec } from './coap-client.ts';
export * from './errors.ts';
export { runHook } from './exec.ts';
export { OUTPUT_FORMATS, envName, formatFromPath, isOutputFormat, readBack, render, shellQuote } from './formats.ts';
export type { OutputFormat } from './formats.ts';
export { COAP_DEFAULT_PORT, parseHubAddress, staticLocator } from './hub-locator.ts';
export type { HostPort, HubEndpoint, HubLocator } from './hub-locator.ts';
export { StateStore } from './state.ts';
export type { AgentState, AppliedRecord } from './state.ts';
export { decide } from './version-rule.ts';
export type { ApplyDecision, VersionMark } from './version-rule.ts';
